"""Benchmark: the audit log API's query on a large log (prints figures; not a test).

    .venv/bin/python bench/audit_query.py [--rows 5000000] [--tenants 100] [--samples 2000]

Creates a scratch database on DATABASE_URL's server (else an embedded PostgreSQL), migrates
it, fills `--rows` audit entries spread over 90 days and `--tenants` tenants (the largest
tenant holds a fifth of them, >= 1 million at the default size), ANALYZEs, then measures
p50/p99 of `unifocus.audit.service.list_page` (the code behind `GET /api/audit-logs`, run as
the app role inside a READ ONLY tenant transaction, as the route does) for the largest tenant:

- first page (limit 50, no filter);
- a filtered page (entity + action + from/to range);
- a deep page (page 200, reached through the cursor);
- an entity-only, an action-only and a userId filter (extra: show whether the indexes cover
  them);

and, in the same run, a bare SQL baseline for the same page (no users join, no model
conversion), with the ratio. Targets: p99 < 50 ms (this project's), and the readiness gate's
p99.9 < 500 ms for audit queries over 90 days (2000 samples per query by default, so p99.9 is
the third-slowest). The figures are also written to bench/results/audit-query-<time>.json.
The database is dropped at the end.

The fill is set-based SQL as the owner with the chain trigger (audit_log_chain) disabled and
the secondary indexes built after the load, for speed: seq/prev_hash/hash are FAKED
(`unifocus audit verify` would reject this data); the index definitions are the migration's,
read back from the catalog, so the query plans are the production ones.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from unifocus.audit import service  # noqa: E402
from unifocus.audit.schemas import AuditAction, AuditEntity  # noqa: E402
from unifocus.auth.context import Caller  # noqa: E402
from unifocus.auth.roles import Role  # noqa: E402
from unifocus.db.migrate import upgrade  # noqa: E402
from unifocus.db.urls import app_url, with_database  # noqa: E402
from unifocus.pagination import PageParams  # noqa: E402
from unifocus.settings import Settings  # noqa: E402

DAYS = 90
USERS_PER_TENANT = 10
EMPLOYEES_PER_TENANT = 300

# Per tenant: n rows over the last 90 days, evenly spaced with jitter, over 8 chains.
# Entities/actions roughly as a live tenant produces them (punches dominate).
FILL = r"""
INSERT INTO audit_log (tenant_id, id, chain, seq, user_id, action, entity, entity_id, changes,
                       employee_id, punch_id, exception_id, request_id, created_at, prev_hash, hash)
SELECT %(tenant)s, md5(%(tenant)s::text || ':a:' || g)::uuid, (g %% 8)::smallint, g / 8 + 1,
       md5(%(tenant)s::text || ':u:' || (g %% 10))::uuid,
       k.action, k.entity, md5(%(tenant)s::text || ':x:' || (g / 3))::uuid,
       jsonb_build_object('before', NULL, 'after', jsonb_build_object(
           'id', md5(g::text)::uuid, 'employeeId', md5(%(tenant)s::text || ':e:' || (g %% 300))::uuid,
           'type', 'clock_in', 'timestamp', r.ts, 'source', 'device', 'device', 'door-' || (g %% 7),
           'voided', false)),
       md5(%(tenant)s::text || ':e:' || (g %% 300))::uuid,
       CASE WHEN k.entity = 'Punch' THEN md5(g::text)::uuid END,
       CASE WHEN k.entity = 'Exception' THEN md5('x' || g::text)::uuid END,
       'bench-' || g, r.ts, '\x'::bytea, sha256(int8send(g))
FROM generate_series(0, %(n)s - 1) AS g
CROSS JOIN LATERAL (
    SELECT now() - make_interval(secs => %(span)s * (g + random() * 0.9) / %(n)s) AS ts,
           (g * 2654435761) %% 100 AS bucket
) r
CROSS JOIN LATERAL (
    SELECT CASE WHEN r.bucket < 72 THEN 'Punch' WHEN r.bucket < 90 THEN 'Exception'
                WHEN r.bucket < 95 THEN 'Shift' WHEN r.bucket < 97 THEN 'Schedule'
                WHEN r.bucket < 99 THEN 'Employee' ELSE 'User' END AS entity,
           CASE WHEN r.bucket < 70 THEN 'created' WHEN r.bucket < 72 THEN 'voided'
                WHEN r.bucket < 80 THEN 'created' WHEN r.bucket < 86 THEN 'approved'
                WHEN r.bucket < 88 THEN 'rejected' WHEN r.bucket < 90 THEN 'withdrawn'
                WHEN r.bucket < 97 THEN 'created' ELSE 'updated' END AS action
) k(entity, action)
"""


def server_url() -> tuple[str, Any]:
    url = os.environ.get("DATABASE_URL")
    if url:
        return url, None
    from unifocus.db.embedded import start_embedded

    data = Path(tempfile.mkdtemp(prefix="unifocus-bench-pg-"))
    url, server = start_embedded(data)
    return url, (server, data)


def sizes(rows: int, tenants: int) -> list[int]:
    largest = max(rows // 5, 1)
    rest = rows - largest
    others = tenants - 1
    return [largest] + [rest // others + (1 if i < rest % others else 0) for i in range(others)]


def _fill_tenant(url: str, jobs: list[tuple[int, uuid.UUID, int]], t0: float) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for i, tid, n in jobs:
            conn.execute(FILL, {"tenant": tid, "n": n, "span": DAYS * 86400})  # type: ignore[arg-type]
            if i == 0 or (i + 1) % 20 == 0:
                print(f"  filled tenant {i + 1} ({n} rows), {time.perf_counter() - t0:.0f} s", flush=True)


def fill(url: str, rows: int, tenants: int, workers: int = 2) -> uuid.UUID:
    """Load with the chain trigger off and audit_log's indexes and keys dropped, then rebuild
    the migration's own definitions (read back from the catalog), VACUUM ANALYZE."""
    counts = sizes(rows, tenants)
    ids = [uuid.uuid4() for _ in counts]
    t0 = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        keys = conn.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'audit_log'::regclass AND contype IN ('p', 'u', 'f') ORDER BY contype DESC"
        ).fetchall()
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'audit_log' "
            "AND indexname NOT IN (SELECT conname FROM pg_constraint WHERE conrelid = 'audit_log'::regclass)"
        ).fetchall()
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        for name, _ in sorted(keys, key=lambda k: k[0].endswith("fkey"), reverse=True):
            conn.execute(f'ALTER TABLE audit_log DROP CONSTRAINT "{name}"')
        for i, tid in enumerate(ids):
            conn.execute("INSERT INTO tenants (tenant_id, name, timezone) VALUES (%s, %s, 'UTC')",
                         (tid, f"Bench {i}"))
            conn.execute(
                "INSERT INTO users (tenant_id, id, email, role, subject) "
                "SELECT %(t)s, md5(%(t)s::text || ':u:' || k)::uuid, 'user' || k || '@t' || %(i)s || '.example',"
                " CASE WHEN k = 0 THEN 'admin' ELSE 'manager' END, md5(%(t)s::text || ':u:' || k) "
                "FROM generate_series(0, 9) k", {"t": tid, "i": i})
        conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_chain")
        try:
            jobs = [(i, tid, n) for i, (tid, n) in enumerate(zip(ids, counts, strict=True))]
            with ThreadPoolExecutor(workers) as pool:
                for f in [pool.submit(_fill_tenant, url, jobs[w::workers], t0) for w in range(workers)]:
                    f.result()
        finally:
            conn.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_chain")
        t1 = time.perf_counter()
        conn.execute("SET maintenance_work_mem = '512MB'")
        for name, definition in keys:
            conn.execute(f'ALTER TABLE audit_log ADD CONSTRAINT "{name}" {definition}')
        for _, definition in indexes:
            conn.execute(definition)
        print(f"  keys and indexes rebuilt in {time.perf_counter() - t1:.0f} s", flush=True)
        conn.execute("VACUUM ANALYZE audit_log")
        conn.execute("ANALYZE users")
        size = conn.execute("SELECT pg_size_pretty(pg_total_relation_size('audit_log'))").fetchone()
    print(f"filled {rows} rows over {tenants} tenants (largest {counts[0]}) in "
          f"{time.perf_counter() - t0:.0f} s; audit_log is {size[0] if size else '?'}", flush=True)
    return ids[0]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def timed(conn: asyncpg.Connection, tenant: uuid.UUID, fn: Callable[[], Awaitable[Any]],
                samples: int) -> list[float]:
    out = []
    for _ in range(samples):
        async with conn.transaction(readonly=True):
            await conn.execute("SELECT set_config('app.tenant_id', $1, true)", str(tenant))
            t = time.perf_counter()
            await fn()
            out.append((time.perf_counter() - t) * 1000)
    return out


async def measure(url: str, tenant: uuid.UUID, samples: int, results: dict[str, Any]) -> bool:
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction(readonly=True):
            await conn.execute("SELECT set_config('app.tenant_id', $1, true)", str(tenant))
            admin = await conn.fetchrow("SELECT id, email FROM users WHERE tenant_id = $1 AND role = 'admin'",
                                        tenant)
        assert admin is not None
        caller = Caller(tenant, admin["id"], admin["email"], Role.admin, None, "bench")
        now = datetime.now(UTC)
        none = service.AuditFilters()
        cases: list[tuple[str, service.AuditFilters, int]] = [
            ("first page", none, 1),
            ("filtered: Exception+approved, 30-day range", service.AuditFilters(
                AuditEntity.Exception, AuditAction.approved, since=now - timedelta(days=40),
                until=now - timedelta(days=10)), 1),
            ("deep page 200 via cursor", none, 200),
            ("extra: entity only (Schedule)", service.AuditFilters(AuditEntity.Schedule), 1),
            ("extra: action only (rejected)", service.AuditFilters(action=AuditAction.rejected), 1),
            ("extra: userId", service.AuditFilters(user_id=admin["id"]), 1),
        ]
        ok = True
        print(f"\n{'query':<44} {'service p50':>12} {'p99':>8} {'p99.9':>8} {'bare SQL p50':>13} {'p99':>8} "
              f"{'ratio':>6}")
        for name, filters, page_no in cases:
            cursor = None
            async with conn.transaction(readonly=True):
                await conn.execute("SELECT set_config('app.tenant_id', $1, true)", str(tenant))
                for n in range(page_no - 1):
                    cursor = (await service.list_page(conn, caller, PageParams.of(50, cursor), filters))["next_cursor"]
                    if cursor is None:
                        print(f"  ({name}: the log has only {n + 1} pages; use more --rows)")
                        break
            page = PageParams.of(50, cursor)
            sql, args = service.build_query(tenant, filters, page.after, 50)
            bare = sql.replace(service.SELECT, "SELECT a.* FROM audit_log a ")

            async def via_service(page: PageParams = page, filters: service.AuditFilters = filters) -> Any:
                return await service.list_page(conn, caller, page, filters)

            async def via_sql(bare: str = bare, args: list[Any] = args) -> Any:
                return await conn.fetch(bare, *args)

            for _ in range(5):  # warm the caches and the prepared statements
                await timed(conn, tenant, via_service, 1)
                await timed(conn, tenant, via_sql, 1)
            svc = await timed(conn, tenant, via_service, samples)
            base = await timed(conn, tenant, via_sql, samples)
            s50, s99, s999, b50, b99 = pct(svc, .5), pct(svc, .99), pct(svc, .999), pct(base, .5), pct(base, .99)
            ok = ok and ((s99 < 50 and s999 < 500) or name.startswith("extra"))
            print(f"{name:<44} {s50:>9.2f} ms {s99:>5.2f} ms {s999:>5.2f} ms {b50:>10.2f} ms {b99:>5.2f} ms "
                  f"{s50 / b50:>5.1f}x", flush=True)
            results["queries"][name] = {"service_ms": {"p50": round(s50, 3), "p99": round(s99, 3),
                                                       "p99_9": round(s999, 3), "max": round(max(svc), 3)},
                                        "bare_sql_ms": {"p50": round(b50, 3), "p99": round(b99, 3)},
                                        "samples": samples}
        for name, filters, _ in cases[:2] + cases[3:]:
            sql, args = service.build_query(tenant, filters, None, 50)
            async with conn.transaction(readonly=True):
                await conn.execute("SELECT set_config('app.tenant_id', $1, true)", str(tenant))
                plan = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql, *args)
            shown = [r[0] for r in plan if any(w in r[0] for w in ("Index", "Sort", "Execution Time"))]
            print(f"\nplan, {name}:\n  " + "\n  ".join(shown))
        print(f"\ntargets p99 < 50 ms and p99.9 < 500 ms (first, filtered, deep): {'MET' if ok else 'MISSED'}")
        results["targets_met"] = ok
        return ok
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--samples", type=int, default=2000)
    opts = parser.parse_args()
    server, embedded = server_url()
    name = f"unifocus_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = with_database(server, name)
    try:
        settings = Settings(database_url=url)
        upgrade(url, settings)
        tenant = fill(url, opts.rows, opts.tenants)
        results: dict[str, Any] = {"rows": opts.rows, "tenants": opts.tenants, "days": 90, "queries": {}}
        asyncio.run(measure(app_url(settings, url), tenant, opts.samples, results))
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        out = Path(__file__).resolve().parent / "results" / f"audit-query-{stamp}.json"
        out.write_text(json.dumps({"timestamp": stamp, **results}, indent=2) + "\n")
        print(f"written to {out.relative_to(Path(__file__).resolve().parent.parent)}")
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if embedded is not None:
            embedded[0].cleanup()
            shutil.rmtree(embedded[1], ignore_errors=True)


if __name__ == "__main__":
    main()
