"""Database stopped mid-load: every request answers 2xx or 503 with Retry-After within the
bound (never 500, never hangs), /ready is 503 while it is down, and the service recovers by
itself when the database returns; every punch answered 201 is in the database."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.conftest import TenantFixture, make_settings, make_tenant
from tests.faults.support import PgCluster, running_app
from unifocus.db.migrate import upgrade
from unifocus.db.urls import with_database
from unifocus.settings import Settings

pytestmark = [pytest.mark.slow, pytest.mark.health]

DB_TIMEOUT = 2.0
# Each statement is bounded by db_timeout (a frozen server: ~db_timeout after the last statement
# started); slack for the statements before it and a loaded machine.
BOUND = DB_TIMEOUT + 2.5


@pytest.fixture()
def cluster() -> Iterator[PgCluster]:
    pg = PgCluster()
    try:
        pg.init()
        pg.start()
        yield pg
    finally:
        pg.cleanup()


@dataclass
class Outcome:
    sent: float
    elapsed: float
    status: int | str
    retry_after: str | None = None
    punch_id: str | None = None


@dataclass
class Load:
    client: httpx.AsyncClient
    tenant: TenantFixture
    outcomes: list[Outcome] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def one(self) -> Outcome:
        ts = (datetime.now(UTC) - timedelta(minutes=10)).isoformat()
        sent = time.monotonic()
        try:
            r = await asyncio.wait_for(self.client.post(
                "/api/punches",
                headers={"Authorization": f"Bearer {self.tenant.manager}", "Idempotency-Key": uuid.uuid4().hex},
                json={"employeeId": str(self.tenant.employee_id), "type": "clock_in", "timestamp": ts},
            ), BOUND + 5)
        except TimeoutError:
            out = Outcome(sent, time.monotonic() - sent, "hang")
        except Exception as exc:  # an app exception surfacing is as bad as a 500
            out = Outcome(sent, time.monotonic() - sent, f"exception {type(exc).__name__}: {exc}")
        else:
            pid = r.json().get("id") if r.status_code == 201 else None
            out = Outcome(sent, time.monotonic() - sent, r.status_code, r.headers.get("retry-after"), pid)
        self.outcomes.append(out)
        return out

    async def worker(self) -> None:
        while not self.stop.is_set():
            out = await self.one()
            if out.status != 201:
                await asyncio.sleep(0.05)


@pytest.mark.parametrize("mode", ["fast", "immediate", "freeze"])
async def test_database_stopped_mid_load(
    cluster: PgCluster, settings: Settings, tmp_path: Path, mode: str
) -> None:
    owner = with_database(cluster.url, "postgres")
    upgrade(owner, Settings(database_url=owner))
    tenant = make_tenant(owner, settings)
    s = make_settings(owner, tmp_path, db_timeout_seconds=DB_TIMEOUT, db_pool_max=5,
                      ready_check_timeout_seconds=1.5)
    async with running_app(s, raise_app_exceptions=False) as (_app, client):
        load = Load(client, tenant)
        workers = [asyncio.create_task(load.worker()) for _ in range(6)]
        try:
            await asyncio.sleep(1.5)
            assert any(o.status == 201 for o in load.outcomes), load.outcomes[:5]

            if mode == "freeze":
                await asyncio.to_thread(cluster.freeze)
            else:
                await asyncio.to_thread(cluster.stop, mode)
            stopped_at = time.monotonic()
            await asyncio.sleep(1.0)
            t0 = time.monotonic()
            r = await client.get("/ready")
            assert time.monotonic() - t0 < 2.5
            assert r.status_code == 503, r.text
            assert r.json()["status"] == "not_ready"
            assert r.json()["checks"]["database"].startswith("error"), r.json()
            assert (await client.get("/health")).status_code == 200
            await asyncio.sleep(max(0.0, 3.0 - (time.monotonic() - stopped_at)))

            await asyncio.to_thread(cluster.thaw if mode == "freeze" else cluster.start)
            restarted_at = time.monotonic()
            deadline = restarted_at + 15
            while time.monotonic() < deadline:
                recent = [o for o in load.outcomes if o.sent > restarted_at and o.status == 201]
                if len(recent) >= 10:
                    break
                await asyncio.sleep(0.2)
        finally:
            load.stop.set()
            await asyncio.wait_for(asyncio.gather(*workers), BOUND + 10)

        r = await client.get("/ready")
        assert r.status_code == 200, r.text  # recovered without a restart

    outcomes = load.outcomes
    bad = [o for o in outcomes if o.status not in (201, 503)]
    assert not bad, f"only 201 or 503 may answer: {bad[:5]}"
    unavailable = [o for o in outcomes if o.status == 503]
    assert unavailable, "the outage was not observed"
    assert all(o.retry_after and int(o.retry_after) > 0 for o in unavailable), unavailable[:3]
    slow = [o for o in outcomes if o.elapsed > BOUND]
    assert not slow, f"answers slower than {BOUND}s: {slow[:5]}"
    after = [o for o in outcomes if o.sent > restarted_at + 0.1 and o.status == 201]
    assert len(after) >= 10, "the service did not recover by itself after the database returned"

    created = {o.punch_id for o in outcomes if o.status == 201}
    with psycopg.connect(owner) as conn:
        stored = {str(r[0]) for r in conn.execute("SELECT id FROM punches WHERE tenant_id = %s", (tenant.id,))}
    assert created <= stored, f"{len(created - stored)} punches answered 201 are missing"
