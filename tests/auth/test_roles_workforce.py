"""Role rules of every workforce endpoint (schedules, shifts, punches, exceptions, timesheets,
audit log): each role below the minimum is 403 and writes nothing; the minimum and above pass.
An employee's minimum applies to their own records (others' are covered by the tenancy tests).
Together with test_roles.py every /api operation has a rule (checked below)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest

from tests.auth.test_roles import OPS as FOUNDATION_OPS
from tests.auth.test_roles import audit_count, token_of
from tests.conftest import Api, TenantFixture
from tests.tenancy.routes import all_operations
from unifocus.auth.roles import Role

pytestmark = pytest.mark.tenants


@dataclass
class World:
    """A tenant's employee with a schedule, a shift, a late punch and its exception."""

    t: TenantFixture
    schedule_id: str
    shift_id: str
    punch_id: str
    exception_id: str


@dataclass(frozen=True)
class Op:
    method: str
    path: str
    min_role: Role
    body: Callable[[World], dict[str, Any]] | None = field(default=None, compare=False)
    query: str = ""

    def url(self, w: World) -> str:
        path = self.path.format(schedule_id=w.schedule_id, shift_id=w.shift_id, punch_id=w.punch_id,
                                exception_id=w.exception_id)
        return path + self.query.format(employee_id=w.t.employee_id)


def punch_body(w: World) -> dict[str, Any]:
    return {"employeeId": str(w.t.employee_id), "type": "clock_out", "timestamp": "2026-03-02T17:00:00-05:00"}


OPS = [
    Op("POST", "/api/schedules", Role.manager, lambda w: {
        "employeeId": str(w.t.employee_id), "startDate": "2026-05-01", "endDate": "2026-05-31"}),
    Op("GET", "/api/schedules", Role.employee),
    Op("GET", "/api/schedules/{schedule_id}", Role.employee),
    Op("DELETE", "/api/schedules/{schedule_id}", Role.manager),
    Op("POST", "/api/schedules/{schedule_id}/shifts", Role.manager,
       lambda w: {"dayOfWeek": 3, "startTime": "09:00", "endTime": "17:00"}),
    Op("GET", "/api/schedules/{schedule_id}/shifts", Role.employee),
    Op("GET", "/api/schedules/{schedule_id}/shifts/{shift_id}", Role.employee),
    Op("DELETE", "/api/schedules/{schedule_id}/shifts/{shift_id}", Role.manager),
    Op("POST", "/api/punches", Role.employee, punch_body),
    Op("POST", "/api/punches/batch", Role.employee,
       lambda w: {"punches": [{"clientPunchId": "c1", **punch_body(w)}]}),
    Op("GET", "/api/punches", Role.employee),
    Op("GET", "/api/punches/{punch_id}", Role.employee),
    Op("DELETE", "/api/punches/{punch_id}", Role.manager, query="?reason=wrong%20badge"),
    Op("GET", "/api/exceptions", Role.employee),
    Op("GET", "/api/exceptions/{exception_id}", Role.employee),
    Op("PUT", "/api/exceptions/{exception_id}/resolve", Role.manager, lambda w: {"status": "approved"}),
    Op("GET", "/api/timesheets", Role.employee, query="?employeeId={employee_id}&from=2026-03-01&to=2026-03-07"),
    Op("GET", "/api/timesheets/export", Role.manager, query="?from=2026-03-01&to=2026-03-07"),
    Op("GET", "/api/audit-logs", Role.admin),
]
CASES = [(op, role) for op in OPS for role in Role]


def test_every_api_operation_has_a_role_rule() -> None:
    covered = {(op.method, op.path) for op in OPS} | {(op.method, op.path) for op in FOUNDATION_OPS}
    assert set(all_operations()) == covered


async def build_world(api: Api, t: TenantFixture) -> World:
    sched = await api.req("POST", "/api/schedules", t.manager, json={
        "employeeId": str(t.employee_id), "startDate": "2026-03-01", "endDate": "2026-03-31",
        "shifts": [{"dayOfWeek": 1, "startTime": "09:00", "endTime": "17:00"}]})
    assert sched.status_code == 201, sched.text
    late = await api.req("POST", "/api/punches", t.manager, json={
        "employeeId": str(t.employee_id), "type": "clock_in", "timestamp": "2026-03-02T09:30:00-05:00"})
    assert late.status_code == 201, late.text
    body = late.json()
    return World(t, sched.json()["id"], sched.json()["shifts"][0]["id"], body["id"], body["exceptions"][0]["id"])


@pytest.mark.parametrize("op, role", CASES, ids=[f"{op.method} {op.path} as {role.value}" for op, role in CASES])
async def test_each_role_below_the_minimum_is_403_and_the_minimum_and_above_pass(
    api: Api, owner_sql: psycopg.Connection, tenant_a: TenantFixture, op: Op, role: Role
) -> None:
    world = await build_world(api, tenant_a)
    audited_before = audit_count(owner_sql, tenant_a)
    body = op.body(world) if op.body else None
    r = await api.req(op.method, op.url(world), token_of(tenant_a, role), json=body)
    if role.at_least(op.min_role):
        assert 200 <= r.status_code < 300, r.text
    else:
        assert r.status_code == 403, r.text
        assert r.json()["type"].endswith("/forbidden")
        assert audit_count(owner_sql, tenant_a) == audited_before, "a refused write left an audit entry"
