"""The rule "a new write endpoint that bypasses the write path must fail a test", the
OpenAPI promise on every write, and READ ONLY reads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import fastapi.routing
import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from tests.conftest import Api, TenantFixture
from unifocus.app import create_app
from unifocus.auth.roles import Role
from unifocus.db.readpath import ReadTx, reader
from unifocus.db.writepath import writer
from unifocus.settings import Settings

pytestmark = pytest.mark.idempotency

WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def _uses_write_path(dependant: Dependant) -> bool:
    return any(getattr(d.call, "write_path", False) is True or _uses_write_path(d)
               for d in dependant.dependencies)


def _api_routes(app: FastAPI) -> list[Any]:
    """Every APIRoute as mounted (full path, router-level dependencies included). FastAPI
    >= 0.16x keeps included routers as lazy `_IncludedRouter` entries in `app.routes`;
    `iter_route_contexts` flattens them. Older versions list APIRoutes directly."""
    iter_contexts = getattr(fastapi.routing, "iter_route_contexts", None)
    if iter_contexts is None:
        return [r for r in app.routes if isinstance(r, APIRoute)]
    return [ctx for ctx in iter_contexts(app.routes) if isinstance(ctx.original_route, APIRoute)]


def write_routes(app: FastAPI) -> list[tuple[str, str, Any]]:
    return [(method, route.path, route) for route in _api_routes(app)
            for method in sorted(set(route.methods or ()) & WRITES) if route.path.startswith("/api")]


def bypassing(app: FastAPI) -> list[str]:
    return [f"{m} {p}" for m, p, route in write_routes(app) if not _uses_write_path(route.dependant)]


@pytest.fixture(scope="module")
def app(settings: Settings) -> FastAPI:
    return create_app(settings)  # not started: routes and OpenAPI need no database


def test_every_write_route_goes_through_the_write_path(app: FastAPI) -> None:
    routes = write_routes(app)
    found = {f"{m} {p}" for m, p, _ in routes}
    assert {"POST /api/employees", "PATCH /api/users/{user_id}",
            "DELETE /api/employees/{employee_id}"} <= found
    assert bypassing(app) == []


def test_the_check_catches_a_route_that_bypasses_the_write_path(settings: Settings) -> None:
    rogue_app = create_app(settings)
    rogue = APIRouter(prefix="/api")

    @rogue.post("/rogue")
    async def rogue_write(r: ReadTx = Depends(reader(Role.manager))) -> dict[str, Any]:
        return {}

    @rogue.put("/nested")
    async def nested_write(w: Any = Depends(lambda x=Depends(writer(Role.admin)): x)) -> dict[str, Any]:
        return {}

    rogue_app.include_router(rogue)
    assert bypassing(rogue_app) == ["POST /api/rogue"]  # a writer nested deeper still counts


async def test_openapi_documents_key_and_errors_on_every_write(api: Api, app: FastAPI) -> None:
    r = await api.client.get("/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    routes = write_routes(app)
    assert routes
    for method, path, _ in routes:
        op = doc["paths"][path][method.lower()]
        headers = [p for p in op.get("parameters", []) if p["in"] == "header"]
        keys = [p for p in headers if p["name"].lower() == "idempotency-key"]
        assert len(keys) == 1, f"{method} {path}: no Idempotency-Key header documented"
        assert keys[0].get("required", False) is False
        assert keys[0]["schema"].get("anyOf") or keys[0]["schema"].get("type") == "string"
        assert keys[0].get("description"), f"{method} {path}: undocumented Idempotency-Key"
        for status in ("400", "409", "422"):
            assert status in op["responses"], f"{method} {path}: {status} undocumented"
            assert "application/problem+json" in op["responses"][status]["content"]
    reads = [(p, m) for p, ops in doc["paths"].items() for m in ops if m == "get" and p.startswith("/api")]
    for path, method in reads:
        params = doc["paths"][path][method].get("parameters", [])
        assert not any(p["name"].lower() == "idempotency-key" for p in params), path


async def test_read_transactions_cannot_write(app_client: tuple[Any, httpx.AsyncClient],
                                              tenant_a: TenantFixture) -> None:
    db = app_client[0].state.db
    async with db.tenant_tx(tenant_a.id, readonly=True) as conn:
        with pytest.raises(asyncpg.exceptions.ReadOnlySQLTransactionError):
            await conn.execute(
                "INSERT INTO employees (tenant_id, first_name, last_name) VALUES ($1, 'R', 'O')", tenant_a.id)


@pytest.fixture()
async def app_with_sneaky_get(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The real app plus a GET route that tries to write through its reader transaction."""
    app = create_app(settings)
    sneaky = APIRouter(prefix="/api")

    @sneaky.get("/sneaky-write")
    async def sneaky_write(r: ReadTx = Depends(reader(Role.employee))) -> dict[str, Any]:
        try:
            await r.conn.execute("UPDATE employees SET first_name = 'Sneaky' WHERE tenant_id = $1",
                                 r.caller.tenant_id)
        except asyncpg.exceptions.ReadOnlySQLTransactionError:
            return {"readOnly": True}
        return {"readOnly": False}

    app.include_router(sneaky)
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client
    await lifespan.__aexit__(None, None, None)


async def test_a_get_handler_cannot_write(app_with_sneaky_get: httpx.AsyncClient, tenant_a: TenantFixture,
                                          owner_url: str) -> None:
    r = await app_with_sneaky_get.get("/api/sneaky-write",
                                      headers={"Authorization": f"Bearer {tenant_a.admin}"})
    assert r.status_code == 200, r.text
    assert r.json() == {"readOnly": True}
