"""The tenant attack matrix, generated from the OpenAPI document: every operation that takes
an id in its path, called by tenant B's admin and manager with tenant A's real ids (made
through the API). The answer is 404 (or 403 where B's role is refused first), never 2xx; no
value of A's rows appears anywhere in it; A's rows are unchanged. A route added later is in
the matrix without anyone editing this file."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from tests.conftest import Api, TenantFixture
from tests.security import spec
from tests.security.support import (
    QUERY_VALUES,
    TenantRows,
    body_for,
    id_for,
    is_id_param,
    leaks,
    seed_through_api,
    snapshot,
)

pytestmark = pytest.mark.tenants

ID_OPERATIONS = spec.id_operations()
MATRIX = [pytest.param(m, p, op, id=spec.label(m, p)) for m, p, op in ID_OPERATIONS]
# GET operations without a path id but with an id filter (`employeeId`, `userId`): B passing
# A's id must see nothing of A.
ID_FILTER_LISTS = [
    pytest.param(m, p, op, id=spec.label(m, p)) for m, p, op in spec.operations()
    if m == "GET" and not spec.PATH_PARAM.search(p)
    and any(is_id_param(q["name"]) for q in spec.parameters(op, "query"))
]


@pytest.fixture()
async def a_rows(api: Api, tenant_a: TenantFixture) -> TenantRows:
    return await seed_through_api(api, tenant_a)


def request_for(method: str, path: str, op: dict[str, Any], rows: TenantRows) -> dict[str, Any]:
    url = spec.PATH_PARAM.sub(lambda m: id_for(m.group(1), rows), path)
    params: dict[str, str] = {}
    for q in spec.parameters(op, "query"):
        if is_id_param(q["name"]):
            params[q["name"]] = id_for(q["name"], rows)
        elif q.get("required"):
            params[q["name"]] = QUERY_VALUES.get(q["name"], "x")
    kw: dict[str, Any] = {"params": params}
    if method in ("POST", "PUT", "PATCH"):
        kw["json"] = body_for(op, rows.ids["employee_id"])
    if method != "GET":
        kw["key"] = f"probe-{uuid.uuid4()}"
    return {"method": method, "path": url, **kw}


def test_matrix_covers_every_operation_with_a_path_id(api: Api) -> None:
    """The matrix comes from the same document the app serves, and holds every operation with
    an id in its path; none can be skipped because its parameter has no mapping."""
    served = spec.document()["paths"]
    with_ids = {(m.upper(), p) for p, item in served.items() for m in item
                if m in spec.HTTP_METHODS and "{" in p}
    assert {(m, p) for m, p, _ in ID_OPERATIONS} == with_ids
    assert len(with_ids) >= 12
    for _, path, _ in ID_OPERATIONS:
        for name in spec.PATH_PARAM.findall(path):
            assert is_id_param(name), f"{path}: path parameter {name} is not an id"


async def test_served_document_is_the_one_the_matrix_reads(api: Api) -> None:
    r = await api.req("GET", "/openapi.json")
    assert r.status_code == 200
    assert r.json()["paths"].keys() == spec.document()["paths"].keys()


@pytest.mark.parametrize(("method", "path", "op"), MATRIX)
async def test_b_cannot_reach_a_by_id(api: Api, tenant_a: TenantFixture, tenant_b: TenantFixture,
                                      a_rows: TenantRows, owner_sql: psycopg.Connection,
                                      method: str, path: str, op: dict[str, Any]) -> None:
    secrets = a_rows.secrets()
    before = snapshot(owner_sql, tenant_a.id)
    for role in ("admin", "manager"):
        req = request_for(method, path, op, a_rows)
        r = await api.req(req.pop("method"), req.pop("path"), getattr(tenant_b, role), **req)
        allowed = {404} if role == "admin" else {403, 404}
        assert r.status_code in allowed, f"{role}: {r.status_code} {r.text}"
        assert r.headers["content-type"].startswith("application/problem+json")
        assert not leaks(r, secrets), f"{role}: {leaks(r, secrets)} in {r.text}"
    after = snapshot(owner_sql, tenant_a.id)
    assert {k: v for k, v in after.items() if k.endswith(":rows")} == \
        {k: v for k, v in before.items() if k.endswith(":rows")}, "A's rows changed"


@pytest.mark.parametrize(("method", "path", "op"), [p for p in MATRIX if p.values[0] == "GET"])
async def test_a_itself_reaches_the_same_ids(api: Api, tenant_a: TenantFixture, a_rows: TenantRows,
                                             method: str, path: str, op: dict[str, Any]) -> None:
    """The control: the ids are real, so B's 404 above is isolation, not a bad probe. Reads only
    (A's writes would change the rows the matrix uses)."""
    req = request_for(method, path, op, a_rows)
    r = await api.req(req.pop("method"), req.pop("path"), tenant_a.admin, **req)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(("method", "path", "op"), ID_FILTER_LISTS)
async def test_b_filtering_by_a_ids_sees_nothing(api: Api, tenant_b: TenantFixture, a_rows: TenantRows,
                                                 method: str, path: str, op: dict[str, Any]) -> None:
    secrets = a_rows.secrets()
    for role in ("admin", "manager"):
        req = request_for(method, path, op, a_rows)
        r = await api.req(req.pop("method"), req.pop("path"), getattr(tenant_b, role), **req)
        assert r.status_code in (200, 403, 404), f"{role}: {r.status_code} {r.text}"
        if r.status_code == 200 and "items" in r.json():
            assert r.json()["items"] == []
        assert not leaks(r, secrets), f"{role}: {leaks(r, secrets)} in {r.text}"


async def test_batch_with_a_employee_ids_is_rejected_item_by_item(
        api: Api, tenant_a: TenantFixture, tenant_b: TenantFixture, a_rows: TenantRows,
        owner_sql: psycopg.Connection) -> None:
    secrets = a_rows.secrets()
    before = snapshot(owner_sql, tenant_a.id)
    for role in ("admin", "manager", "employee"):
        items = [{"clientPunchId": f"{role}-{i}", "employeeId": a_rows.ids[name], "type": "clock_in",
                  "timestamp": "2026-03-03T09:00:00-05:00", "device": f"b-device-{role}"}
                 for i, name in enumerate(("employee_id", "other_employee_id"))]
        r = await api.req("POST", "/api/punches/batch", getattr(tenant_b, role), json={"punches": items})
        assert r.status_code == 200, r.text
        results = r.json()["results"]
        assert [x["clientPunchId"] for x in results] == [i["clientPunchId"] for i in items]
        assert all(x["status"] == "rejected" and x.get("punch") is None for x in results), results
        assert not leaks(r, secrets), f"{role}: {leaks(r, secrets)} in {r.text}"
    after = snapshot(owner_sql, tenant_a.id)
    assert after["punches:rows"] == before["punches:rows"]
    assert after["punches"] == before["punches"]
