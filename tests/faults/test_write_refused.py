"""The database answers but refuses writes: read-only (a demoted primary after a failover, or
default_transaction_read_only), or out of disk. Those are a dependency that is down for
writes (contract 1: 503 with Retry-After), not a client's error and not a 500; nothing is
stored, and the same request succeeds once the database takes writes again."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from tests.conftest import Api, TenantFixture, inserts_fail, tenant_counts
from tests.faults.support import running_app
from unifocus.db.urls import database_name
from unifocus.settings import Settings

pytestmark = [pytest.mark.health]


def _punch(t: TenantFixture) -> dict[str, str]:
    return {"employeeId": str(t.employee_id), "type": "clock_in",
            "timestamp": (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")}


def assert_unavailable(r: object) -> None:
    resp: object = r
    assert resp.status_code == 503, resp.text  # type: ignore[attr-defined]
    assert resp.headers["content-type"].startswith("application/problem+json")  # type: ignore[attr-defined]
    assert int(resp.headers["retry-after"]) > 0  # type: ignore[attr-defined]


@contextmanager
def app_role_read_only(owner_sql: psycopg.Connection, settings: Settings, owner_url: str) -> Iterator[None]:
    """The service's role gets read-only sessions from now on (connections opened before keep
    theirs, so the caller starts an app of its own)."""
    scope = f'ROLE {settings.app_db_role} IN DATABASE "{database_name(owner_url)}"'
    owner_sql.execute(f"ALTER {scope} SET default_transaction_read_only = on")
    try:
        yield
    finally:
        owner_sql.execute(f"ALTER {scope} RESET default_transaction_read_only")


async def test_a_read_only_database_is_503_for_writes_and_not_ready(
    settings: Settings, owner_url: str, owner_sql: psycopg.Connection, tenant_a: TenantFixture
) -> None:
    before = tenant_counts(owner_sql, tenant_a.id, "punches", "employees", "audit_log", "idempotency_records")
    with app_role_read_only(owner_sql, settings, owner_url):
        async with running_app(settings) as (_app, client):
            api = Api(client)
            punch = await api.req("POST", "/api/punches", tenant_a.employee, key="ro-1", json=_punch(tenant_a))
            employee = await api.req("POST", "/api/employees", tenant_a.manager, key="ro-2",
                                     json={"firstName": "Read", "lastName": "Only"})
            for r in (punch, employee):
                assert_unavailable(r)
            assert (await api.req("GET", "/api/punches", tenant_a.manager)).status_code == 200  # reads still work
            ready = await client.get("/ready")
            assert ready.status_code == 503, ready.text
            assert ready.json()["checks"]["database"].startswith("error: read-only")
            assert (await client.get("/health")).status_code == 200
    assert tenant_counts(owner_sql, tenant_a.id, "punches", "employees", "audit_log", "idempotency_records") == before
    async with running_app(settings) as (_app, client):  # writable again: the same key writes once
        api = Api(client)
        again = await api.req("POST", "/api/punches", tenant_a.employee, key="ro-1", json=_punch(tenant_a))
        assert again.status_code == 201, again.text
        assert (await client.get("/ready")).status_code == 200


@pytest.mark.parametrize(("sqlstate", "what"), [("53100", "disk full"), ("53200", "out of memory"),
                                                 ("58030", "I/O error")])
async def test_a_database_out_of_resources_is_503_and_the_retry_writes_once(
    api: Api, tenant_a: TenantFixture, owner_sql: psycopg.Connection, sqlstate: str, what: str
) -> None:
    before = tenant_counts(owner_sql, tenant_a.id, "punches", "audit_log", "idempotency_records")
    key = f"full-{sqlstate}"
    body = _punch(tenant_a)
    with inserts_fail(owner_sql, "punches", sqlstate=sqlstate):  # as the server does when out of disk
        for _ in range(2):  # the second on the same client: its connection was not dropped
            assert_unavailable(await api.req("POST", "/api/punches", tenant_a.employee, key=key, json=body))
    assert tenant_counts(owner_sql, tenant_a.id, "punches", "audit_log", "idempotency_records") == before
    first = await api.req("POST", "/api/punches", tenant_a.employee, key=key, json=body)
    assert first.status_code == 201, first.text
    replay = await api.req("POST", "/api/punches", tenant_a.employee, key=key, json=body)
    assert replay.status_code == 201 and replay.json() == first.json()
    assert tenant_counts(owner_sql, tenant_a.id, "punches")[0] == before[0] + 1


async def test_a_write_in_a_read_only_transaction_is_a_bug_not_an_outage(
    app_client: tuple[Any, httpx.AsyncClient],
) -> None:
    """A route's write inside its own READ ONLY transaction is refused with the same SQLSTATE
    as a read-only server's; it must stay an error (a 500 with its traceback), not a 503 that
    clients retry for ever."""
    db = app_client[0].state.db
    with pytest.raises(RuntimeError, match="read-only transaction"):
        async with db.tx(readonly=True) as conn:
            await conn.execute("CREATE TEMP TABLE never_made (i int)")
