"""HTTP semantics a client relies on beyond the status codes of the contract: no redirect for
a trailing slash, a 405's `Allow` naming every method of the path, 415 for a body that is not
JSON, and path parameters named in camelCase in validation errors (README, "Decisions")."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import Api, TenantFixture

pytestmark = pytest.mark.tenants

PROBLEM = "application/problem+json"
ANY_ID = "00000000-0000-4000-8000-000000000000"


def assert_problem(r: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].split(";")[0] == PROBLEM, r.headers
    body: dict[str, Any] = r.json()
    assert body["status"] == status and body["type"] == f"https://unifocus.dev/problems/{slug}", body
    return body


def new_employee() -> dict[str, str]:
    return {"firstName": f"F{uuid.uuid4().hex[:8]}", "lastName": "Tester"}


# --- trailing slashes -----------------------------------------------------------------------


async def test_a_trailing_slash_is_an_unknown_path_never_a_redirect(api: Api, tenant_a: TenantFixture) -> None:
    # Without a token, and with a Host a client (or an attacker) chose: no Location built from it.
    r = await api.client.get("/api/employees/", headers={"Host": "evil.example"})
    assert_problem(r, 404, "not-found")
    assert "location" not in r.headers
    r = await api.req("POST", "/api/employees/", tenant_a.manager, json=new_employee())
    body = assert_problem(r, 404, "not-found")
    assert body["instance"] == "/api/employees/" and "location" not in r.headers
    # the path without the slash is the operation
    assert (await api.req("GET", "/api/employees", tenant_a.manager)).status_code == 200


# --- 405 Allow ------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("DELETE", "/api/employees", {"GET", "POST"}),
    ("PUT", "/api/tenant", {"GET", "PATCH"}),
    ("POST", f"/api/punches/{ANY_ID}", {"GET", "DELETE"}),
    # a literal path wins over the template that also matches it: not the punch "batch"
    ("GET", "/api/punches/batch", {"POST"}),
    ("DELETE", "/api/punches/batch", {"POST"}),
    ("PUT", "/api/punches/batch", {"POST"}),
])
async def test_405_allow_lists_every_method_of_the_path(
    api: Api, tenant_a: TenantFixture, method: str, path: str, allowed: set[str]
) -> None:
    r = await api.req(method, path, tenant_a.admin)
    assert_problem(r, 405, "method-not-allowed")
    assert {m.strip() for m in r.headers["allow"].split(",")} == allowed, r.headers["allow"]
    for other in sorted(allowed):  # each method it names is answered, not refused as 405
        assert (await api.req(other, path, tenant_a.admin)).status_code != 405, other


# --- 415 ------------------------------------------------------------------------------------

NOT_JSON: list[tuple[str, dict[str, str], bytes]] = [
    ("text/plain holding JSON", {"content-type": "text/plain"}, b'{"firstName": "A", "lastName": "B"}'),
    ("text/plain not JSON", {"content-type": "text/plain; charset=utf-8"}, b"firstName=A"),
    ("no content type", {}, b'{"firstName": "A", "lastName": "B"}'),
    ("a form", {"content-type": "application/x-www-form-urlencoded"}, b"firstName=A&lastName=B"),
    ("a look-alike", {"content-type": "application/jsonp"}, b'{"firstName": "A", "lastName": "B"}'),
]


@pytest.mark.parametrize(("case", "headers", "content"), NOT_JSON, ids=[c for c, _, _ in NOT_JSON])
async def test_a_body_that_is_not_json_is_415_naming_the_accepted_type(
    api: Api, tenant_a: TenantFixture, case: str, headers: dict[str, str], content: bytes
) -> None:
    for method, path, advertised in (("POST", "/api/employees", "accept-post"),
                                     ("PATCH", "/api/tenant", "accept-patch"),
                                     ("PUT", f"/api/exceptions/{ANY_ID}/resolve", None),
                                     ("POST", "/api/punches", "accept-post")):
        r = await api.req(method, path, tenant_a.admin, headers=headers, content=content)
        body = assert_problem(r, 415, "unsupported-media-type")
        assert "application/json" in body["detail"] and body["instance"] == path, body
        if advertised:
            assert r.headers[advertised] == "application/json"


async def test_json_media_types_in_any_spelling_are_accepted_and_an_empty_body_is_unchanged(
    api: Api, tenant_a: TenantFixture
) -> None:
    for content_type in ("Application/JSON; Charset=UTF-8", "application/merge-patch+json"):
        r = await api.req("POST", "/api/employees", tenant_a.manager, headers={"content-type": content_type},
                          content=httpx.Request("POST", "/", json=new_employee()).content)
        assert r.status_code == 201, (content_type, r.text)
    # An empty body is a missing body, as before: 422 naming it, whatever the type.
    r = await api.req("POST", "/api/employees", tenant_a.manager, headers={"content-type": "text/plain"})
    assert_problem(r, 422, "validation-failed")


async def test_the_caller_is_refused_before_the_media_type(api: Api, tenant_a: TenantFixture) -> None:
    text = {"headers": {"content-type": "text/plain"}, "content": b"hello"}
    assert_problem(await api.req("POST", "/api/employees", None, **text), 401, "unauthorized")  # type: ignore[arg-type]
    assert_problem(await api.req("PATCH", "/api/tenant", tenant_a.employee, **text), 403, "forbidden")  # type: ignore[arg-type]


async def test_the_openapi_document_lists_415_on_operations_that_take_a_body(api: Api) -> None:
    paths = (await api.client.get("/openapi.json")).json()["paths"]
    with_body = [(p, m) for p, ops in paths.items() for m, op in ops.items() if "requestBody" in op]
    assert ("/api/punches", "post") in with_body and ("/api/tenant", "patch") in with_body
    for path, method in with_body:
        assert "415" in paths[path][method]["responses"], (method, path)
    assert "415" not in paths["/api/employees"]["get"]["responses"]
    assert "415" not in paths["/api/employees/{employee_id}"]["delete"]["responses"]


# --- field names ----------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "fields"), [
    ("/api/employees/not-a-uuid", {"employeeId"}),
    ("/api/punches/not-a-uuid", {"punchId"}),
    ("/api/schedules/x/shifts/y", {"scheduleId", "shiftId"}),
])
async def test_validation_errors_name_path_parameters_in_camel_case(
    api: Api, tenant_a: TenantFixture, path: str, fields: set[str]
) -> None:
    body = assert_problem(await api.req("GET", path, tenant_a.admin), 422, "validation-failed")
    assert {e["field"] for e in body["errors"]} == fields, body["errors"]
