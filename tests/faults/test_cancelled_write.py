"""A write cancelled while the database hangs (a caller's timeout, a shutdown) ends at once:
its connection is terminated, not rolled back first (db/pool.py ABANDON), and not reused."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import Api, TenantFixture, make_settings, start_app
from tests.health.proxy import TcpProxy, postgres_address, url_through
from tests.idempotency.conftest import employee_body, employees_named, new_key, records
from unifocus.settings import Settings

pytestmark = [pytest.mark.slow, pytest.mark.health]

HOLD_CLAIM = ("INSERT INTO idempotency_records (tenant_id, user_id, method, path, key, fingerprint, expires_at) "
              "VALUES (%s, %s, 'POST', '/api/employees', %s, '\\x00', now() + interval '1 hour')")


async def test_a_write_cancelled_on_a_hung_database_ends_at_once(
    owner_url: str, settings: Settings, tmp_path: Path, tenant_a: TenantFixture, owner_sql: psycopg.Connection,
) -> None:
    """The write is inside its transaction (its claim waits for the key's original) when the
    database stops answering, and is then cancelled: it ends at once, where a ROLLBACK would
    have waited db_timeout_seconds (5 s) on the hung server first. Its connection is closed,
    not handed back to the pool, and nothing of the write is kept."""
    proxy = TcpProxy(postgres_address(owner_url))
    await proxy.start()
    through = url_through(proxy.port, owner_url, settings.app_db_role, settings.app_db_password)
    app: Any
    app, client, lifespan = await start_app(
        make_settings(owner_url, tmp_path, app_database_url=through, idempotency_wait_seconds=30))
    key, body = new_key(), employee_body()
    try:
        with psycopg.connect(owner_url) as original:  # straight to the server, not through the proxy
            original.execute(HOLD_CLAIM, (tenant_a.id, tenant_a.manager_id, key))
            write = asyncio.create_task(Api(client).req("POST", "/api/employees", tenant_a.manager, key=key,
                                                        json=body))
            await asyncio.sleep(0.5)
            assert not write.done()
            assert app.state.db.in_use()[0] == 1
            proxy.freeze()
            started = time.monotonic()
            write.cancel()
            with pytest.raises(asyncio.CancelledError):
                await write
            elapsed = time.monotonic() - started
            original.rollback()
        assert elapsed < 1.0, f"the cancelled write took {elapsed:.1f} s to end"
        pool = app.state.db.pool
        assert (pool.get_size(), pool.get_idle_size()) == (0, 0)  # terminated, not pooled
    finally:
        await proxy.stop()  # the server sees the connection go and ends its transaction
        await client.aclose()
        await lifespan.__aexit__(None, None, None)  # type: ignore[attr-defined]
    assert employees_named(owner_sql, tenant_a.id, body["firstName"]) == 0
    assert records(owner_sql, tenant_a.id) == 0
