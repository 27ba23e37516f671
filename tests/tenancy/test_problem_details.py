"""Client errors are RFC 9457 problems with the contract's status codes, never a 500."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api, TenantFixture

pytestmark = pytest.mark.tenants

# (case, method, path, request kwargs, status, type slug, field named in errors or None)
CASES: list[tuple[str, str, str, dict[str, Any], int, str, str | None]] = [
    ("bad JSON body", "POST", "/api/employees",
     {"content": b'{"firstName": "Ann",', "headers": {"Content-Type": "application/json"}}, 400, "bad-request", None),
    ("unknown field", "POST", "/api/employees",
     {"json": {"firstName": "Ann", "lastName": "Lee", "nickname": "A"}}, 422, "validation-failed", "nickname"),
    ("missing field", "POST", "/api/employees", {"json": {"firstName": "Ann"}}, 422, "validation-failed", "lastName"),
    ("wrong type", "POST", "/api/employees", {"json": {"firstName": 7, "lastName": "Lee"}}, 422,
     "validation-failed", "firstName"),
    ("array body", "POST", "/api/employees", {"json": [1, 2]}, 422, "validation-failed", None),
    ("invalid employee timezone", "POST", "/api/employees",
     {"json": {"firstName": "Ann", "lastName": "Lee", "timezone": "Mars/Olympus"}}, 422, "validation-failed",
     "timezone"),
    ("invalid tenant timezone", "PATCH", "/api/tenant", {"json": {"timezone": "Not/AZone"}}, 422,
     "validation-failed", "timezone"),
    ("path traversal as timezone", "PATCH", "/api/tenant", {"json": {"timezone": "../../etc/passwd"}}, 422,
     "validation-failed", "timezone"),
    ("unknown policy field", "PATCH", "/api/tenant", {"json": {"policy": {"graceMinutes": 3}}}, 422,
     "validation-failed", None),
    ("negative policy minutes", "PATCH", "/api/tenant", {"json": {"policy": {"lateGraceMinutes": -1}}}, 422,
     "validation-failed", None),
    # Contract 1: an integer is a JSON number, not a string or a boolean (`true` would be 1).
    ("policy minutes as a string", "PATCH", "/api/tenant", {"json": {"policy": {"lateGraceMinutes": "5"}}}, 422,
     "validation-failed", "policy.lateGraceMinutes"),
    ("policy minutes as a boolean", "PATCH", "/api/tenant", {"json": {"policy": {"maxBreakMinutes": True}}}, 422,
     "validation-failed", "policy.maxBreakMinutes"),
    ("policy minutes with a fraction", "PATCH", "/api/tenant", {"json": {"policy": {"lateGraceMinutes": 1.5}}},
     422, "validation-failed", "policy.lateGraceMinutes"),
    # A PATCH field left out stays as it is; a null is not "left out" (the tenant's fields are
    # never null): a 422 naming it, rather than a 200 that changed nothing.
    ("null tenant name", "PATCH", "/api/tenant", {"json": {"name": None}}, 422, "validation-failed", "name"),
    ("null tenant timezone", "PATCH", "/api/tenant", {"json": {"timezone": None}}, 422, "validation-failed",
     "timezone"),
    ("null policy", "PATCH", "/api/tenant", {"json": {"policy": None}}, 422, "validation-failed", "policy"),
    ("null policy minutes", "PATCH", "/api/tenant", {"json": {"policy": {"maxBreakMinutes": None}}}, 422,
     "validation-failed", "policy.maxBreakMinutes"),
    ("limit 0", "GET", "/api/employees", {"params": {"limit": 0}}, 422, "validation-failed", "limit"),
    ("limit 501", "GET", "/api/employees", {"params": {"limit": 501}}, 422, "validation-failed", "limit"),
    ("limit not a number", "GET", "/api/employees", {"params": {"limit": "ten"}}, 422, "validation-failed", "limit"),
    ("bad cursor", "GET", "/api/employees", {"params": {"cursor": "not-a-cursor"}}, 400, "bad-request", None),
    ("cursor of valid base64 but wrong shape", "GET", "/api/users", {"params": {"cursor": "e30"}}, 400,
     "bad-request", None),
    ("id that is not a uuid", "GET", "/api/employees/42", {}, 422, "validation-failed", "employeeId"),
    ("unknown id", "GET", "/api/employees/00000000-0000-4000-8000-000000000000", {}, 404, "not-found", None),
    ("unknown route", "GET", "/api/nothing-here", {}, 404, "not-found", None),
    ("method not allowed", "PUT", "/api/me", {}, 405, "method-not-allowed", None),
]


@pytest.mark.parametrize("case, method, path, kwargs, status, slug, field", CASES, ids=[c[0] for c in CASES])
async def test_client_errors_are_problem_details(
    api: Api, tenant_a: TenantFixture, case: str, method: str, path: str, kwargs: dict[str, Any],
    status: int, slug: str, field: str | None,
) -> None:
    r = await api.req(method, path, tenant_a.admin, **kwargs)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].split(";")[0] == "application/problem+json"
    body = r.json()
    assert body["status"] == status
    assert body["type"].endswith("/" + slug)
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    assert body.get("instance") == path
    assert set(body) <= {"type", "title", "status", "detail", "instance", "errors"}
    assert "Traceback" not in r.text and 'File "' not in r.text
    if field is not None:
        errors = body["errors"]
        assert all(set(e) == {"field", "message"} and e["message"] for e in errors), errors
        assert field in [e["field"] for e in errors], errors


async def test_policy_minutes_refused_change_nothing_and_a_whole_number_is_taken(
    api: Api, tenant_a: TenantFixture
) -> None:
    """A refused PATCH leaves the policy as it was; `5.0` is the same JSON number as 5 (the
    OpenAPI `type: integer` matches it) and is stored as 5."""
    before = (await api.req("GET", "/api/tenant", tenant_a.admin)).json()
    for bad in ("7", True, 7.5):
        r = await api.req("PATCH", "/api/tenant", tenant_a.admin, json={"policy": {"lateGraceMinutes": bad}})
        assert r.status_code == 422, r.text
    assert (await api.req("GET", "/api/tenant", tenant_a.admin)).json() == before
    r = await api.req("PATCH", "/api/tenant", tenant_a.admin, json={"policy": {"lateGraceMinutes": 7.0}})
    assert r.status_code == 200, r.text
    assert r.json()["policy"]["lateGraceMinutes"] == 7
    assert (await api.req("GET", "/api/tenant", tenant_a.admin)).json()["policy"]["lateGraceMinutes"] == 7


@pytest.mark.parametrize("flag", ["true", "false", 1, 0, "yes"])
async def test_active_is_a_json_boolean_or_refused_and_nothing_changes(
    api: Api, tenant_a: TenantFixture, flag: object
) -> None:
    """Lax parsing read "false" or 0 as false: a client's string would deactivate someone."""
    for path in (f"/api/employees/{tenant_a.employee_id}", f"/api/users/{tenant_a.employee_user_id}"):
        before = (await api.req("GET", path, tenant_a.admin)).json()
        r = await api.req("PATCH", path, tenant_a.admin, json={"active": flag})
        assert r.status_code == 422, r.text
        assert [e["field"] for e in r.json()["errors"]] == ["active"]
        assert (await api.req("GET", path, tenant_a.admin)).json() == before
