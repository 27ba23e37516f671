"""Punches and the exception engine through the API, on a real database."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import psycopg

from tests.conftest import Api, TenantFixture
from unifocus.db.pool import Database
from unifocus.timeexceptions.sweep import sweep_employee, sweep_tenant

# Monday 2026-03-02 in America/New_York (EST, UTC-5): a 09:00-17:00 shift is 14:00-22:00Z.
MONDAY = "2026-03-02"


async def schedule(api: Api, t: TenantFixture, start: str = "09:00", end: str = "17:00", days: tuple = (1,)) -> dict:
    r = await api.req("POST", "/api/schedules", t.manager, json={
        "employeeId": str(t.employee_id), "startDate": "2026-03-01", "endDate": "2026-03-31",
        "shifts": [{"dayOfWeek": d, "startTime": start, "endTime": end} for d in days]})
    assert r.status_code == 201, r.text
    return r.json()


async def punch(api: Api, t: TenantFixture, kind: str, ts: str, token: str | None = None, **extra: object):
    return await api.req("POST", "/api/punches", token or t.employee,
                         json={"employeeId": str(t.employee_id), "type": kind, "timestamp": ts, **extra})


async def test_late_clock_in_is_flagged_in_the_punch_answer(api: Api, tenant_a: TenantFixture) -> None:
    sched = await schedule(api, tenant_a)
    r = await punch(api, tenant_a, "clock_in", f"{MONDAY}T09:06:00-05:00")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["shiftId"] == sched["shifts"][0]["id"] and body["shiftDate"] == MONDAY
    assert body["timestamp"] == f"{MONDAY}T14:06:00Z"
    [exc] = body["exceptions"]
    assert exc["type"] == "late_arrival" and exc["details"]["minutesLate"] == 6
    assert exc["details"]["scheduledStart"] == f"{MONDAY}T14:00:00Z"


async def test_at_grace_is_not_late(api: Api, tenant_a: TenantFixture) -> None:
    await schedule(api, tenant_a)
    r = await punch(api, tenant_a, "clock_in", f"{MONDAY}T09:05:00-05:00")
    assert r.status_code == 201 and r.json()["exceptions"] == []


async def test_void_withdraws_pending_but_never_touches_approved(api: Api, tenant_a: TenantFixture) -> None:
    await schedule(api, tenant_a, days=(1, 2))
    late = (await punch(api, tenant_a, "clock_in", f"{MONDAY}T09:30:00-05:00")).json()
    exc_id = late["exceptions"][0]["id"]
    r = await api.req("DELETE", f"/api/punches/{late['id']}?reason=wrong%20badge", tenant_a.manager)
    assert r.status_code == 204
    got = (await api.req("GET", f"/api/exceptions/{exc_id}", tenant_a.manager)).json()
    assert got["status"] == "withdrawn"
    again = await api.req("DELETE", f"/api/punches/{late['id']}?reason=x", tenant_a.manager)
    assert again.status_code == 409
    voided = (await api.req("GET", f"/api/punches/{late['id']}", tenant_a.manager)).json()
    assert voided["voided"] is True and voided["voidReason"] == "wrong badge"
    # Tuesday: approve the late arrival, then void its punch: it stays approved.
    late2 = (await punch(api, tenant_a, "clock_in", "2026-03-03T09:40:00-05:00")).json()
    exc2 = late2["exceptions"][0]["id"]
    ok = await api.req("PUT", f"/api/exceptions/{exc2}/resolve", tenant_a.manager,
                       json={"status": "approved", "note": "bus strike"})
    assert ok.status_code == 200 and ok.json()["status"] == "approved" and ok.json()["note"] == "bus strike"
    twice = await api.req("PUT", f"/api/exceptions/{exc2}/resolve", tenant_a.manager, json={"status": "rejected"})
    assert twice.status_code == 409
    await api.req("DELETE", f"/api/punches/{late2['id']}?reason=dup", tenant_a.manager)
    assert (await api.req("GET", f"/api/exceptions/{exc2}", tenant_a.manager)).json()["status"] == "approved"


async def test_out_of_sequence_is_accepted_and_flagged(api: Api, tenant_a: TenantFixture) -> None:
    await schedule(api, tenant_a)
    r = await punch(api, tenant_a, "clock_out", f"{MONDAY}T17:00:00-05:00")
    assert r.status_code == 201
    assert [e["type"] for e in r.json()["exceptions"]] == ["missed_punch"]


async def test_punch_rules(api: Api, tenant_a: TenantFixture, tenant_b: TenantFixture) -> None:
    future = (datetime.now(UTC) + timedelta(minutes=6)).isoformat()
    assert (await punch(api, tenant_a, "clock_in", future)).status_code == 422
    soon = (datetime.now(UTC) + timedelta(minutes=4)).isoformat()
    assert (await punch(api, tenant_a, "clock_in", soon)).status_code == 201
    naive = await punch(api, tenant_a, "clock_in", "2026-03-02T09:00:00")
    assert naive.status_code == 422
    other = await api.req("POST", "/api/employees", tenant_a.manager, json={"firstName": "O", "lastName": "P"})
    r = await api.req("POST", "/api/punches", tenant_a.employee, json={
        "employeeId": other.json()["id"], "type": "clock_in", "timestamp": "2026-03-02T09:00:00-05:00"})
    assert r.status_code == 403
    manual = await punch(api, tenant_a, "clock_in", "2026-03-04T09:00:00-05:00", source="manual")
    assert manual.status_code == 403
    assert (await punch(api, tenant_a, "clock_in", "2026-03-04T09:00:00-05:00", token=tenant_a.manager,
                        source="manual")).json()["source"] == "manual"
    cross = await api.req("POST", "/api/punches", tenant_b.manager, json={
        "employeeId": str(tenant_a.employee_id), "type": "clock_in", "timestamp": "2026-03-02T09:00:00-05:00"})
    assert cross.status_code == 404 and str(tenant_a.employee_id) not in cross.text
    voider = await api.req("DELETE", f"/api/punches/{manual.json().get('id', tenant_a.id)}?reason=x", tenant_a.employee)
    assert voider.status_code == 403
    no_reason = await api.req("DELETE", f"/api/punches/{tenant_a.id}", tenant_a.manager)
    assert no_reason.status_code == 422


async def test_batch_items_are_independent(
    api: Api, tenant_a: TenantFixture, tenant_b: TenantFixture, owner_sql
) -> None:
    items = [
        {"clientPunchId": "c1", "employeeId": str(tenant_a.employee_id), "type": "clock_in",
         "timestamp": "2026-03-05T09:00:00-05:00", "device": "clock-7"},
        {"clientPunchId": "c2", "employeeId": str(tenant_b.employee_id), "type": "clock_in",
         "timestamp": "2026-03-05T09:00:00-05:00", "device": "clock-7"},
        {"clientPunchId": "c3", "employeeId": str(tenant_a.employee_id), "type": "teleport",
         "timestamp": "2026-03-05T10:00:00-05:00", "device": "clock-7"},
        {"clientPunchId": "c4", "employeeId": str(tenant_a.employee_id), "type": "clock_out",
         "timestamp": "2026-03-05T17:00:00-05:00", "device": "clock-7"},
    ]
    r = await api.req("POST", "/api/punches/batch", tenant_a.manager, json={"punches": items})
    assert r.status_code == 200, r.text
    assert [x["status"] for x in r.json()["results"]] == ["created", "rejected", "rejected", "created"]
    assert r.json()["results"][1]["error"] == "employee not found"
    assert r.json()["results"][1].get("punch") is None
    again = await api.req("POST", "/api/punches/batch", tenant_a.manager, json={"punches": [items[0], items[3]]})
    assert [x["status"] for x in again.json()["results"]] == ["duplicate", "duplicate"]
    count = owner_sql.execute("SELECT count(*) FROM punches WHERE tenant_id = %s AND device = 'clock-7'",
                              (tenant_a.id,)).fetchone()[0]
    assert count == 2
    too_many = await api.req("POST", "/api/punches/batch", tenant_a.manager, json={"punches": [items[0]] * 501})
    assert too_many.status_code == 422
    # an item that is not even an object is rejected on its own; the others are stored
    item = {**items[0], "clientPunchId": "c5", "timestamp": "2026-03-06T09:00:00-05:00"}
    odd = await api.req("POST", "/api/punches/batch", tenant_a.manager,
                        json={"punches": [None, 5, "x", [], item]})
    assert odd.status_code == 200, odd.text
    assert [x["status"] for x in odd.json()["results"]] == ["rejected"] * 4 + ["created"]


async def test_sweep_raises_absence_and_missed_punch_once(api: Api, tenant_a: TenantFixture, app_client) -> None:
    await schedule(api, tenant_a, days=(1, 2))
    await punch(api, tenant_a, "clock_in", "2026-03-03T09:00:00-05:00")  # Tuesday, never clocks out
    app = app_client[0]
    db: Database = app.state.db
    now = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
    raised = await sweep_employee(db, tenant_a.id, tenant_a.employee_id, now, 8)
    assert raised >= 2
    again = await sweep_employee(db, tenant_a.id, tenant_a.employee_id, now, 8)
    assert again == 0
    listed = (await api.req("GET", f"/api/exceptions?employeeId={tenant_a.employee_id}", tenant_a.manager)).json()
    kinds = sorted((e["type"], e["shiftDate"]) for e in listed["items"])
    assert ("absence", "2026-03-02") in kinds and ("missed_punch", "2026-03-03") in kinds
    assert len(kinds) == len(set(kinds))


async def test_employee_reads_only_own(api: Api, tenant_a: TenantFixture) -> None:
    other = (await api.req("POST", "/api/employees", tenant_a.manager, json={"firstName": "Z", "lastName": "Y"})).json()
    r = await api.req("POST", "/api/punches", tenant_a.manager, json={
        "employeeId": other["id"], "type": "clock_in", "timestamp": "2026-03-02T09:00:00-05:00"})
    pid = r.json()["id"]
    assert (await api.req("GET", f"/api/punches/{pid}", tenant_a.employee)).status_code == 404
    assert (await api.req("GET", f"/api/punches?employeeId={other['id']}", tenant_a.employee)).status_code == 403
    mine = await api.req("GET", "/api/punches", tenant_a.employee)
    assert all(p["employeeId"] == str(tenant_a.employee_id) for p in mine.json()["items"])
    assert (await api.req("GET", "/api/exceptions", tenant_a.employee)).status_code == 200


async def test_punch_owned_exceptions_are_read_back_and_withdrawn(api: Api, tenant_a: TenantFixture) -> None:
    """Exceptions owned by a punch (no shift) reach the engine through the window's punches
    (migration 0007): later punches in the window neither raise them again (the unique index
    would refuse the write) nor withdraw them."""
    first = (await punch(api, tenant_a, "clock_in", f"{MONDAY}T09:00:00-05:00")).json()
    [owned] = first["exceptions"]
    assert owned["type"] == "unscheduled_punch" and owned["shiftId"] is None
    out = await punch(api, tenant_a, "clock_out", f"{MONDAY}T13:00:00-05:00")
    assert out.status_code == 201 and out.json()["exceptions"] == [], out.text
    assert (await api.req("GET", f"/api/exceptions/{owned['id']}", tenant_a.manager)).json()["status"] == "pending"
    second = await punch(api, tenant_a, "clock_in", f"{MONDAY}T15:00:00-05:00")
    [other] = second.json()["exceptions"]
    assert other["type"] == "unscheduled_punch" and other["punchId"] == second.json()["id"]
    # the second session's punch sees both: its clock_out withdraws nothing and raises nothing
    end = await punch(api, tenant_a, "clock_out", f"{MONDAY}T16:00:00-05:00")
    assert end.status_code == 201 and end.json()["exceptions"] == [], end.text
    for exc in (owned, other):
        assert (await api.req("GET", f"/api/exceptions/{exc['id']}", tenant_a.manager)).json()["status"] == "pending"


async def test_voiding_an_unscheduled_punch_withdraws_its_own_exception(
    api: Api, tenant_a: TenantFixture, owner_sql: psycopg.Connection
) -> None:
    """A punch-owned exception's cause is the punch: voided, it is withdrawn (and audited);
    another punch's exception stays. (The zone's re-evaluation reads live punches only, so
    before the fix the voided punch's exception stayed pending.)"""
    first = (await punch(api, tenant_a, "clock_in", f"{MONDAY}T09:00:00-05:00")).json()
    [owned] = first["exceptions"]
    await punch(api, tenant_a, "clock_out", f"{MONDAY}T13:00:00-05:00")
    [other] = (await punch(api, tenant_a, "clock_in", f"{MONDAY}T15:00:00-05:00")).json()["exceptions"]
    r = await api.req("DELETE", f"/api/punches/{first['id']}?reason=wrong%20badge", tenant_a.manager)
    assert r.status_code == 204
    got = (await api.req("GET", f"/api/exceptions/{owned['id']}", tenant_a.manager)).json()
    assert got["status"] == "withdrawn" and got["note"] == "cause removed"
    assert (await api.req("GET", f"/api/exceptions/{other['id']}", tenant_a.manager)).json()["status"] == "pending"
    audited = owner_sql.execute("SELECT action FROM audit_log WHERE tenant_id = %s AND entity_id = %s ORDER BY seq",
                                (tenant_a.id, owned["id"])).fetchall()
    assert [a for (a,) in audited] == ["created", "withdrawn"]


async def test_a_device_repeat_answers_the_documented_200(api: Api, tenant_a: TenantFixture) -> None:
    """The 200 of a repeated device punch is in /openapi.json (a generated client must accept
    it), and the real answer has exactly the documented fields: the stored punch, no exceptions."""
    first = await punch(api, tenant_a, "clock_in", f"{MONDAY}T09:00:00-05:00", device="clock-3", clientPunchId="r-1")
    again = await punch(api, tenant_a, "clock_in", f"{MONDAY}T09:00:00-05:00", device="clock-3", clientPunchId="r-1")
    assert (first.status_code, again.status_code) == (201, 200), again.text
    assert again.headers["location"] == f"/api/punches/{first.json()['id']}"
    doc = (await api.client.get("/openapi.json")).json()
    documented = doc["paths"]["/api/punches"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    schema = doc["components"]["schemas"][documented["$ref"].rsplit("/", 1)[-1]]
    assert set(again.json()) == set(schema["properties"])
    assert {k: v for k, v in first.json().items() if k != "exceptions"} == again.json()


async def test_the_sweep_finds_an_open_break_of_an_employee_with_no_schedule(
    api: Api, tenant_a: TenantFixture, app_client
) -> None:
    """No schedule anywhere near: the session matches no occurrence, but a break left open
    past maxBreakMinutes + missedPunchAfterMinutes is a missed_punch, and the scheduled sweep
    (its pass over the tenant, not one named employee) must find the employee to raise it.
    (`sweep` runs this for every tenant; the test database holds other tests' tenants.)"""
    for kind, ts in (("clock_in", "2020-06-01T08:00:00Z"), ("break_start", "2020-06-01T10:00:00Z")):
        assert (await punch(api, tenant_a, kind, ts)).status_code == 201
    db: Database = app_client[0].state.db
    assert await sweep_tenant(db, tenant_a.id, datetime(2020, 6, 1, 11, 59, tzinfo=UTC)) == 0  # not yet
    assert await sweep_tenant(db, tenant_a.id, datetime(2020, 6, 1, 12, 1, tzinfo=UTC)) == 1
    listed = (await api.req("GET", f"/api/exceptions?employeeId={tenant_a.employee_id}&type=missed_punch",
                            tenant_a.manager)).json()["items"]
    assert [e["details"]["reason"] for e in listed] == ["break_still_open"]
    assert await sweep_tenant(db, tenant_a.id, datetime(2020, 6, 1, 12, 30, tzinfo=UTC)) == 0  # raised once


async def test_batches_naming_the_same_staff_in_other_orders_do_not_deadlock(
    api: Api, tenant_a: TenantFixture
) -> None:
    """Kiosks that come back online together each upload their punches in their own order:
    every batch is answered 200 with every item created, none 503 after a deadlock."""
    staff = [str(tenant_a.employee_id)]
    for n in range(5):
        r = await api.req("POST", "/api/employees", tenant_a.manager, json={"firstName": f"K{n}", "lastName": "Staff"})
        staff.append(r.json()["id"])
    orders = [staff, staff[::-1], staff[2:] + staff[:2]]
    for day in range(4):
        def batch(kiosk: int, order: list[str], day: int = day) -> dict[str, object]:
            base = datetime(2026, 8, 3 + day, 13, tzinfo=UTC) + timedelta(hours=kiosk)
            return {"punches": [{"clientPunchId": f"k{kiosk}-{day}-{j}", "employeeId": e, "type": "clock_in",
                                 "device": f"kiosk-{kiosk}", "timestamp": (base + timedelta(minutes=j)).isoformat()}
                                for j, e in enumerate(order)]}
        answers = await asyncio.gather(*(api.req("POST", "/api/punches/batch", tenant_a.manager, json=batch(k, o))
                                         for k, o in enumerate(orders)))
        for r in answers:
            assert r.status_code == 200, r.text
            assert {x["status"] for x in r.json()["results"]} == {"created"}, r.text
