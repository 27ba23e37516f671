"""`GET /api/audit-logs`: shape, filters, roles, tenant isolation, keyset pages."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Any

import pytest

from tests.audit.util import create_employee, rid
from tests.conftest import Api, TenantFixture, make_tenant
from unifocus.settings import Settings

pytestmark = pytest.mark.audit

SHAPE = {"id", "tenantId", "userId", "userEmail", "action", "entity", "entityId", "changes", "employeeId",
         "punchId", "exceptionId", "requestId", "createdAt"}


async def logs(api: Api, token: str, **params: Any) -> list[dict[str, Any]]:
    r = await api.req("GET", "/api/audit-logs", token, params=params)
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


@pytest.fixture()
async def history(api: Api, tenant_a: TenantFixture) -> dict[str, Any]:
    """Four writes in tenant A: create, user role change, update, delete."""
    r = await create_employee(api, tenant_a.manager, "Ann", request_id=rid())
    emp = r.json()["id"]
    r = await api.req("PATCH", f"/api/users/{tenant_a.employee_user_id}", tenant_a.admin,
                      json={"role": "manager"})
    assert r.status_code == 200
    r = await api.req("PATCH", f"/api/employees/{emp}", tenant_a.manager, json={"lastName": "Ng"})
    assert r.status_code == 200
    r = await api.req("DELETE", f"/api/employees/{emp}", tenant_a.manager)
    assert r.status_code == 204
    return {"employee": emp}


async def test_entries_newest_first_with_the_actor_email(api: Api, tenant_a: TenantFixture,
                                                        history: dict[str, Any]) -> None:
    items = await logs(api, tenant_a.admin)
    assert [(e["entity"], e["action"]) for e in items] == [
        ("Employee", "deleted"), ("Employee", "updated"), ("User", "updated"), ("Employee", "created")]
    for e in items:
        assert set(e) == SHAPE
        assert e["tenantId"] == str(tenant_a.id)
        assert e["createdAt"].endswith("Z") or e["createdAt"].endswith("+00:00")
    created = items[-1]
    assert created["userId"] == str(tenant_a.manager_id)
    assert created["userEmail"].startswith("manager-")
    assert created["changes"]["before"] is None and created["changes"]["after"]["firstName"] == "Ann"
    assert created["employeeId"] == history["employee"] and created["requestId"]
    assert items[2]["userEmail"].startswith("admin-")


async def test_filters(api: Api, tenant_a: TenantFixture, history: dict[str, Any]) -> None:
    adm = tenant_a.admin
    emp = history["employee"]
    assert len(await logs(api, adm, entity="Employee")) == 3
    assert [e["action"] for e in await logs(api, adm, entity="Employee", action="updated")] == ["updated"]
    assert [e["entity"] for e in await logs(api, adm, userId=str(tenant_a.admin_id))] == ["User"]
    assert len(await logs(api, adm, userId=str(tenant_a.manager_id))) == 3
    assert {e["entityId"] for e in await logs(api, adm, employeeId=emp)} == {emp}
    assert await logs(api, adm, entity="Punch") == []
    items = await logs(api, adm)
    middle = items[1]["createdAt"]
    since = await logs(api, adm, **{"from": middle})
    assert [e["id"] for e in since] == [e["id"] for e in items[:2]]  # from is inclusive
    before = await logs(api, adm, to=middle)
    assert [e["id"] for e in before] == [e["id"] for e in items[2:]]  # to is exclusive
    window = await logs(api, adm, **{"from": items[2]["createdAt"], "to": middle}, entity="User")
    assert [e["id"] for e in window] == [items[2]["id"]]
    assert await logs(api, adm, **{"from": middle, "to": middle}) == []


@pytest.mark.parametrize("params", [
    {"entity": "Bogus"}, {"action": "exploded"}, {"userId": "not-a-uuid"}, {"employeeId": "42"},
    {"from": "2026-01-01T00:00:00"}, {"to": "yesterday"},
    {"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, {"limit": "0"}, {"limit": "501"},
])
async def test_invalid_filters_are_422(api: Api, tenant_a: TenantFixture, params: dict[str, str]) -> None:
    r = await api.req("GET", "/api/audit-logs", tenant_a.admin, params=params)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["errors"]


async def test_bad_cursor_is_400(api: Api, tenant_a: TenantFixture) -> None:
    r = await api.req("GET", "/api/audit-logs", tenant_a.admin, params={"cursor": "garbage!"})
    assert r.status_code == 400


async def test_admin_only(api: Api, tenant_a: TenantFixture) -> None:
    assert (await api.req("GET", "/api/audit-logs", tenant_a.manager)).status_code == 403
    assert (await api.req("GET", "/api/audit-logs", tenant_a.employee)).status_code == 403
    assert (await api.req("GET", "/api/audit-logs")).status_code == 401


async def test_tenant_isolation(api: Api, tenant_a: TenantFixture, tenant_b: TenantFixture,
                                history: dict[str, Any]) -> None:
    assert (await create_employee(api, tenant_b.manager, "Bea")).status_code == 201
    a_ids = {e["id"] for e in await logs(api, tenant_a.admin)}
    b_items = await logs(api, tenant_b.admin)
    assert len(b_items) == 1 and not a_ids & {e["id"] for e in b_items}
    assert all(e["tenantId"] == str(tenant_b.id) for e in b_items)
    # A's ids as filters reveal nothing either.
    assert await logs(api, tenant_b.admin, userId=str(tenant_a.manager_id)) == []
    assert await logs(api, tenant_b.admin, employeeId=history["employee"]) == []


async def test_keyset_pages_while_inserts_go_on(api: Api, owner_url: str, settings: Settings) -> None:
    tenant = make_tenant(owner_url, settings)
    for i in range(40):
        assert (await create_employee(api, tenant.manager, f"P{i}")).status_code == 201
    existing = [e["id"] for e in await logs(api, tenant.admin, limit=500)]
    assert len(existing) == 40

    stop = asyncio.Event()
    written = 0

    async def keep_writing() -> None:
        nonlocal written
        while not stop.is_set():
            assert (await create_employee(api, tenant.manager, "Late")).status_code == 201
            written += 1

    background = asyncio.create_task(keep_writing())
    seen: list[dict[str, Any]] = []
    cursor = None
    try:
        while True:
            params: dict[str, Any] = {"limit": 7}
            if cursor:
                params["cursor"] = cursor
            r = await api.req("GET", "/api/audit-logs", tenant.admin, params=params)
            assert r.status_code == 200, r.text
            page = r.json()
            assert len(page["items"]) <= 7
            seen.extend(page["items"])
            cursor = page["nextCursor"]
            if cursor is None:
                break
            await asyncio.sleep(0.02)
    finally:
        stop.set()
        await background
    assert written > 0
    ids = [e["id"] for e in seen]
    assert len(ids) == len(set(ids)), "a page repeated an entry"
    assert [i for i in ids if i in set(existing)] == existing, "an entry was skipped or reordered"
    keys = [(datetime.fromisoformat(e["createdAt"]), e["id"]) for e in seen]
    assert keys == sorted(keys, reverse=True)


async def test_unknown_tenant_ids_in_filters_are_empty_not_errors(api: Api, tenant_a: TenantFixture) -> None:
    assert await logs(api, tenant_a.admin, userId=str(uuid.uuid4())) == []


async def test_a_tenant_patch_that_changes_nothing_writes_no_entry(api: Api, tenant_a: TenantFixture) -> None:
    """One entry per changed entity (contract 7): the same values again, or an empty patch,
    answer the tenant as it is and add nothing to the log; a real change adds one entry."""
    tenant = (await api.req("GET", "/api/tenant", tenant_a.admin)).json()
    for patch in ({}, {"name": tenant["name"], "timezone": tenant["timezone"]},
                  {"policy": {"lateGraceMinutes": tenant["policy"]["lateGraceMinutes"]}}):
        r = await api.req("PATCH", "/api/tenant", tenant_a.admin, json=patch)
        assert r.status_code == 200 and r.json() == tenant, r.text
    assert await logs(api, tenant_a.admin, entity="Tenant") == []
    r = await api.req("PATCH", "/api/tenant", tenant_a.admin, json={"policy": {"lateGraceMinutes": 7}})
    assert r.status_code == 200 and r.json()["policy"]["lateGraceMinutes"] == 7
    [entry] = await logs(api, tenant_a.admin, entity="Tenant")
    assert entry["action"] == "updated"
    assert entry["changes"]["before"]["policy"]["lateGraceMinutes"] == tenant["policy"]["lateGraceMinutes"]
    assert entry["changes"]["after"]["policy"]["lateGraceMinutes"] == 7
