from __future__ import annotations

import pytest

from tests.conftest import Api, TenantFixture

pytestmark = pytest.mark.tenants


async def test_me_and_employee_crud(api: Api, tenant_a: TenantFixture) -> None:
    r = await api.req("GET", "/api/me", tenant_a.manager)
    assert r.status_code == 200, r.text
    assert r.json()["role"] == "manager"
    r = await api.req("POST", "/api/employees", tenant_a.manager, key="k1",
                      json={"firstName": "Ann", "lastName": "Lee", "externalId": "E1"})
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"/api/employees/{r.json()['id']}"
    again = await api.req("POST", "/api/employees", tenant_a.manager, key="k1",
                          json={"firstName": "Ann", "lastName": "Lee", "externalId": "E1"})
    assert again.status_code == 201
    assert again.content == r.content
    assert again.headers["idempotent-replayed"] == "true"


async def test_docs_render_the_openapi_document(api: Api) -> None:
    """Contract 1: `GET /docs` renders `/openapi.json` (Swagger UI), without a token."""
    r = await api.client.get("/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in r.text and "swagger-ui" in r.text.lower()
    spec = await api.client.get("/openapi.json")
    assert spec.status_code == 200 and spec.json()["info"]["title"] in r.text
