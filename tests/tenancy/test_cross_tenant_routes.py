"""Every route with an id, called by tenant B on tenant A's ids: 404, nothing of A in the
answer, no change to A's rows, and the same answer as for an id that exists nowhere."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from tests.conftest import Api, TenantFixture
from tests.tenancy import catalog
from tests.tenancy.routes import call, operations, path_params
from tests.tenancy.seed import Seeded, seed, tenant_rows

pytestmark = pytest.mark.tenants

ID_OPERATIONS = operations(with_ids=True)
LIST_OPERATIONS = [op for op in operations(with_ids=False) if op[0] == "GET"]


def ids_of(a: Seeded, path: str) -> dict[str, uuid.UUID]:
    """`employee_id` -> A's employee, `shift_id` -> A's shift, ...; unknown names -> A's employee."""
    out = {}
    for name in path_params(path):
        out[name] = a.id_of(name.removesuffix("_id")) or a.id_of(name.removesuffix("Id")) or a["employee"]
    return out  # type: ignore[return-value]


def a_secrets(a: Seeded, fixture: TenantFixture) -> list[str]:
    return a.secrets() + [str(x) for x in (fixture.id, fixture.admin_id, fixture.manager_id,
                                           fixture.employee_user_id, fixture.employee_id)]


def leaks(response: object, secrets: list[str]) -> list[str]:
    """A's values found in the answer's body or headers. The request's own path is removed
    first: a problem's `instance` echoes it, and the caller already knows what it sent."""
    r: Any = response
    haystack = (r.text + " " + " ".join(r.headers.values())).replace(r.request.url.path, "<request path>")
    return [s for s in secrets if s in haystack]


def masked(text: str, values: dict[str, uuid.UUID]) -> str:
    for name, value in values.items():
        text = text.replace(str(value), f"<{name}>")
    return text


@pytest.fixture()
def a_seeded(owner_sql: psycopg.Connection, tenant_a: TenantFixture) -> Seeded:
    """Tenant A with a row in every table (a schedule, a shift, a punch, an exception...)."""
    return seed(owner_sql, tenant_a.id, with_tenant_row=False)


def test_there_are_routes_with_ids_to_probe() -> None:
    assert ("GET", "/api/employees/{employee_id}") in ID_OPERATIONS
    assert ("PATCH", "/api/users/{user_id}") in ID_OPERATIONS


@pytest.mark.parametrize("method, path", ID_OPERATIONS, ids=[f"{m} {p}" for m, p in ID_OPERATIONS])
async def test_another_tenants_id_is_404_and_reveals_nothing(
    api: Api, owner_sql: psycopg.Connection, tenant_a: TenantFixture, tenant_b: TenantFixture,
    a_seeded: Seeded, method: str, path: str,
) -> None:
    tables = catalog.tenant_tables(owner_sql)
    before = tenant_rows(owner_sql, tables, tenant_a.id)
    values = ids_of(a_seeded, path)

    r = await call(api, tenant_b.admin, method, path, values, a_seeded["employee"])  # type: ignore[arg-type]

    assert r.status_code == 404, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert leaks(r, a_secrets(a_seeded, tenant_a)) == []
    assert tenant_rows(owner_sql, tables, tenant_a.id) == before, "tenant B's request changed tenant A's rows"

    nowhere = {name: uuid.uuid4() for name in values}
    r_nowhere = await call(api, tenant_b.admin, method, path, nowhere, uuid.uuid4())
    assert (r_nowhere.status_code, masked(r_nowhere.text, nowhere)) == (r.status_code, masked(r.text, values)), (
        "the answer for another tenant's id differs from the answer for an id that exists nowhere"
    )


@pytest.mark.parametrize(
    "method, path",
    [op for op in ID_OPERATIONS if op[0] == "GET"],
    ids=[f"{m} {p}" for m, p in ID_OPERATIONS if m == "GET"],
)
async def test_the_probed_ids_are_real_rows_that_tenant_a_can_read(
    api: Api, tenant_a: TenantFixture, a_seeded: Seeded, method: str, path: str
) -> None:
    """Without this, a 404 above could just mean the probe used ids that exist nowhere."""
    r = await call(api, tenant_a.admin, method, path, ids_of(a_seeded, path), a_seeded["employee"])  # type: ignore[arg-type]
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("method, path", LIST_OPERATIONS, ids=[f"{m} {p}" for m, p in LIST_OPERATIONS])
async def test_lists_never_show_another_tenants_rows(
    api: Api, tenant_a: TenantFixture, tenant_b: TenantFixture, a_seeded: Seeded, method: str, path: str
) -> None:
    for token in (tenant_b.admin, tenant_b.manager, tenant_b.employee):
        r = await call(api, token, method, path, {}, a_seeded["employee"])  # type: ignore[arg-type]
        assert r.status_code < 500, r.text
        assert leaks(r, a_secrets(a_seeded, tenant_a)) == [], r.text


@pytest.mark.parametrize(
    "path, own_ids",
    [
        ("/api/employees", lambda a, fx: {str(a["employee"]), str(fx.employee_id)}),
        ("/api/users", lambda a, fx: {str(a["user"]), str(fx.admin_id), str(fx.manager_id),
                                      str(fx.employee_user_id)}),
    ],
)
async def test_lists_show_exactly_the_callers_own_rows(
    api: Api, tenant_a: TenantFixture, tenant_b: TenantFixture, a_seeded: Seeded, path: str, own_ids: object
) -> None:
    r = await api.req("GET", path, tenant_a.admin, params={"limit": 500})
    assert r.status_code == 200, r.text
    assert {item["id"] for item in r.json()["items"]} == own_ids(a_seeded, tenant_a)  # type: ignore[operator]
    r = await api.req("GET", path, tenant_b.admin, params={"limit": 500})
    assert r.status_code == 200, r.text
    assert leaks(r, a_secrets(a_seeded, tenant_a)) == []


async def test_lists_paged_one_by_one_stay_in_the_tenant(
    api: Api, tenant_a: TenantFixture, tenant_b: TenantFixture, a_seeded: Seeded
) -> None:
    seen: list[str] = []
    cursor = None
    for _ in range(20):
        params = {"limit": 1} | ({"cursor": cursor} if cursor else {})
        r = await api.req("GET", "/api/users", tenant_b.admin, params=params)
        assert r.status_code == 200, r.text
        assert leaks(r, a_secrets(a_seeded, tenant_a)) == []
        seen += [item["id"] for item in r.json()["items"]]
        cursor = r.json()["nextCursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(str(u) for u in (tenant_b.admin_id, tenant_b.manager_id, tenant_b.employee_user_id))


# Ids of another tenant named in a request body: refused exactly like ids that exist nowhere.
BODY_REFERENCES = [
    ("POST", "/api/users", lambda emp, b: {"email": f"x-{uuid.uuid4().hex[:8]}@example.com",
                                           "role": "employee", "employeeId": emp}),
    ("PATCH", "/api/users/{b_employee_user}", lambda emp, b: {"employeeId": emp}),
    ("POST", "/api/schedules", lambda emp, b: {"employeeId": emp, "startDate": "2026-03-02",
                                               "endDate": "2026-03-08"}),
    ("POST", "/api/punches", lambda emp, b: {"employeeId": emp, "type": "clock_in",
                                             "timestamp": "2026-01-05T09:00:00Z"}),
]
BODY_REFERENCES = [ref for ref in BODY_REFERENCES
                   if (ref[0], ref[1].replace("{b_employee_user}", "{user_id}")) in operations(with_ids=True)
                   or (ref[0], ref[1]) in operations(with_ids=False)]


@pytest.mark.parametrize("method, path, body", BODY_REFERENCES, ids=[f"{m} {p}" for m, p, _ in BODY_REFERENCES])
async def test_another_tenants_employee_in_a_body_is_treated_as_unknown(
    api: Api, owner_sql: psycopg.Connection, tenant_a: TenantFixture, tenant_b: TenantFixture,
    a_seeded: Seeded, method: str, path: str, body: object,
) -> None:
    url = path.replace("{b_employee_user}", str(tenant_b.employee_user_id))
    a_employee, nowhere = str(a_seeded["employee"]), str(uuid.uuid4())
    r = await api.req(method, url, tenant_b.admin, json=body(a_employee, tenant_b))  # type: ignore[operator]
    assert r.status_code in (404, 422), r.text
    assert leaks(r, a_secrets(a_seeded, tenant_a)) == []
    r_nowhere = await api.req(method, url, tenant_b.admin, json=body(nowhere, tenant_b))  # type: ignore[operator]
    assert (r_nowhere.status_code, r_nowhere.text.replace(nowhere, "<id>")) == (
        r.status_code, r.text.replace(a_employee, "<id>"))
