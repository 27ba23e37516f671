"""Timesheet read-path benchmark (prints figures; not a test).

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python bench/timesheets.py

Creates a throw-away database on DATABASE_URL's server (else an embedded PostgreSQL, as the
tests do), migrates it, and inserts set-based as the owner: one tenant, 1,000 employees, one
schedule each with 7 weekly shifts (three in four employees 09:00-17:00, one in four
22:00-06:00 overnight), 14 days of occurrences with 4 punches each (clock_in, break_start,
break_end, clock_out: 56,000 punches) and a late_arrival exception on ~5% of occurrences.
Then, through the real app (ASGI, a manager token, the real read path and service code):

- one employee's 31-day timesheet, ~200 samples over random employees: p50 / p99
  (target p50 < 20 ms), against a baseline of the bare SQL fetch of the same punches
  (asyncpg, runtime role, tenant set in a READ ONLY transaction);
- the tenant's 14-day CSV export (target < 2 s), against the bare fetch of the tenant's
  punches for the same window.

The database is dropped at the end.
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

import asyncpg
import httpx
import psycopg

from unifocus.app import create_app
from unifocus.auth.context import Caller
from unifocus.auth.roles import Role
from unifocus.auth.tokens import mint_token
from unifocus.db.migrate import upgrade
from unifocus.db.urls import app_url, with_database
from unifocus.settings import Settings
from unifocus.timeexceptions.policy import DEFAULT_POLICY
from unifocus.timesheets import csv_export, service
from unifocus.timesheets.service import punch_window

EMPLOYEES = 1000
FIRST_DAY, DAYS = date(2026, 6, 1), 14  # Monday 2026-06-01 .. Sunday 2026-06-14
TZ = "America/New_York"
SAMPLES = 200
EXPORT_RUNS = 5
SHEET_FROM, SHEET_TO = date(2026, 6, 1), date(2026, 7, 1)  # 31 days


def calibrate() -> float:
    """A fixed pure-Python workload, to read the figures against the machine's speed now."""
    t = time.perf_counter()
    sum(range(10**7))
    return time.perf_counter() - t


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def seed(owner: str) -> tuple[uuid.UUID, uuid.UUID, list[uuid.UUID]]:
    tid, manager = uuid.uuid4(), uuid.uuid4()
    last = FIRST_DAY.toordinal() + DAYS - 1
    with psycopg.connect(owner, autocommit=True) as conn:
        conn.execute("INSERT INTO tenants (tenant_id, name, timezone) VALUES (%s, 'Bench', %s)", (tid, TZ))
        conn.execute(
            "INSERT INTO employees (tenant_id, first_name, last_name, external_id) "
            "SELECT %s, 'First' || g, 'Last' || lpad(g::text, 4, '0'), 'EXT-' || g FROM generate_series(1, %s) g",
            (tid, EMPLOYEES),
        )
        conn.execute(
            "INSERT INTO users (tenant_id, id, email, role, subject) VALUES (%s, %s, 'm@bench', 'manager', %s)",
            (tid, manager, str(manager)),
        )
        conn.execute(
            "INSERT INTO schedules (tenant_id, employee_id, start_date, end_date) "
            "SELECT tenant_id, id, %s, %s FROM employees WHERE tenant_id = %s",
            (FIRST_DAY, date.fromordinal(last), tid),
        )
        # one employee in four works nights (22:00-06:00, overnight), the others days
        conn.execute(
            "INSERT INTO shifts (tenant_id, schedule_id, day_of_week, start_time, end_time) "
            "SELECT s.tenant_id, s.id, d, "
            "CASE WHEN hashtext(s.employee_id::text) %% 4 = 0 THEN time '22:00' ELSE time '09:00' END, "
            "CASE WHEN hashtext(s.employee_id::text) %% 4 = 0 THEN time '06:00' ELSE time '17:00' END "
            "FROM schedules s CROSS JOIN generate_series(1, 7) d WHERE s.tenant_id = %s",
            (tid,),
        )
        # 4 punches per occurrence: local wall times -> instants in the tenant's zone, with jitter
        conn.execute(
            """
            WITH occ AS (
                SELECT sh.tenant_id, s.employee_id, sh.id AS shift_id, day::date AS shift_date,
                       (day::date + sh.start_time) AT TIME ZONE %(tz)s AS start_at,
                       (day::date + (sh.end_time <= sh.start_time)::int + sh.end_time) AT TIME ZONE %(tz)s
                           AS end_at
                FROM schedules s JOIN shifts sh ON sh.tenant_id = s.tenant_id AND sh.schedule_id = s.id
                CROSS JOIN generate_series(s.start_date, s.end_date, interval '1 day') day
                WHERE s.tenant_id = %(tid)s AND extract(isodow FROM day) = sh.day_of_week
            )
            INSERT INTO punches (tenant_id, employee_id, type, ts, source, shift_id, shift_date)
            SELECT o.tenant_id, o.employee_id, p.type, p.ts, 'device', o.shift_id, o.shift_date
            FROM occ o CROSS JOIN LATERAL (VALUES
                ('clock_in', o.start_at + (random() * 10 - 5) * interval '1 minute'),
                ('break_start', o.start_at + interval '4 hours'),
                ('break_end', o.start_at + interval '4 hours 30 minutes' + random() * interval '5 minutes'),
                ('clock_out', o.end_at + (random() * 30 - 5) * interval '1 minute')
            ) AS p(type, ts)
            """,
            {"tz": TZ, "tid": tid},
        )
        conn.execute(
            """
            INSERT INTO exceptions (tenant_id, employee_id, type, shift_id, shift_date, dedupe_key, details)
            SELECT tenant_id, employee_id, 'late_arrival', shift_id, shift_date,
                   'occ:' || shift_id || ':' || shift_date, '{"minutesLate": 7}'::jsonb
            FROM punches WHERE tenant_id = %s AND type = 'clock_in' AND random() < 0.05
            """,
            (tid,),
        )
        conn.execute("ANALYZE")
        ids = [r[0] for r in conn.execute("SELECT id FROM employees WHERE tenant_id = %s", (tid,)).fetchall()]
        punches = conn.execute("SELECT count(*) FROM punches WHERE tenant_id = %s", (tid,)).fetchone()
        print(f"seeded: {len(ids)} employees, {punches[0] if punches else 0} punches, {DAYS} days")
    return tid, manager, ids


async def run(owner: str, data_dir: Path) -> None:
    settings = Settings(
        database_url=owner, jwt_secret="bench-secret-" + "x" * 32, data_dir=data_dir,
        scheduler_enabled=False, rate_limit_enabled=False,
    )  # type: ignore[call-arg]
    upgrade(owner, settings)
    loop_s = min(calibrate() for _ in range(3))
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
          f"pure-Python calibration loop {loop_s * 1000:.0f} ms (an idle modern core: ~150 ms)")
    t0 = time.perf_counter()
    tid, manager, employees = seed(owner)
    print(f"seed time: {time.perf_counter() - t0:.1f} s")

    app = create_app(settings)
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench")
    headers = {"Authorization": f"Bearer {mint_token(settings, tid, str(manager))}"}
    runtime = await asyncpg.connect(app_url(settings, owner))
    rng = random.Random(7)
    try:
        sample = [rng.choice(employees) for _ in range(SAMPLES)]
        for emp in sample[:20]:  # warm-up: pool, prepared statements, zone cache
            r = await client.get(f"/api/timesheets?employeeId={emp}&from={SHEET_FROM}&to={SHEET_TO}",
                                 headers=headers)
            assert r.status_code == 200, r.text
        assert len(r.json()["days"]) == 31 and r.json()["totals"]["scheduledMinutes"] > 0

        sheet_ms: list[float] = []
        for emp in sample:
            t = time.perf_counter()
            r = await client.get(f"/api/timesheets?employeeId={emp}&from={SHEET_FROM}&to={SHEET_TO}",
                                 headers=headers)
            sheet_ms.append((time.perf_counter() - t) * 1000)
            assert r.status_code == 200

        start, end = punch_window(SHEET_FROM, SHEET_TO, DEFAULT_POLICY)
        base_ms: list[float] = []
        for emp in sample:
            t = time.perf_counter()
            async with runtime.transaction(readonly=True):
                await runtime.execute("SELECT set_config('app.tenant_id', $1, true)", str(tid))
                await runtime.fetch(
                    "SELECT tenant_id, employee_id, id, type, ts FROM punches WHERE tenant_id = $1 "
                    "AND employee_id = $2 AND ts >= $3 AND ts < $4 AND NOT voided", tid, emp, start, end,
                )
            base_ms.append((time.perf_counter() - t) * 1000)

        export_from, export_to = FIRST_DAY, date.fromordinal(FIRST_DAY.toordinal() + DAYS - 1)
        export_s: list[float] = []
        export_cpu: list[float] = []
        rows = 0
        for _ in range(EXPORT_RUNS):
            t, c = time.perf_counter(), time.process_time()
            r = await client.get(f"/api/timesheets/export?from={export_from}&to={export_to}", headers=headers)
            export_s.append(time.perf_counter() - t)
            export_cpu.append(time.process_time() - c)
            assert r.status_code == 200
            rows = sum(1 for _ in csv.reader(io.StringIO(r.text))) - 1
        assert rows == EMPLOYEES * DAYS, rows
        ex_start, ex_end = punch_window(export_from, export_to, DEFAULT_POLICY)
        export_base: list[float] = []
        for _ in range(EXPORT_RUNS):
            t = time.perf_counter()
            async with runtime.transaction(readonly=True):
                await runtime.execute("SELECT set_config('app.tenant_id', $1, true)", str(tid))
                fetched = await runtime.fetch(
                    "SELECT tenant_id, employee_id, id, type, ts FROM punches WHERE tenant_id = $1 "
                    "AND ts >= $2 AND ts < $3 AND NOT voided", tid, ex_start, ex_end,
                )
            export_base.append(time.perf_counter() - t)

        p50, p99, b50, b99 = pct(sheet_ms, 0.5), pct(sheet_ms, 0.99), pct(base_ms, 0.5), pct(base_ms, 0.99)
        print(f"timesheet 31 days, {SAMPLES} samples: p50 {p50:.2f} ms, p99 {p99:.2f} ms "
              f"(target p50 < 20 ms) {'OK' if p50 < 20 else 'MISSED'}")
        print(f"  baseline bare punch fetch:    p50 {b50:.2f} ms, p99 {b99:.2f} ms; ratio p50 {p50 / b50:.1f}x")
        first, med = export_s[0], statistics.median(export_s)
        bmed = statistics.median(export_base)
        print(f"export 14 days x {EMPLOYEES} employees ({rows} rows, {len(r.content) / 1e6:.2f} MB): "
              f"first {first * 1000:.0f} ms, median of {EXPORT_RUNS} {med * 1000:.0f} ms "
              f"(target < 2 s) {'OK' if max(export_s) < 2 else 'MISSED'}")
        print(f"  of which Python CPU in this process (app + client): median "
              f"{statistics.median(export_cpu) * 1000:.0f} ms")
        print(f"  baseline bare tenant punch fetch ({len(fetched)} rows): median {bmed * 1000:.0f} ms; "
              f"ratio {med / bmed:.1f}x")
        await breakdown(runtime, tid, manager, export_from, export_to)
    finally:
        await runtime.close()
        await client.aclose()
        await lifespan.__aexit__(None, None, None)


async def breakdown(conn: asyncpg.Connection, tid: uuid.UUID, manager: uuid.UUID, first: date, last: date) -> None:
    """Where an export's time goes: the set-based fetches, the per-employee compute, the CSV."""
    caller = Caller(tid, manager, "m@bench", Role.manager, None, "bench")
    loads, computes, renders = [], [], []
    for _ in range(EXPORT_RUNS):
        async with conn.transaction(readonly=True):
            await conn.execute("SELECT set_config('app.tenant_id', $1, true)", str(tid))
            t0 = time.perf_counter()
            spans, punches, exceptions = await service._load_facts(conn, caller, None, first, last, DEFAULT_POLICY)
            t1 = time.perf_counter()
        tz = service.zone(TZ)
        data = [
            (service.ExportEmployee(e, None, "", ""),
             service.compute_days(service.EmployeeFacts(tz, spans.get(e, []), punches.get(e, []),
                                                        exceptions.get(e, [])), DEFAULT_POLICY, first, last))
            for e in spans
        ]
        t2 = time.perf_counter()
        csv_export.render(service.iter_rows(data))
        t3 = time.perf_counter()
        loads.append(t1 - t0)
        computes.append(t2 - t1)
        renders.append(t3 - t2)
    med = statistics.median
    print(f"  breakdown (median of {EXPORT_RUNS}): fetch+decode {med(loads) * 1000:.0f} ms, "
          f"compute {med(computes) * 1000:.0f} ms, CSV {med(renders) * 1000:.0f} ms")


def main() -> int:
    logging.disable(logging.INFO)  # the access log would swamp the figures
    server = os.environ.get("DATABASE_URL")
    embedded = None
    tmp = Path(tempfile.mkdtemp(prefix="unifocus-bench-"))
    if not server:
        from unifocus.db.embedded import start_embedded

        server, embedded = start_embedded(tmp)
    name = f"unifocus_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    owner = with_database(server, name)
    try:
        asyncio.run(run(owner, tmp / "data"))
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if embedded is not None:
            embedded.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
