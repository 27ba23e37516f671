from __future__ import annotations

import pytest

from tests.conftest import Api, TenantFixture

pytestmark = pytest.mark.tenants


def body(employee_id: object, start: str = "2026-03-02", end: str = "2026-03-15", **kw: object) -> dict:
    return {"employeeId": str(employee_id), "startDate": start, "endDate": end, **kw}


async def test_schedule_with_shifts_round_trips_and_is_audited(api: Api, tenant_a: TenantFixture, owner_sql) -> None:
    shifts = [{"dayOfWeek": 1, "startTime": "09:00", "endTime": "17:00"},
              {"dayOfWeek": 5, "startTime": "22:00", "endTime": "06:00"}]
    r = await api.req("POST", "/api/schedules", tenant_a.manager, json=body(tenant_a.employee_id, shifts=shifts))
    assert r.status_code == 201, r.text
    sched = r.json()
    assert [(s["dayOfWeek"], s["startTime"], s["endTime"]) for s in sched["shifts"]] == [
        (1, "09:00", "17:00"), (5, "22:00", "06:00")]
    got = await api.req("GET", f"/api/schedules/{sched['id']}", tenant_a.employee)
    assert got.status_code == 200 and got.json() == sched
    actions = owner_sql.execute(
        "SELECT entity, action FROM audit_log WHERE tenant_id = %s AND employee_id = %s ORDER BY seq",
        (tenant_a.id, tenant_a.employee_id)).fetchall()
    assert sorted(actions) == [("Schedule", "created"), ("Shift", "created"), ("Shift", "created")]


async def test_overlapping_shift_and_overlapping_schedule_are_409(api: Api, tenant_a: TenantFixture) -> None:
    r = await api.req("POST", "/api/schedules", tenant_a.manager, json=body(
        tenant_a.employee_id, shifts=[{"dayOfWeek": 7, "startTime": "22:00", "endTime": "06:00"}]))
    sid = r.json()["id"]
    # Sunday overnight wraps onto Monday 05:00
    clash = await api.req("POST", f"/api/schedules/{sid}/shifts", tenant_a.manager,
                          json={"dayOfWeek": 1, "startTime": "05:00", "endTime": "09:00"})
    assert clash.status_code == 409
    touching = await api.req("POST", f"/api/schedules/{sid}/shifts", tenant_a.manager,
                             json={"dayOfWeek": 1, "startTime": "06:00", "endTime": "09:00"})
    assert touching.status_code == 201
    again = await api.req("POST", "/api/schedules", tenant_a.manager,
                          json=body(tenant_a.employee_id, "2026-03-10", "2026-03-20"))
    assert again.status_code == 409


async def test_date_rules_and_role_rules(api: Api, tenant_a: TenantFixture) -> None:
    bad = await api.req("POST", "/api/schedules", tenant_a.manager,
                        json=body(tenant_a.employee_id, "2026-03-10", "2026-03-01"))
    assert bad.status_code == 422
    denied = await api.req("POST", "/api/schedules", tenant_a.employee, json=body(tenant_a.employee_id))
    assert denied.status_code == 403


async def test_delete_hides_schedule_and_employee_sees_only_own(api: Api, tenant_a: TenantFixture) -> None:
    other = await api.req("POST", "/api/employees", tenant_a.manager, json={"firstName": "O", "lastName": "T"})
    oid = other.json()["id"]
    r = await api.req("POST", "/api/schedules", tenant_a.manager, json=body(oid))
    sid = r.json()["id"]
    assert (await api.req("GET", f"/api/schedules/{sid}", tenant_a.employee)).status_code == 404
    listed = await api.req("GET", "/api/schedules", tenant_a.employee)
    assert all(s["employeeId"] == str(tenant_a.employee_id) for s in listed.json()["items"])
    assert (await api.req("GET", f"/api/schedules?employeeId={oid}", tenant_a.employee)).status_code == 403
    assert (await api.req("DELETE", f"/api/schedules/{sid}", tenant_a.manager)).status_code == 204
    assert (await api.req("GET", f"/api/schedules/{sid}", tenant_a.manager)).status_code == 404


async def test_a_created_shifts_location_answers_and_the_shift_list_is_paged(api: Api, tenant_a: TenantFixture) -> None:
    """The `Location` of a created shift can be fetched (not a 405); the shift list honours
    `limit` and `cursor`, newest first, and a deleted shift leaves both."""
    sched = (await api.req("POST", "/api/schedules", tenant_a.manager, json=body(tenant_a.employee_id))).json()
    sid = sched["id"]
    created = []
    for day in (1, 2, 3):
        r = await api.req("POST", f"/api/schedules/{sid}/shifts", tenant_a.manager,
                          json={"dayOfWeek": day, "startTime": "09:00", "endTime": "17:00"})
        assert r.status_code == 201, r.text
        got = await api.req("GET", r.headers["location"], tenant_a.manager)
        assert got.status_code == 200 and got.json() == r.json()
        assert (await api.req("GET", r.headers["location"], tenant_a.employee)).json() == r.json()  # own schedule
        created.append(r.json())

    first = (await api.req("GET", f"/api/schedules/{sid}/shifts?limit=2", tenant_a.manager)).json()
    assert [s["id"] for s in first["items"]] == [created[2]["id"], created[1]["id"]]
    rest = (await api.req("GET", f"/api/schedules/{sid}/shifts?limit=2&cursor={first['nextCursor']}",
                          tenant_a.manager)).json()
    assert [s["id"] for s in rest["items"]] == [created[0]["id"]] and rest["nextCursor"] is None
    assert (await api.req("GET", f"/api/schedules/{sid}/shifts?limit=0", tenant_a.manager)).status_code == 422

    gone = created[1]
    assert (await api.req("DELETE", f"/api/schedules/{sid}/shifts/{gone['id']}", tenant_a.manager)).status_code == 204
    assert (await api.req("GET", f"/api/schedules/{sid}/shifts/{gone['id']}", tenant_a.manager)).status_code == 404
    listed = (await api.req("GET", f"/api/schedules/{sid}/shifts", tenant_a.manager)).json()
    assert [s["id"] for s in listed["items"]] == [created[2]["id"], created[0]["id"]]


async def test_a_shift_is_404_under_another_schedule_or_to_another_employee(api: Api, tenant_a: TenantFixture) -> None:
    other = await api.req("POST", "/api/employees", tenant_a.manager, json={"firstName": "O", "lastName": "T"})
    theirs = (await api.req("POST", "/api/schedules", tenant_a.manager, json=body(
        other.json()["id"], shifts=[{"dayOfWeek": 1, "startTime": "09:00", "endTime": "17:00"}]))).json()
    mine = (await api.req("POST", "/api/schedules", tenant_a.manager, json=body(tenant_a.employee_id))).json()
    shift = theirs["shifts"][0]["id"]
    assert (await api.req("GET", f"/api/schedules/{theirs['id']}/shifts/{shift}", tenant_a.manager)).status_code == 200
    assert (await api.req("GET", f"/api/schedules/{mine['id']}/shifts/{shift}", tenant_a.manager)).status_code == 404
    assert (await api.req("GET", f"/api/schedules/{theirs['id']}/shifts/{shift}", tenant_a.employee)).status_code == 404
    assert (await api.req("GET", f"/api/schedules/{theirs['id']}/shifts", tenant_a.employee)).status_code == 404
