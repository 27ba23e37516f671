"""The service's Python CPU per punch, in-process: the real app on a real database, no HTTP.

    .venv/bin/python bench/inproc.py [--src OTHER/src] [--punches N] [--rounds R]

`make bench` measures the whole system, and on a shared 2-core machine its rates move by 25%
from run to run. This measures one thing steadily: the CPU time of this process (user +
system, `time.process_time`) per punch, while 16 asyncio tasks send `POST /api/punches` as
ASGI calls straight into the app (the ASGI app and everything under it: middleware, the fast
route, the write path, the engine, asyncpg and its socket work; not uvicorn's HTTP parsing).
The workload is `punch.lua`'s, in time order. PostgreSQL runs in its own processes and is not
counted. `--src` runs another checkout's code (same migrations) for an A/B: alternate the
two, a round at a time, and compare the best rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--src", default=str(HERE.parent / "src"), help="the code to measure (a checkout's src)")
    ap.add_argument("--punches", type=int, default=3000, help="punches per measured round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--employees", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--warmup", type=int, default=500, help="punches before the measured rounds")
    return ap.parse_args()


ARGS = parse_args()
sys.path.insert(0, ARGS.src)
sys.path.insert(1, str(HERE))

import psycopg  # noqa: E402

from unifocus.app import create_app  # noqa: E402
from unifocus.auth.tokens import mint_token  # noqa: E402
from unifocus.db.migrate import upgrade  # noqa: E402
from unifocus.db.urls import with_database  # noqa: E402
from unifocus.settings import Settings  # noqa: E402


class Load:
    """punch.lua's request sequence, forward order: request g punches employee g mod E."""

    def __init__(self, token: str, employees: int, first_day: datetime) -> None:
        self.headers = [(b"authorization", f"Bearer {token}".encode()), (b"content-type", b"application/json"),
                        (b"host", b"bench")]
        self.employees, self.first_day, self.g = employees, first_day, 0
        self.prefix = uuid.uuid4().hex[:8]

    def next(self) -> tuple[list[tuple[bytes, bytes]], bytes]:
        g = self.g
        self.g += 1
        k = g // self.employees
        day = self.first_day + timedelta(days=k // 2)
        kind, hour = ("clock_in", 9) if k % 2 == 0 else ("clock_out", 17)
        ts = (day + timedelta(hours=hour)).strftime("%Y-%m-%dT%H:%M:%SZ")
        emp = f"00000000-0000-4000-8000-{g % self.employees:012x}"
        body = f'{{"employeeId":"{emp}","type":"{kind}","timestamp":"{ts}"}}'.encode()
        headers = [*self.headers, (b"idempotency-key", f"{self.prefix}-{g}".encode()),
                   (b"content-length", str(len(body)).encode())]
        return headers, body


async def call(app: Any, headers: list[tuple[bytes, bytes]], body: bytes) -> int:
    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": "/api/punches", "raw_path": b"/api/punches",
             "query_string": b"", "root_path": "", "headers": headers, "server": ("bench", 80),
             "client": ("127.0.0.1", 40000), "state": {}}
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def drive(app: Any, load: Load, punches: int, concurrency: int) -> None:
    remaining = punches

    async def client() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            headers, body = load.next()
            status = await call(app, headers, body)
            if status != 201:
                raise RuntimeError(f"punch answered {status}")

    await asyncio.gather(*(client() for _ in range(concurrency)))


async def measure(settings: Settings, token: str, first_day: datetime) -> list[float]:
    print(f"measuring {sys.modules['unifocus'].__file__}", flush=True)
    app = create_app(settings)
    out = []
    async with app.router.lifespan_context(app):
        load = Load(token, ARGS.employees, first_day)
        await drive(app, load, ARGS.warmup, ARGS.concurrency)  # warm-up: caches, pool, statements
        for _ in range(ARGS.rounds):
            started = time.process_time()
            await drive(app, load, ARGS.punches, ARGS.concurrency)
            out.append((time.process_time() - started) / ARGS.punches * 1e6)
    written = _punch_write_outcomes()
    if any(written.values()):  # how the two-statement write ended (code that has it)
        print("punch write outcomes: " + ", ".join(f"{k} {v:.0f}" for k, v in written.items() if v), flush=True)
    return out


def _punch_write_outcomes() -> dict[str, float]:
    from prometheus_client import REGISTRY

    out: dict[str, float] = {}
    for metric in REGISTRY.collect():
        if metric.name == "unifocus_punch_writes":
            for sample in metric.samples:
                if sample.name.endswith("_total"):
                    out[sample.labels["outcome"]] = sample.value
    return out


def main() -> None:
    # After unifocus is imported from --src: run.py puts this checkout's src first on sys.path.
    from run import SECRET, seed

    server = os.environ.get("DATABASE_URL")
    if not server:
        sys.exit("bench/inproc.py needs DATABASE_URL")
    name = os.environ.get("INPROC_DB") or f"unifocus_inproc_{uuid.uuid4().hex[:10]}"
    db = with_database(server, name)
    created = not os.environ.get("INPROC_DB")
    work = Path(tempfile.mkdtemp(prefix="unifocus-inproc-"))
    settings = Settings(database_url=db, jwt_secret=SECRET, data_dir=work, scheduler_enabled=False,
                        rate_limit_enabled=False, log_level="WARNING", redis_url=None)
    try:
        if created:
            with psycopg.connect(server, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            upgrade(db, settings)
            tenant, user = seed(db, ARGS.employees)
        else:
            with psycopg.connect(db) as conn:
                row = conn.execute("SELECT u.tenant_id, u.id FROM users u WHERE email = 'bench-manager@example.com'"
                                   ).fetchone()
                assert row is not None
                tenant, user = row
        token = mint_token(settings, tenant, str(user), ttl_minutes=120)
        # Days of its own for every run (a run uses ~5): 30 days before the earliest punch of the
        # runs before it on this database, so no punch's 72 h window reaches another run's.
        with psycopg.connect(db) as conn:
            row = conn.execute("SELECT min(ts) FROM punches").fetchone()
        earliest = row[0] if row and row[0] else datetime.now(UTC) - timedelta(days=1000)
        first_day = earliest.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=30)
        rounds = asyncio.run(measure(settings, token, first_day))
        print(f"{ARGS.src}: Python CPU per punch (us): " + ", ".join(f"{r:.0f}" for r in rounds), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if created:
            with psycopg.connect(server, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
