"""SIGTERM under load: /ready turns 503 `shutting_down` during the drain, the server keeps
serving through the drain, every request sent before SIGTERM completes with its normal
status, and the process exits within UNIFOCUS_SHUTDOWN_GRACE_SECONDS."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.conftest import JWT_SECRET, make_tenant
from tests.faults.support import ServeProcess
from unifocus.settings import Settings

pytestmark = [pytest.mark.slow, pytest.mark.health]

GRACE = 10.0
DRAIN = 1.0


@dataclass
class Sent:
    at: float
    kind: str
    outcome: int | str = "pending"
    connection: str | None = None  # the answer's Connection header


@pytest.mark.parametrize("workers", [1, 2])
async def test_sigterm_under_load_no_request_in_flight_fails(
    owner_url: str, settings: Settings, tmp_path: Path, workers: int
) -> None:
    t = make_tenant(owner_url, settings)
    # One employee per load task: writes for one employee serialise on its lock, and a
    # lock wait past its bound is a (correct) 503 that would blur what this test measures.
    employees = [uuid.uuid4() for _ in range(9)]
    with psycopg.connect(owner_url, autocommit=True) as conn:
        for e in employees:
            conn.execute("INSERT INTO employees (tenant_id, id, first_name, last_name) VALUES (%s, %s, 'Load', 'Test')",
                         (t.id, e))
    server = ServeProcess({
        "DATABASE_URL": owner_url, "UNIFOCUS_JWT_SECRET": JWT_SECRET, "UNIFOCUS_DATA_DIR": str(tmp_path),
        "UNIFOCUS_SCHEDULER_ENABLED": "false", "UNIFOCUS_SHUTDOWN_GRACE_SECONDS": str(GRACE),
        "UNIFOCUS_SHUTDOWN_DRAIN_SECONDS": str(DRAIN), "UNIFOCUS_RATE_LIMIT_ENABLED": "false",
        "UNIFOCUS_LOG_LEVEL": "WARNING",
    }, workers=workers, log_path=tmp_path / "serve.log")
    try:
        await asyncio.to_thread(server.start)
        assert server.proc is not None
        sent: list[Sent] = []
        ready: list[tuple[float, int, str, str | None]] = []
        stop = asyncio.Event()
        auth = {"Authorization": f"Bearer {t.manager}"}
        # A fresh connection per request: a refused connection then means "not accepted".
        limits = httpx.Limits(max_keepalive_connections=0)

        async def load(client: httpx.AsyncClient, n: int) -> None:
            employee = str(employees[n])
            while not stop.is_set():
                kind = "batch" if n % 3 == 0 else ("punch" if n % 3 == 1 else "read")
                s = Sent(time.monotonic(), kind)
                sent.append(s)
                try:
                    if kind == "read":
                        r = await client.get("/api/punches", headers=auth, params={"limit": 200})
                    elif kind == "punch":
                        ts = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
                        r = await client.post("/api/punches", headers={**auth, "Idempotency-Key": uuid.uuid4().hex},
                                              json={"employeeId": employee, "type": "clock_in",
                                                    "timestamp": ts})
                    else:
                        ts0 = datetime.now(UTC) - timedelta(days=2)
                        items = [{"clientPunchId": uuid.uuid4().hex, "employeeId": employee,
                                  "type": "clock_in" if i % 2 == 0 else "clock_out",
                                  "timestamp": (ts0 + timedelta(minutes=i)).isoformat()} for i in range(25)]
                        r = await client.post("/api/punches/batch", json={"punches": items},
                                              headers={**auth, "Idempotency-Key": uuid.uuid4().hex})
                    s.outcome = r.status_code
                    s.connection = r.headers.get("connection")
                except httpx.HTTPError as exc:
                    s.outcome = type(exc).__name__
                    await asyncio.sleep(0.05)

        async def poll_ready(client: httpx.AsyncClient) -> None:
            while not stop.is_set():
                try:
                    r = await client.get("/ready")
                    ready.append((time.monotonic(), r.status_code, r.json().get("status", ""),
                                  r.headers.get("connection")))
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)

        async with httpx.AsyncClient(base_url=server.base, timeout=GRACE, limits=limits) as client:
            tasks = [asyncio.create_task(load(client, n)) for n in range(9)]
            await asyncio.sleep(1.5)
            sigterm_at = time.monotonic()
            os.kill(server.proc.pid, signal.SIGTERM)
            poller = asyncio.create_task(poll_ready(client))
            deadline = sigterm_at + GRACE + 2
            while server.proc.poll() is None and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            exited_at = time.monotonic()
            stop.set()
            await asyncio.wait_for(asyncio.gather(*tasks, poller), GRACE + 5)

        assert server.proc.poll() is not None, "the server did not exit within the grace"
        assert exited_at - sigterm_at <= GRACE + 0.5, exited_at - sigterm_at
        log = server.log()

        before = [s for s in sent if s.at < sigterm_at]
        assert len(before) >= 9 and any(s.kind == "batch" for s in before)
        failed = [s for s in before if s.outcome not in (200, 201)]
        assert not failed, f"requests in flight at SIGTERM failed: {failed[:5]}\n{log}"
        # Through the drain the server still accepts and serves (load balancers catch up).
        in_drain = [s for s in sent if sigterm_at <= s.at < sigterm_at + DRAIN - 0.3]
        assert in_drain and all(s.outcome in (200, 201) for s in in_drain), (in_drain[:5], log)
        # No request ever got a 5xx; later ones may only be refused at the connection.
        assert not [s for s in sent if isinstance(s.outcome, int) and s.outcome >= 500], log
        assert not [s for s in sent if s.outcome == "pending"]

        draining = [r for r in ready if r[1] == 503 and r[2] == "shutting_down"]
        assert draining, f"/ready never said shutting_down: {ready[:10]}"
        # With several workers uvicorn's supervisor polls its signal queue (every ~0.5 s)
        # before it passes SIGTERM on to the workers.
        propagation = 0.3 if workers == 1 else 1.2
        assert not [r for r in ready if r[1] == 200 and r[0] > sigterm_at + propagation], ready
        # Every answer of the drain tells its client to close the connection: once the drain
        # ends the server closes idle keep-alive connections, and a request sent on one would
        # fail without an answer.
        assert all(r[3] == "close" for r in draining), draining
        late = [s for s in in_drain if s.at > sigterm_at + propagation]
        assert late or workers > 1  # with two workers SIGTERM reaches them after the window
        assert all(s.connection == "close" for s in late), late[:5]
    finally:
        server.stop()
