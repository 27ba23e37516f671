"""GET /api/timesheets and /api/timesheets/export against the real database."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import Api, TenantFixture
from tests.timesheets.support import (
    BE,
    BS,
    IN,
    OUT,
    at,
    dates,
    day,
    figures,
    insert_exception,
    insert_punches,
    new_employee,
    parse_csv,
    schedule,
    timesheet,
)

NY = "America/New_York"


async def test_normal_day_with_a_break_and_its_exceptions(
    api: Api, tenant_a: TenantFixture, owner_sql
) -> None:
    emp = tenant_a.employee_id
    sched = await schedule(api, tenant_a, emp, "2026-06-01", "2026-06-30", (1, "09:00", "17:00"))
    shift_id = sched["shifts"][0]["id"]
    ids = insert_punches(
        owner_sql,
        tenant_a,
        emp,
        [
            (IN, at(NY, "2026-06-01", "09:00")),
            (BS, at(NY, "2026-06-01", "12:00")),
            (BE, at(NY, "2026-06-01", "12:30")),
            (OUT, at(NY, "2026-06-01", "17:00")),
            # unscheduled Tuesday-evening work, clocked in at 23:30 New York time (03:30Z Wednesday)
            (IN, at(NY, "2026-06-02", "23:30")),
            (OUT, at(NY, "2026-06-03", "00:30")),
        ],
    )
    late = insert_exception(
        owner_sql,
        tenant_a,
        emp,
        "late_arrival",
        shift_id=shift_id,
        shift_date="2026-06-01",
        details={"minutesLate": 7},
    )
    insert_exception(
        owner_sql,
        tenant_a,
        emp,
        "early_departure",
        status="withdrawn",
        shift_id=shift_id,
        shift_date="2026-06-01",
    )
    unscheduled = insert_exception(owner_sql, tenant_a, emp, "unscheduled_punch", punch_id=ids[4])

    sheet = await timesheet(api, tenant_a.employee, None, "2026-05-31", "2026-06-03")
    assert sheet["employeeId"] == str(emp)
    assert (sheet["from"], sheet["to"]) == ("2026-05-31", "2026-06-03")
    assert [d["date"] for d in sheet["days"]] == dates("2026-05-31", "2026-06-03")
    monday = day(sheet, "2026-06-01")
    assert figures(monday) == (480, 450, 30, 0)
    assert monday["exceptions"] == [
        {
            "id": str(late),
            "type": "late_arrival",
            "status": "pending",
            "shiftId": shift_id,
            "shiftDate": "2026-06-01",
            "punchId": None,
            "details": {"minutesLate": 7},
        }
    ]
    # punch-bound exception: the punch's local date (June 2 in New York), not its UTC date
    tuesday = day(sheet, "2026-06-02")
    assert figures(tuesday) == (0, 60, 0, 0)
    assert [x["id"] for x in tuesday["exceptions"]] == [str(unscheduled)]
    assert day(sheet, "2026-06-03")["exceptions"] == []
    assert sheet["totals"] == {
        "scheduledMinutes": 480,
        "workedMinutes": 510,
        "breakMinutes": 30,
        "overtimeMinutes": 0,
    }


async def test_overnight_shift_work_belongs_to_its_start_date(
    api: Api, tenant_a: TenantFixture, owner_sql
) -> None:
    emp = await new_employee(api, tenant_a)
    await schedule(api, tenant_a, emp, "2026-06-01", "2026-06-30", (5, "22:00", "06:00"))  # Friday nights
    insert_punches(
        owner_sql,
        tenant_a,
        emp,
        [
            (IN, at(NY, "2026-06-05", "21:55")),
            (BS, at(NY, "2026-06-06", "01:00")),
            (BE, at(NY, "2026-06-06", "01:30")),
            (OUT, at(NY, "2026-06-06", "06:45")),
        ],
    )
    sheet = await timesheet(api, tenant_a.manager, emp, "2026-06-05", "2026-06-06")
    # 21:55 -> 06:45 = 530 min, minus a 30-minute break; 500 worked vs 480 scheduled: +20 > 15
    assert figures(day(sheet, "2026-06-05")) == (480, 500, 30, 20)
    assert figures(day(sheet, "2026-06-06")) == (0, 0, 0, 0)
    # the range edge: asking for Saturday alone still does not put Friday night's work on it
    saturday = await timesheet(api, tenant_a.manager, emp, "2026-06-06", "2026-06-06")
    assert figures(saturday["days"][0]) == (0, 0, 0, 0)
    friday = await timesheet(api, tenant_a.manager, emp, "2026-06-05", "2026-06-05")
    assert figures(friday["days"][0]) == (480, 500, 30, 20)


async def test_dst_nights_in_new_york_are_real_elapsed_time(
    api: Api, tenant_a: TenantFixture, owner_sql
) -> None:
    emp = await new_employee(api, tenant_a)  # no own zone: the tenant's America/New_York
    await schedule(api, tenant_a, emp, "2026-03-01", "2026-11-30", (6, "22:00", "06:00"))  # Saturday nights
    insert_punches(
        owner_sql,
        tenant_a,
        emp,
        [
            # spring forward: 2026-03-08 02:00 EST -> 03:00 EDT, the night of Saturday 03-07
            (IN, at(NY, "2026-03-07", "22:00")),
            (OUT, at(NY, "2026-03-08", "06:00")),
            # fall back: 2026-11-01 02:00 EDT -> 01:00 EST, the night of Saturday 10-31
            (IN, at(NY, "2026-10-31", "22:00")),
            (OUT, at(NY, "2026-11-01", "06:00")),
        ],
    )
    spring = await timesheet(api, tenant_a.manager, emp, "2026-03-07", "2026-03-08")
    assert figures(day(spring, "2026-03-07")) == (420, 420, 0, 0)
    assert figures(day(spring, "2026-03-08")) == (0, 0, 0, 0)
    fall = await timesheet(api, tenant_a.manager, emp, "2026-10-31", "2026-11-01")
    assert figures(day(fall, "2026-10-31")) == (540, 540, 0, 0)
    assert figures(day(fall, "2026-11-01")) == (0, 0, 0, 0)
    ordinary = await timesheet(api, tenant_a.manager, emp, "2026-03-14", "2026-03-14")
    assert ordinary["days"][0]["scheduledMinutes"] == 480


async def test_shifts_in_the_spring_forward_gap_are_never_negative_nor_overtime(
    api: Api, tenant_a: TenantFixture, owner_sql
) -> None:
    emp = await new_employee(api, tenant_a)  # the tenant's America/New_York
    # Sundays: 02:30-03:00 lies wholly in the 2026-03-08 gap, 03:00-04:00 follows it
    await schedule(api, tenant_a, emp, "2026-03-01", "2026-03-15", (7, "02:30", "03:00"), (7, "03:00", "04:00"))
    punches = [(IN, at(NY, "2026-03-08", "03:00")), (OUT, at(NY, "2026-03-08", "04:00"))]
    insert_punches(owner_sql, tenant_a, emp, punches)
    sheet = await timesheet(api, tenant_a.manager, emp, "2026-03-01", "2026-03-15")
    assert figures(day(sheet, "2026-03-01")) == (90, 0, 0, 0)
    assert figures(day(sheet, "2026-03-08")) == (60, 60, 0, 0)  # not (30, 60, 0, 30)
    assert all(d["scheduledMinutes"] >= 0 and d["overtimeMinutes"] == 0 for d in sheet["days"])


async def test_employee_zone_overrides_the_tenant_zone(api: Api, tenant_a: TenantFixture, owner_sql) -> None:
    tokyo = "Asia/Tokyo"
    emp = await new_employee(api, tenant_a, timezone=tokyo)
    await schedule(api, tenant_a, emp, "2026-06-01", "2026-06-30", (2, "09:00", "17:00"))  # Tuesdays, Tokyo
    ids = insert_punches(
        owner_sql,
        tenant_a,
        emp,
        [
            # Tuesday 08:55 in Tokyo is Monday 19:55 in New York
            (IN, at(tokyo, "2026-06-02", "08:55")),
            (OUT, at(tokyo, "2026-06-02", "17:00")),
            # unscheduled: Wednesday 07:00 Tokyo = Tuesday 18:00 New York
            (IN, at(tokyo, "2026-06-03", "07:00")),
            (OUT, at(tokyo, "2026-06-03", "08:00")),
        ],
    )
    flagged = insert_exception(owner_sql, tenant_a, emp, "unscheduled_punch", punch_id=ids[2])
    sheet = await timesheet(api, tenant_a.manager, emp, "2026-06-01", "2026-06-03")
    assert figures(day(sheet, "2026-06-01")) == (0, 0, 0, 0)
    assert figures(day(sheet, "2026-06-02")) == (480, 485, 0, 0)
    assert figures(day(sheet, "2026-06-03")) == (0, 60, 0, 0)
    assert [x["id"] for x in day(sheet, "2026-06-03")["exceptions"]] == [str(flagged)]
    assert day(sheet, "2026-06-02")["exceptions"] == []


async def test_voided_punches_are_ignored_and_open_intervals_count_nothing(
    api: Api, tenant_a: TenantFixture, owner_sql
) -> None:
    emp = await new_employee(api, tenant_a)
    await schedule(
        api, tenant_a, emp, "2026-06-01", "2026-06-30", (1, "09:00", "17:00"), (2, "09:00", "17:00")
    )
    insert_punches(
        owner_sql,
        tenant_a,
        emp,
        [
            (IN, at(NY, "2026-06-01", "09:00")),
            (OUT, at(NY, "2026-06-01", "11:00"), True),  # voided: the interval runs to 17:00
            (BS, at(NY, "2026-06-01", "12:00"), True),  # voided break
            (OUT, at(NY, "2026-06-01", "17:00")),
            (IN, at(NY, "2026-06-02", "09:00")),  # never closed
            (BS, at(NY, "2026-06-02", "12:00")),
            (BE, at(NY, "2026-06-02", "12:30")),
        ],
    )
    sheet = await timesheet(api, tenant_a.manager, emp, "2026-06-01", "2026-06-02")
    assert figures(day(sheet, "2026-06-01")) == (480, 480, 0, 0)
    assert figures(day(sheet, "2026-06-02")) == (480, 0, 0, 0)


async def test_soft_deleted_schedules_and_shifts_schedule_nothing(api: Api, tenant_a: TenantFixture) -> None:
    emp = await new_employee(api, tenant_a)
    kept = await schedule(
        api, tenant_a, emp, "2026-06-01", "2026-06-07", (1, "09:00", "17:00"), (2, "09:00", "12:00")
    )
    r = await api.req(
        "DELETE", f"/api/schedules/{kept['id']}/shifts/{kept['shifts'][1]['id']}", tenant_a.manager
    )
    assert r.status_code == 204
    gone = await schedule(api, tenant_a, emp, "2026-06-08", "2026-06-14", (1, "09:00", "17:00"))
    assert (await api.req("DELETE", f"/api/schedules/{gone['id']}", tenant_a.manager)).status_code == 204
    sheet = await timesheet(api, tenant_a.manager, emp, "2026-06-01", "2026-06-14")
    assert [d["scheduledMinutes"] for d in sheet["days"] if d["scheduledMinutes"]] == [480]
    assert day(sheet, "2026-06-01")["scheduledMinutes"] == 480


async def test_role_rules_and_range_rules(api: Api, tenant_a: TenantFixture) -> None:
    other = await new_employee(api, tenant_a)
    own = await api.req(
        "GET",
        f"/api/timesheets?employeeId={tenant_a.employee_id}&from=2026-06-01&to=2026-06-01",
        tenant_a.employee,
    )
    assert own.status_code == 200
    r = await api.req(
        "GET", f"/api/timesheets?employeeId={other}&from=2026-06-01&to=2026-06-01", tenant_a.employee
    )
    assert r.status_code == 403
    assert r.headers["content-type"].startswith("application/problem+json")
    assert (
        await api.req(
            "GET", f"/api/timesheets?employeeId={other}&from=2026-06-01&to=2026-06-01", tenant_a.manager
        )
    ).status_code == 200
    assert (
        await api.req(
            "GET", f"/api/timesheets?employeeId={other}&from=2026-06-01&to=2026-06-01", tenant_a.admin
        )
    ).status_code == 200
    # staff must name the employee; unknown ids are 404
    assert (
        await api.req("GET", "/api/timesheets?from=2026-06-01&to=2026-06-01", tenant_a.manager)
    ).status_code == 422
    assert (
        await api.req(
            "GET",
            f"/api/timesheets?employeeId={uuid.uuid4()}&from=2026-06-01&to=2026-06-01",
            tenant_a.manager,
        )
    ).status_code == 404
    # ranges: both required, to >= from, at most 366 days
    base = f"/api/timesheets?employeeId={other}"
    assert (await api.req("GET", base + "&from=2026-06-01", tenant_a.manager)).status_code == 422
    assert (
        await api.req("GET", base + "&from=2026-06-02&to=2026-06-01", tenant_a.manager)
    ).status_code == 422
    assert (
        await api.req("GET", base + "&from=2026-13-01&to=2026-06-01", tenant_a.manager)
    ).status_code == 422
    assert (
        await api.req("GET", base + "&from=2026-01-01&to=2027-01-01", tenant_a.manager)
    ).status_code == 200
    assert (
        await api.req("GET", base + "&from=2026-01-01&to=2027-01-02", tenant_a.manager)
    ).status_code == 422
    assert (await api.req("GET", base + "&from=2026-06-01&to=2026-06-01")).status_code == 401
    # export: manager+ only, at most 93 days
    exp = "/api/timesheets/export?from=2026-06-01&to=2026-06-07"
    assert (await api.req("GET", exp, tenant_a.employee)).status_code == 403
    assert (await api.req("GET", exp, tenant_a.manager)).status_code == 200
    assert (await api.req("GET", exp, tenant_a.admin)).status_code == 200
    assert (
        await api.req("GET", "/api/timesheets/export?from=2026-01-01&to=2026-04-03", tenant_a.manager)
    ).status_code == 200
    assert (
        await api.req("GET", "/api/timesheets/export?from=2026-01-01&to=2026-04-04", tenant_a.manager)
    ).status_code == 422


async def test_csv_export_shape_order_and_injection_guard(
    api: Api, tenant_a: TenantFixture, owner_sql
) -> None:
    evil = await new_employee(
        api, tenant_a, first='=HYPERLINK("http://x","y")', last="Adams", external_id="@SUM(1+1)"
    )
    minus = await new_employee(api, tenant_a, first="-2+3", last="Adams", external_id='E, "quoted"')
    zed = await new_employee(api, tenant_a, first="Zoe", last="Zimmer")
    gone = await new_employee(api, tenant_a, first="Gone", last="Aaron")
    assert (await api.req("DELETE", f"/api/employees/{gone}", tenant_a.manager)).status_code == 204
    sched = await schedule(api, tenant_a, zed, "2026-06-01", "2026-06-30", (1, "09:00", "17:00"))
    ids = insert_punches(
        owner_sql,
        tenant_a,
        zed,
        [
            (IN, at(NY, "2026-06-01", "09:20")),
            (OUT, at(NY, "2026-06-01", "17:00")),
            (IN, at(NY, "2026-06-02", "10:00")),
            (OUT, at(NY, "2026-06-02", "11:00")),
        ],
    )
    shift_id = sched["shifts"][0]["id"]
    insert_exception(owner_sql, tenant_a, zed, "late_arrival", shift_id=shift_id, shift_date="2026-06-01")
    insert_exception(
        owner_sql,
        tenant_a,
        zed,
        "early_departure",
        status="approved",
        shift_id=shift_id,
        shift_date="2026-06-01",
    )
    insert_exception(
        owner_sql, tenant_a, zed, "overtime", status="withdrawn", shift_id=shift_id, shift_date="2026-06-01"
    )
    insert_exception(owner_sql, tenant_a, zed, "unscheduled_punch", punch_id=ids[2])

    r = await api.req("GET", "/api/timesheets/export?from=2026-06-01&to=2026-06-02", tenant_a.manager)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.headers["content-disposition"] == 'attachment; filename="timesheets-2026-06-01-2026-06-02.csv"'
    lines = r.text.split("\r\n")
    assert lines[0] == (
        "employee_id,external_id,last_name,first_name,date,scheduled_minutes,worked_minutes,"
        "break_minutes,overtime_minutes,exception_count,exception_types"
    )
    rows = parse_csv(r.text)
    # active employees only, by last name, first name, id; dates ascending
    who = [x["employee_id"] for x in rows]
    assert str(gone) not in who
    assert who == [str(minus)] * 2 + [str(evil)] * 2 + [str(tenant_a.employee_id)] * 2 + [str(zed)] * 2
    assert [x["date"] for x in rows] == ["2026-06-01", "2026-06-02"] * 4
    # formula cells are neutralised; commas and quotes survive quoting
    evil_row = next(x for x in rows if x["employee_id"] == str(evil))
    assert evil_row["first_name"] == '\'=HYPERLINK("http://x","y")'
    assert evil_row["external_id"] == "'@SUM(1+1)"
    minus_row = next(x for x in rows if x["employee_id"] == str(minus))
    assert minus_row["first_name"] == "'-2+3"
    assert minus_row["external_id"] == 'E, "quoted"'
    z1, z2 = (x for x in rows if x["employee_id"] == str(zed))
    assert (z1["scheduled_minutes"], z1["worked_minutes"], z1["break_minutes"], z1["overtime_minutes"]) == (
        "480",
        "460",
        "0",
        "0",
    )
    assert (z1["exception_count"], z1["exception_types"]) == ("2", "early_departure;late_arrival")
    assert (z2["worked_minutes"], z2["exception_count"], z2["exception_types"]) == (
        "60",
        "1",
        "unscheduled_punch",
    )
    eve = next(x for x in rows if x["employee_id"] == str(tenant_a.employee_id))
    assert (eve["external_id"], eve["last_name"], eve["exception_count"], eve["exception_types"]) == (
        "",
        "Worker",
        "0",
        "",
    )


async def test_the_export_keeps_a_leavers_worked_days(api: Api, tenant_a: TenantFixture, owner_sql) -> None:
    """An employee deactivated after working in the period stays in the payroll export with
    those hours (a past period exports the same after someone leaves); one deactivated with no
    work in it does not appear."""
    leaver = await new_employee(api, tenant_a, first="Lee", last="Leaver")
    idle = await new_employee(api, tenant_a, first="Ida", last="Idle")
    insert_punches(owner_sql, tenant_a, leaver,
                   [(IN, at(NY, "2026-07-06", "09:00")), (OUT, at(NY, "2026-07-06", "17:00"))])
    export = "/api/timesheets/export?from=2026-07-06&to=2026-07-07"

    def rows_of(text: str, employee: uuid.UUID) -> list[tuple[str, str]]:
        return [(r["date"], r["worked_minutes"]) for r in parse_csv(text) if r["employee_id"] == str(employee)]

    before = (await api.req("GET", export, tenant_a.manager)).text
    assert rows_of(before, leaver) == [("2026-07-06", "480"), ("2026-07-07", "0")]
    for who in (leaver, idle):
        assert (await api.req("DELETE", f"/api/employees/{who}", tenant_a.manager)).status_code == 204
    after = (await api.req("GET", export, tenant_a.manager)).text
    assert rows_of(after, leaver) == rows_of(before, leaver)
    assert rows_of(after, idle) == []


@pytest.mark.parametrize("path", ["/api/timesheets", "/api/timesheets/export"])
@pytest.mark.parametrize("bound", ["from", "to"])
async def test_a_range_bound_not_yyyy_mm_dd_is_refused(
    api: Api, tenant_a: TenantFixture, path: str, bound: str
) -> None:
    """Contract 1: dates are exactly `YYYY-MM-DD`; a midnight instant is not a date."""
    params = {"employeeId": str(tenant_a.employee_id), "from": "2026-11-23", "to": "2026-11-29"}
    for bad in ("2026-11-23T00:00:00Z", "2026-11-23 00:00:00", "20261123", "2026-11-3"):
        r = await api.req("GET", path, tenant_a.manager, params={**params, bound: bad})
        assert r.status_code == 422, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["type"].endswith("/validation-failed")
        [error] = r.json()["errors"]
        assert error["field"] == bound and "YYYY-MM-DD" in error["message"], error
    assert (await api.req("GET", path, tenant_a.manager, params=params)).status_code == 200


@pytest.mark.parametrize("path", ["/api/timesheets", "/api/timesheets/export"])
async def test_range_refusals_have_the_shape_of_every_other_list(
    api: Api, tenant_a: TenantFixture, path: str
) -> None:
    """`from` after `to` is the 422 every other range answers (field `from`, same message);
    a span too long names `to`; a manager without `employeeId` names that parameter."""
    params = {"employeeId": str(tenant_a.employee_id)}
    inverted = await api.req("GET", path, tenant_a.manager, params={**params, "from": "2026-06-02", "to": "2026-06-01"})
    assert inverted.status_code == 422, inverted.text
    assert inverted.json()["type"].endswith("/validation-failed")
    assert inverted.json()["errors"] == [{"field": "from", "message": "from must not be after to"}]
    too_long = await api.req("GET", path, tenant_a.manager, params={**params, "from": "2020-01-01", "to": "2026-06-01"})
    assert too_long.status_code == 422 and too_long.json()["type"].endswith("/validation-failed")
    assert [e["field"] for e in too_long.json()["errors"]] == ["to"]
    if path == "/api/timesheets":
        unnamed = await api.req("GET", path, tenant_a.manager, params={"from": "2026-06-01", "to": "2026-06-01"})
        assert unnamed.status_code == 422 and unnamed.json()["type"].endswith("/validation-failed")
        assert unnamed.json()["errors"] == [{"field": "employeeId", "message": "required"}]
