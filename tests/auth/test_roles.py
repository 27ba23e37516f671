"""Role rules of every foundation endpoint, and the rules about users: the role is read from
the database on every request, the last admin stays, email and externalId unique per tenant."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest

from tests.conftest import Api, TenantFixture, make_tenant
from tests.tenancy.routes import all_operations
from unifocus.auth.roles import Role
from unifocus.settings import Settings

pytestmark = pytest.mark.tenants

FOUNDATION_PREFIXES = ("/api/me", "/api/tenant", "/api/users", "/api/employees")


@dataclass(frozen=True)
class Op:
    method: str
    path: str
    min_role: Role
    body: Callable[[], dict[str, Any]] | None = field(default=None, compare=False)

    def url(self, t: TenantFixture) -> str:
        return self.path.format(user_id=t.employee_user_id, employee_id=t.employee_id)


def new_email() -> str:
    return f"new-{uuid.uuid4().hex[:10]}@example.com"


OPS = [
    Op("GET", "/api/me", Role.employee),
    Op("GET", "/api/tenant", Role.employee),
    Op("PATCH", "/api/tenant", Role.admin, lambda: {"name": "Renamed"}),
    Op("POST", "/api/users", Role.admin, lambda: {"email": new_email(), "role": "employee"}),
    Op("GET", "/api/users", Role.admin),
    Op("GET", "/api/users/{user_id}", Role.admin),
    Op("PATCH", "/api/users/{user_id}", Role.admin, lambda: {"active": True}),
    Op("POST", "/api/employees", Role.manager, lambda: {"firstName": "Ann", "lastName": "Lee"}),
    Op("GET", "/api/employees", Role.manager),
    Op("GET", "/api/employees/{employee_id}", Role.manager),
    Op("PATCH", "/api/employees/{employee_id}", Role.manager, lambda: {"lastName": "Renamed"}),
    Op("DELETE", "/api/employees/{employee_id}", Role.manager),
]
CASES = [(op, role) for op in OPS for role in Role]


def token_of(t: TenantFixture, role: Role) -> str:
    return {Role.employee: t.employee, Role.manager: t.manager, Role.admin: t.admin}[role]


def audit_count(owner_sql: psycopg.Connection, t: TenantFixture) -> int:
    row = owner_sql.execute("SELECT count(*) FROM audit_log WHERE tenant_id = %s", (t.id,)).fetchone()
    assert row is not None
    return int(row[0])


def test_every_foundation_operation_has_a_role_rule() -> None:
    exposed = {op for op in all_operations() if op[1].startswith(FOUNDATION_PREFIXES)}
    assert exposed == {(op.method, op.path) for op in OPS}


@pytest.mark.parametrize("op, role", CASES, ids=[f"{op.method} {op.path} as {role.value}" for op, role in CASES])
async def test_each_role_below_the_minimum_is_403_and_the_minimum_and_above_pass(
    api: Api, owner_sql: psycopg.Connection, tenant_a: TenantFixture, op: Op, role: Role
) -> None:
    audited_before = audit_count(owner_sql, tenant_a)
    r = await api.req(op.method, op.url(tenant_a), token_of(tenant_a, role), json=op.body() if op.body else None)
    if role.at_least(op.min_role):
        assert 200 <= r.status_code < 300, r.text
    else:
        assert r.status_code == 403, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["type"].endswith("/forbidden")
        assert audit_count(owner_sql, tenant_a) == audited_before, "a refused write left an audit entry"


async def test_the_last_active_admin_can_be_neither_demoted_nor_deactivated(
    api: Api, tenant_a: TenantFixture
) -> None:
    me = f"/api/users/{tenant_a.admin_id}"
    for body in ({"role": "manager"}, {"role": "employee"}, {"active": False}, {"role": "manager", "active": False}):
        r = await api.req("PATCH", me, tenant_a.admin, json=body)
        assert r.status_code == 409, (body, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    assert (await api.req("GET", me, tenant_a.admin)).json()["role"] == "admin"


async def test_an_admin_can_step_down_while_another_active_admin_remains(api: Api, tenant_a: TenantFixture) -> None:
    promoted = await api.req("PATCH", f"/api/users/{tenant_a.manager_id}", tenant_a.admin, json={"role": "admin"})
    assert promoted.status_code == 200, promoted.text
    r = await api.req("PATCH", f"/api/users/{tenant_a.admin_id}", tenant_a.admin, json={"role": "manager"})
    assert r.status_code == 200, r.text
    # Now the former manager is the last admin.
    r = await api.req("PATCH", f"/api/users/{tenant_a.manager_id}", tenant_a.manager, json={"active": False})
    assert r.status_code == 409, r.text


async def test_two_admins_demoting_each_other_at_once_leave_one_admin(
    api: Api, owner_url: str, settings: Settings, owner_sql: psycopg.Connection
) -> None:
    """Changes to a tenant's users are queued: two admins who demote each other at the same
    moment cannot both pass the last-admin check (each seeing the other still an admin) and
    leave the tenant with none, nor deadlock (503). One wins; the other's caller is no longer
    an admin when its turn comes, so it is refused 403, although its role was read as admin
    when it arrived."""
    for _ in range(5):
        t = make_tenant(owner_url, settings)
        promoted = await api.req("PATCH", f"/api/users/{t.manager_id}", t.admin, json={"role": "admin"})
        assert promoted.status_code == 200, promoted.text
        answers = await asyncio.gather(
            api.req("PATCH", f"/api/users/{t.manager_id}", t.admin, json={"role": "manager"}),
            api.req("PATCH", f"/api/users/{t.admin_id}", t.manager, json={"role": "manager"}),
        )
        assert sorted(r.status_code for r in answers) == [200, 403], [r.text for r in answers]
        admins = owner_sql.execute("SELECT count(*) FROM users WHERE tenant_id = %s AND role = 'admin' AND active",
                                   (t.id,)).fetchone()
        assert admins == (1,)


async def test_an_inactive_admin_does_not_count_as_another_admin(
    api: Api, owner_sql: psycopg.Connection, tenant_a: TenantFixture
) -> None:
    owner_sql.execute("INSERT INTO users (tenant_id, id, email, role, active, subject) "
                      "VALUES (%s, %s, %s, 'admin', false, %s)",
                      (tenant_a.id, uuid.uuid4(), new_email(), uuid.uuid4().hex))
    r = await api.req("PATCH", f"/api/users/{tenant_a.admin_id}", tenant_a.admin, json={"role": "manager"})
    assert r.status_code == 409, r.text


async def test_a_role_change_takes_effect_on_the_next_request(api: Api, tenant_a: TenantFixture) -> None:
    assert (await api.req("GET", "/api/employees", tenant_a.manager)).status_code == 200
    r = await api.req("PATCH", f"/api/users/{tenant_a.manager_id}", tenant_a.admin, json={"role": "employee"})
    assert r.status_code == 200, r.text
    assert (await api.req("GET", "/api/employees", tenant_a.manager)).status_code == 403
    # and upwards: the same unchanged token gains the role as soon as the database says so
    assert (await api.req("GET", "/api/employees", tenant_a.employee)).status_code == 403
    r = await api.req("PATCH", f"/api/users/{tenant_a.employee_user_id}", tenant_a.admin, json={"role": "manager"})
    assert r.status_code == 200, r.text
    assert (await api.req("GET", "/api/employees", tenant_a.employee)).status_code == 200


async def test_deactivation_is_403_on_the_next_request_and_reactivation_restores_access(
    api: Api, tenant_a: TenantFixture
) -> None:
    user = f"/api/users/{tenant_a.employee_user_id}"
    assert (await api.req("GET", "/api/me", tenant_a.employee)).status_code == 200
    assert (await api.req("PATCH", user, tenant_a.admin, json={"active": False})).status_code == 200
    r = await api.req("GET", "/api/me", tenant_a.employee)
    assert r.status_code == 403 and r.headers["content-type"].startswith("application/problem+json")
    assert (await api.req("PATCH", user, tenant_a.admin, json={"active": True})).status_code == 200
    assert (await api.req("GET", "/api/me", tenant_a.employee)).status_code == 200


async def test_email_is_unique_per_tenant_ignoring_case_but_free_across_tenants(
    api: Api, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    email = new_email()
    first = await api.req("POST", "/api/users", tenant_a.admin, json={"email": email, "role": "employee"})
    assert first.status_code == 201, first.text
    assert first.headers["location"] == f"/api/users/{first.json()['id']}"
    for again in (email, email.upper()):
        r = await api.req("POST", "/api/users", tenant_a.admin, json={"email": again, "role": "manager"})
        assert r.status_code == 409, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
    other = await api.req("POST", "/api/users", tenant_b.admin, json={"email": email, "role": "employee"})
    assert other.status_code == 201, other.text


async def test_external_id_is_unique_per_tenant_but_free_across_tenants(
    api: Api, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    ext = f"EXT-{uuid.uuid4().hex[:8]}"
    body = {"firstName": "Ann", "lastName": "Lee", "externalId": ext}
    first = await api.req("POST", "/api/employees", tenant_a.manager, json=body)
    assert first.status_code == 201, first.text
    dup = await api.req("POST", "/api/employees", tenant_a.manager, json=body | {"firstName": "Bob"})
    assert dup.status_code == 409, dup.text
    # taking it over by PATCH is the same conflict
    patch = await api.req("PATCH", f"/api/employees/{tenant_a.employee_id}", tenant_a.manager,
                          json={"externalId": ext})
    assert patch.status_code == 409, patch.text
    other = await api.req("POST", "/api/employees", tenant_b.manager, json=body)
    assert other.status_code == 201, other.text
