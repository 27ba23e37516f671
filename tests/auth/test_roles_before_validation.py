"""On writes, the caller is refused before the request is: a caller who may not use a write
route gets 401/403 whatever the body, as on reads, never a 400/422 that lists the route's
schema. A caller who may use it still gets the 400/422. Every write route, from the app's own
route table, with the minimum role each route declares (`writer(Role.x)`)."""

from __future__ import annotations

import uuid
from typing import Any

import fastapi.routing
import httpx
import psycopg
import pytest
from fastapi.routing import APIRoute

from tests.conftest import Api, TenantFixture
from tests.security.support import snapshot
from tests.tenancy.routes import APP, PARAM, required_query
from unifocus.auth.roles import Role
from unifocus.auth.tokens import mint_token
from unifocus.db.writepath import route_min_role
from unifocus.settings import Settings

pytestmark = pytest.mark.tenants

WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def _write_routes() -> list[tuple[str, str, APIRoute]]:
    iter_contexts = getattr(fastapi.routing, "iter_route_contexts", None)
    if iter_contexts is None:
        routes = [r for r in APP.routes if isinstance(r, APIRoute)]
    else:
        routes = [ctx.original_route for ctx in iter_contexts(APP.routes)
                  if isinstance(ctx.original_route, APIRoute)]
    found = {(m, r.path): r for r in routes if r.path.startswith("/api") for m in set(r.methods or ()) & WRITES}
    return [(m, p, found[m, p]) for m, p in sorted(found, key=lambda mp: (mp[1], mp[0]))]


WRITE_ROUTES = _write_routes()
ROUTE_IDS = [f"{m} {p}" for m, p, _ in WRITE_ROUTES]


def invalid_request(method: str, path: str, route: APIRoute) -> dict[str, Any]:
    """A request the route refuses as invalid (422) before its handler: a body of the wrong
    shape where the route takes one, else ids that are not UUIDs."""
    has_body = route.body_field is not None
    ids = {name: (str(uuid.uuid4()) if has_body else "not-a-uuid") for name in PARAM.findall(path)}
    url = PARAM.sub(lambda m: ids[m.group(1)], path)
    request: dict[str, Any] = {"method": method, "path": url,
                               "params": required_query(method, path, uuid.uuid4())}
    if has_body:
        request["json"] = []
    return request


async def send(api: Api, token: str | None, request: dict[str, Any], **extra: Any) -> httpx.Response:
    return await api.req(request["method"], request["path"], token, **{
        k: v for k, v in request.items() if k not in ("method", "path")} | extra)


def token_of(t: TenantFixture, role: Role) -> str:
    return {Role.employee: t.employee, Role.manager: t.manager, Role.admin: t.admin}[role]


def assert_problem(r: httpx.Response, status: int, slug: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["type"].endswith("/" + slug), r.text


def inactive_user(owner_sql: psycopg.Connection, settings: Settings, t: TenantFixture) -> str:
    """A token of a deactivated admin (a role every route allows)."""
    uid = uuid.uuid4()
    owner_sql.execute("INSERT INTO users (tenant_id, id, email, role, active, subject) "
                      "VALUES (%s, %s, %s, 'admin', false, %s)",
                      (t.id, uid, f"inactive-{uid.hex[:8]}@example.com", str(uid)))
    return mint_token(settings, t.id, str(uid))


def test_every_write_route_declares_its_minimum_role() -> None:
    assert len(WRITE_ROUTES) >= 14
    assert {route_min_role(r) for _, _, r in WRITE_ROUTES} == set(Role)
    declared = {f"{m} {p}": route_min_role(r) for m, p, r in WRITE_ROUTES}
    assert declared["POST /api/punches"] == Role.employee
    assert declared["POST /api/employees"] == Role.manager
    assert declared["DELETE /api/punches/{punch_id}"] == Role.manager
    assert declared["PATCH /api/tenant"] == Role.admin
    assert all(role is not None for role in declared.values()), declared


@pytest.mark.parametrize(("method", "path", "route"), WRITE_ROUTES, ids=ROUTE_IDS)
async def test_an_invalid_request_is_refused_for_the_caller_first(
    api: Api, owner_sql: psycopg.Connection, settings: Settings, tenant_a: TenantFixture,
    method: str, path: str, route: APIRoute,
) -> None:
    min_role = route_min_role(route)
    assert min_role is not None
    request = invalid_request(method, path, route)
    before = snapshot(owner_sql)
    for role in Role:
        r = await send(api, token_of(tenant_a, role), request)
        if role.at_least(min_role):
            assert_problem(r, 422, "validation-failed")
            assert r.json()["errors"], r.text
        else:
            assert_problem(r, 403, "forbidden")
            assert "errors" not in r.json(), "a caller who may not write learned the route's schema"
    assert_problem(await send(api, None, request), 401, "unauthorized")
    assert_problem(await send(api, inactive_user(owner_sql, settings, tenant_a), request), 403, "forbidden")
    unknown = mint_token(settings, tenant_a.id, str(uuid.uuid4()))
    assert_problem(await send(api, unknown, request), 401, "unauthorized")
    after = snapshot(owner_sql)
    assert after["users"] == before["users"] + 1  # the inactive user, nothing else
    assert {k: v for k, v in after.items() if k != "users"} == {k: v for k, v in before.items() if k != "users"}


@pytest.mark.parametrize(("method", "path", "route"), [w for w in WRITE_ROUTES if w[2].body_field is not None],
                         ids=[i for i, w in zip(ROUTE_IDS, WRITE_ROUTES, strict=True) if w[2].body_field is not None])
async def test_a_body_that_is_not_json_is_refused_for_the_caller_first(
    api: Api, tenant_a: TenantFixture, method: str, path: str, route: APIRoute
) -> None:
    min_role = route_min_role(route)
    assert min_role is not None
    request = invalid_request(method, path, route) | {"content": b'{"truncated": ',
                                                      "headers": {"content-type": "application/json"}}
    request.pop("json")
    for role in Role:
        r = await send(api, token_of(tenant_a, role), request)
        if role.at_least(min_role):
            assert_problem(r, 400, "bad-request")
        else:
            assert_problem(r, 403, "forbidden")
    assert_problem(await send(api, None, request), 401, "unauthorized")


async def test_a_void_without_reason_is_403_for_an_employee_and_422_for_a_manager(
    api: Api, tenant_a: TenantFixture
) -> None:
    url = f"/api/punches/{uuid.uuid4()}"
    assert_problem(await api.req("DELETE", url, tenant_a.employee), 403, "forbidden")
    r = await api.req("DELETE", url, tenant_a.manager)
    assert_problem(r, 422, "validation-failed")
    assert r.json()["errors"] == [{"field": "reason", "message": "Field required"}]


async def test_a_deactivated_user_gets_with_an_invalid_body_what_a_valid_one_gets(
    api: Api, owner_sql: psycopg.Connection, settings: Settings, tenant_a: TenantFixture
) -> None:
    token = inactive_user(owner_sql, settings, tenant_a)
    valid = await api.req("POST", "/api/employees", token, json={"firstName": "Ann", "lastName": "Lee"})
    invalid = await api.req("POST", "/api/employees", token, json={})
    assert_problem(valid, 403, "forbidden")
    assert (invalid.status_code, invalid.json()) == (valid.status_code, valid.json())
    # and an employee: the same 403 for {} as for a valid body
    valid = await api.req("POST", "/api/employees", tenant_a.employee, json={"firstName": "Ann", "lastName": "Lee"})
    invalid = await api.req("POST", "/api/employees", tenant_a.employee, json={})
    assert (invalid.status_code, invalid.json()) == (valid.status_code, valid.json()) and valid.status_code == 403
