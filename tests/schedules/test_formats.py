"""Schedule and shift input in the contract's forms only (section 1): dates exactly
`YYYY-MM-DD` within the timesheets' bounds, times `HH:MM`, `dayOfWeek` a JSON integer, and
`from` after `to` refused like every other range. A refusal is a 422 problem naming the field
and stores nothing."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from tests.conftest import Api, TenantFixture, tenant_counts
from tests.schedules.test_schedules import body

pytestmark = pytest.mark.tenants

TABLES = ("schedules", "shifts", "audit_log", "idempotency_records")


def refused(r: Any, field: str, text: str) -> None:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["type"].endswith("/validation-failed")
    assert [e["field"] for e in r.json()["errors"]] == [field], r.json()
    assert text in r.json()["errors"][0]["message"], r.json()


@pytest.mark.parametrize(("start", "end", "field", "text"), [
    ("2027-01-01T00:00:00Z", "2027-01-31", "startDate", "YYYY-MM-DD"),
    ("2027-01-01", "2027-01-31T00:00:00", "endDate", "YYYY-MM-DD"),
    ("2027-1-1", "2027-01-31", "startDate", "YYYY-MM-DD"),
    ("20270101", "2027-01-31", "startDate", "YYYY-MM-DD"),
    ("1899-12-31", "1900-01-31", "startDate", "between 1900-01-01 and 9998-12-31"),
    ("9998-12-01", "9999-01-01", "endDate", "between 1900-01-01 and 9998-12-31"),
])
async def test_a_schedule_date_not_yyyy_mm_dd_or_out_of_bounds_is_refused(
    api: Api, tenant_a: TenantFixture, owner_sql: psycopg.Connection, start: str, end: str, field: str, text: str
) -> None:
    before = tenant_counts(owner_sql, tenant_a.id, *TABLES)
    r = await api.req("POST", "/api/schedules", tenant_a.manager, key="s-1",
                      json=body(tenant_a.employee_id, start, end))
    refused(r, field, text)
    assert tenant_counts(owner_sql, tenant_a.id, *TABLES) == before


async def test_the_date_bounds_themselves_are_accepted_and_their_timesheets_read(
    api: Api, tenant_a: TenantFixture
) -> None:
    for start, end in (("1900-01-01", "1900-01-07"), ("9998-12-25", "9998-12-31")):
        shifts = [{"dayOfWeek": d, "startTime": "22:00", "endTime": "06:00"} for d in range(1, 8)]
        r = await api.req("POST", "/api/schedules", tenant_a.manager,
                          json=body(tenant_a.employee_id, start, end, shifts=shifts))
        assert r.status_code == 201, r.text
        sheet = await api.req("GET", "/api/timesheets", tenant_a.manager,
                              params={"employeeId": str(tenant_a.employee_id), "from": start, "to": end})
        assert sheet.status_code == 200, sheet.text
        assert sheet.json()["totals"]["scheduledMinutes"] > 0


@pytest.mark.parametrize(("shift", "field", "text"), [
    ({"dayOfWeek": True}, "dayOfWeek", "JSON integer"),
    ({"dayOfWeek": "1"}, "dayOfWeek", "JSON integer"),
    ({"dayOfWeek": 1.5}, "dayOfWeek", "integer"),
    ({"startTime": "9:00"}, "startTime", "HH:MM"),
    ({"startTime": "09:00:00"}, "startTime", "HH:MM"),
    ({"startTime": "09:00:00Z"}, "startTime", "HH:MM"),
    ({"startTime": "09:00+01:00"}, "startTime", "HH:MM"),
    ({"endTime": "24:00"}, "endTime", "HH:MM"),
    ({"endTime": 32400}, "endTime", "HH:MM"),
])
async def test_a_shift_with_a_lenient_day_or_time_is_refused(
    api: Api, tenant_a: TenantFixture, owner_sql: psycopg.Connection, shift: dict[str, Any], field: str, text: str
) -> None:
    r = await api.req("POST", "/api/schedules", tenant_a.manager, json=body(tenant_a.employee_id))
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    before = tenant_counts(owner_sql, tenant_a.id, *TABLES)
    new = {"dayOfWeek": 1, "startTime": "09:00", "endTime": "17:00", **shift}
    refused(await api.req("POST", f"/api/schedules/{sid}/shifts", tenant_a.manager, key="sh-1", json=new), field, text)
    # the same refusal inside a schedule's body names the shift
    whole = await api.req("POST", "/api/schedules", tenant_a.manager,
                          json=body(tenant_a.employee_id, "2026-05-01", "2026-05-31", shifts=[new]))
    assert whole.status_code == 422 and [e["field"] for e in whole.json()["errors"]] == [f"shifts.0.{field}"]
    assert tenant_counts(owner_sql, tenant_a.id, *TABLES) == before
    # the refusal was not stored as the key's answer
    ok = await api.req("POST", f"/api/schedules/{sid}/shifts", tenant_a.manager, key="sh-1",
                       json={"dayOfWeek": 1, "startTime": "09:00", "endTime": "17:00"})
    assert ok.status_code == 201, ok.text


async def test_valid_days_and_times_are_accepted(api: Api, tenant_a: TenantFixture) -> None:
    """`dayOfWeek` 7.0 is the same JSON number as 7 (the OpenAPI `integer` matches it)."""
    r = await api.req("POST", "/api/schedules", tenant_a.manager, json=body(tenant_a.employee_id))
    sid = r.json()["id"]
    for day, start, end in ((1, "00:00", "08:00"), (7.0, "23:59", "00:00")):
        s = await api.req("POST", f"/api/schedules/{sid}/shifts", tenant_a.manager,
                          json={"dayOfWeek": day, "startTime": start, "endTime": end})
        assert s.status_code == 201, s.text
        assert (s.json()["dayOfWeek"], s.json()["startTime"], s.json()["endTime"]) == (int(day), start, end)


@pytest.mark.parametrize("bound", ["from", "to"])
async def test_a_list_bound_not_yyyy_mm_dd_is_refused(api: Api, tenant_a: TenantFixture, bound: str) -> None:
    for bad in ("2026-11-23T00:00:00Z", "2026-11-23 00:00", "20261123"):
        refused(await api.req("GET", "/api/schedules", tenant_a.manager, params={bound: bad}), bound, "YYYY-MM-DD")
    assert (await api.req("GET", "/api/schedules", tenant_a.manager, params={bound: "2026-11-23"})).status_code == 200


async def test_from_after_to_is_refused_as_on_every_range(api: Api, tenant_a: TenantFixture) -> None:
    await api.req("POST", "/api/schedules", tenant_a.manager, json=body(tenant_a.employee_id))
    r = await api.req("GET", "/api/schedules", tenant_a.manager, params={"from": "2026-12-05", "to": "2026-12-01"})
    refused(r, "from", "from must not be after to")
    day = "2026-03-02"
    one_day = await api.req("GET", "/api/schedules", tenant_a.manager, params={"from": day, "to": day})
    assert one_day.status_code == 200 and len(one_day.json()["items"]) == 1  # both inclusive
