"""The cleanup job: expired records go, live ones stay, concurrent runs are safe, and the
scheduler's jobs run in one replica at a time."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest

from tests.conftest import JWT_SECRET, TenantFixture
from unifocus.db.pool import Database
from unifocus.idempotency.cleanup import cleanup_expired
from unifocus.jobs.scheduler import run_exclusive
from unifocus.settings import Settings

pytestmark = pytest.mark.idempotency


def seed(owner_sql: psycopg.Connection, tenants: list[TenantFixture], expired: int, live: int) -> set[str]:
    """`expired` and `live` records per tenant, inserted as the owner; returns the live keys.
    Records of earlier tests that are (nearly) expired are removed first, so the counts are
    exactly this test's."""
    owner_sql.execute("DELETE FROM idempotency_records WHERE expires_at <= now() + interval '1 hour'")
    live_keys: set[str] = set()
    for t in tenants:
        for i in range(expired + live):
            key = f"{'old' if i < expired else 'new'}-{uuid.uuid4().hex}"
            when = "now() - interval '1 minute'" if i < expired else "now() + interval '2 hours'"
            owner_sql.execute(
                "INSERT INTO idempotency_records (tenant_id, user_id, method, path, key, fingerprint, "  # noqa: S608
                f"status_code, headers, body, expires_at) VALUES (%s, %s, 'POST', '/api/employees', %s, "
                f"'\\x00', 201, '{{}}', '', {when})",
                (t.id, t.manager_id, key))
            if i >= expired:
                live_keys.add(key)
    return live_keys


def remaining(owner_sql: psycopg.Connection, tenants: list[TenantFixture]) -> set[str]:
    rows = owner_sql.execute("SELECT key FROM idempotency_records WHERE tenant_id = ANY(%s)",
                             ([t.id for t in tenants],)).fetchall()
    return {r[0] for r in rows}


async def test_concurrent_cleanups_remove_each_expired_record_once(
    runtime_url: str, settings: Settings, tenant_a: TenantFixture, tenant_b: TenantFixture,
    owner_sql: psycopg.Connection,
) -> None:
    tenants = [tenant_a, tenant_b]
    live = seed(owner_sql, tenants, expired=23, live=7)
    dbs = [Database(runtime_url, settings) for _ in range(2)]
    for db in dbs:
        await db.open()
    try:
        removed = await asyncio.gather(*(cleanup_expired(db, batch=4) for db in dbs))
        assert sum(removed) == 2 * 23, removed
        assert remaining(owner_sql, tenants) == live
        assert await cleanup_expired(dbs[0]) == 0
    finally:
        for db in dbs:
            await db.close()


async def test_run_exclusive_runs_one_of_two(runtime_url: str, settings: Settings) -> None:
    dbs = [Database(runtime_url, settings) for _ in range(2)]
    for db in dbs:
        await db.open()
    started = asyncio.Event()
    release = asyncio.Event()
    calls: list[int] = []

    async def job(_: Database) -> int:
        calls.append(1)
        started.set()
        await release.wait()
        return 7

    name = f"test-job-{uuid.uuid4().hex}"
    try:
        first = asyncio.create_task(run_exclusive(dbs[0], name, job))
        await asyncio.wait_for(started.wait(), 5)
        assert await run_exclusive(dbs[1], name, job) is None  # the other replica skips
        other = await run_exclusive(dbs[1], name + "-other", lambda _: asyncio.sleep(0, 3))
        assert other == 3  # another job is not blocked
        release.set()
        assert await first == 7
        assert calls == [1]

        async def quick(_: Database) -> int:
            await asyncio.sleep(0.5)
            return 1

        results = await asyncio.gather(run_exclusive(dbs[0], name, quick), run_exclusive(dbs[1], name, quick))
        assert sorted(results, key=lambda r: r is None) == [1, None]
        # The lock is released with the job's transaction: the next run gets it.
        assert await run_exclusive(dbs[1], name, quick) == 1
    finally:
        release.set()
        for db in dbs:
            await db.close()


def test_cli_cleanup(owner_url: str, tenant_a: TenantFixture, owner_sql: psycopg.Connection,
                     tmp_path: Path) -> None:
    live = seed(owner_sql, [tenant_a], expired=5, live=2)
    env = {**os.environ, "DATABASE_URL": owner_url, "UNIFOCUS_JWT_SECRET": JWT_SECRET,
           "UNIFOCUS_DATA_DIR": str(tmp_path), "UNIFOCUS_IDEMPOTENCY_CLEANUP_BATCH": "2"}
    env.pop("UNIFOCUS_APP_DATABASE_URL", None)
    cli = str(Path(sys.executable).with_name("unifocus"))
    out = subprocess.run([cli, "idempotency", "cleanup"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    match = re.search(r"removed (\d+)", out.stdout)
    assert match is not None, out.stdout
    assert int(match.group(1)) == 5
    assert remaining(owner_sql, [tenant_a]) == live
    again = subprocess.run([cli, "idempotency", "cleanup"], env=env, capture_output=True, text=True,
                           timeout=60)
    assert again.returncode == 0 and "removed 0" in again.stdout
