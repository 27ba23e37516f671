"""Helpers for the idempotency gate: owner-side counts, a client that turns app exceptions
into responses (as a real server does), and extra apps with their own settings."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.conftest import Api, make_settings, start_app
from unifocus.settings import Settings

PROBLEM = "application/problem+json"


def problem_type(r: httpx.Response) -> str:
    assert r.headers["content-type"].startswith(PROBLEM), (r.status_code, r.headers, r.text)
    return str(r.json()["type"])


def scalar(owner_sql: psycopg.Connection, sql: str, *args: Any) -> Any:
    row = owner_sql.execute(sql, args).fetchone()
    assert row is not None
    return row[0]


def employees_named(owner_sql: psycopg.Connection, tenant_id: uuid.UUID, first_name: str) -> int:
    return int(scalar(owner_sql, "SELECT count(*) FROM employees WHERE tenant_id = %s AND first_name = %s",
                      tenant_id, first_name))


def audit_entries(owner_sql: psycopg.Connection, tenant_id: uuid.UUID) -> int:
    """The fixtures insert their rows as the owner without audit: every entry is the API's."""
    return int(scalar(owner_sql, "SELECT count(*) FROM audit_log WHERE tenant_id = %s", tenant_id))


def records(owner_sql: psycopg.Connection, tenant_id: uuid.UUID) -> int:
    return int(scalar(owner_sql, "SELECT count(*) FROM idempotency_records WHERE tenant_id = %s", tenant_id))


def record(owner_sql: psycopg.Connection, tenant_id: uuid.UUID, key: str) -> tuple[Any, ...] | None:
    return owner_sql.execute(
        "SELECT status_code, body, headers, expires_at, fingerprint FROM idempotency_records "
        "WHERE tenant_id = %s AND key = %s", (tenant_id, key)).fetchone()


def expire(owner_sql: psycopg.Connection, tenant_id: object, key: str) -> None:
    """Put a key's record a second past its window (the cleanup job has not run yet)."""
    owner_sql.execute("UPDATE idempotency_records SET expires_at = now() - interval '1 second' "
                      "WHERE tenant_id = %s AND key = %s", (tenant_id, key))


def new_key() -> str:
    return f"k-{uuid.uuid4().hex}"


def employee_body(first: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"firstName": first or f"F{uuid.uuid4().hex[:8]}", "lastName": "Tester", **extra}


@pytest.fixture()
async def api_raw(app_client: tuple[Any, httpx.AsyncClient]) -> AsyncIterator[Api]:
    """The shared app through a transport that answers 500 like a server does instead of
    re-raising the handler's exception into the test."""
    transport = httpx.ASGITransport(app=app_client[0], raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield Api(client)


AppFactory = Callable[..., Awaitable[tuple[Any, Api]]]


@pytest.fixture()
async def other_app(owner_url: str, tmp_path: Path) -> AsyncIterator[AppFactory]:
    """`await other_app(idempotency_required=True)`: a separate app (own pool) with settings
    overridden; closed after the test."""
    started: list[tuple[httpx.AsyncClient, Any]] = []

    async def factory(**overrides: Any) -> tuple[Any, Api]:
        settings: Settings = make_settings(owner_url, tmp_path, **overrides)
        app, client, lifespan = await start_app(settings)
        started.append((client, lifespan))
        return app, Api(client)

    yield factory
    for client, lifespan in started:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)
