"""`make bench`: punch write throughput of the service against the floor, in one run.

    .venv/bin/python bench/run.py [--duration 20] [--replay-duration 20] [--storm-duration 10]
                                  [--storm-copies 4] [--log-duration 15] [--clients 16]
                                  [--probe-windows 2] [--probe-window 8] [--employees 1000] [--profile]

1. PostgreSQL: DATABASE_URL's server (owner URL), else an embedded one in a temp dir. A
   dedicated database `unifocus_bench_<hex>` is created, migrated (unifocus.db.migrate.upgrade)
   and dropped at the end; a tenant (UTC), a manager and `--employees` employees (deterministic
   ids 00000000-0000-4000-8000-<n>) each with a 09:00-17:00 schedule every day are inserted as
   the owner.
2. pgbench (`bench/pgbench_punch.sql`, as the app role under RLS): set_config + idempotency
   record + punch + audit entry in one transaction, `--clients` clients, `--duration` s. Then
   the same with `bench/pgbench_service.sql`: the service's own statements for one punch.
3. The bare baseline (`bench/baseline_app.py`): uvicorn, 2 workers, the same three inserts per
   POST with asyncpg; loaded by wrk (`bench/punch.lua`) at `--clients` connections.
4. The service: `unifocus serve --workers 2` (scheduler off, rate limits OFF: the default
   600-token bucket per user would throttle one user's load to 10 req/s after a minute; log
   level WARNING: no access lines), loaded by the same wrk script with unique keys, while a
   probe sends GET /health at 20 req/s; then the same keys again (replay); then, with
   `--probe-windows` > 0, short punch windows alternated without and with those probes (do
   health checks interfere with traffic?); then, with
   `--storm-duration` > 0, a retry storm (every key sent `--storm-copies` times at once by
   different connections: statuses, and exactly-once checked in the database); then, with
   `--log-duration` > 0, a fresh run with access logs on (UNIFOCUS_LOG_LEVEL=INFO).
5. A table on stdout and the same figures as JSON in bench/results/punch-<UTC stamp>.json.
   The run exits non-zero (after both) when the retry storm wrote a key more than once.

Writes/s are counted in the database (punch rows added / wrk's duration), so a request that
failed is never counted as a write. Everything runs on this machine: wrk, the probe, the
servers and PostgreSQL share its cores, so compare the ratios, not the absolute figures.
`--profile` also samples both service workers with py-spy during the fresh run and writes
collapsed stacks plus a summary under bench/results/ (see bench/profile_summary.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from prometheus_client.parser import text_string_to_metric_families

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))

from cpu import CpuMeter, MachineShare, command, cpu_model, pids_of, postgres_backends, python_loop_ms  # noqa: E402
from unifocus.audit.verify import verify_url  # noqa: E402
from unifocus.auth.tokens import mint_token  # noqa: E402
from unifocus.db.migrate import upgrade  # noqa: E402
from unifocus.db.urls import app_url, database_name, with_database  # noqa: E402
from unifocus.settings import Settings  # noqa: E402

SECRET = "bench-secret-" + "x" * 40
CHAINS = 8
HISTORY = 30  # decided exceptions per employee seeded before the runs (see seed)
# Seconds of load on each HTTP target before its measured run. 2 s left the service short of
# its steady state: in 6 alternated pairs (a 20 s run after 2 s or 8 s of warm-up, bench/README.md,
# "Fifteenth session") the second measured second still answered 96-99% within 25 ms against
# 98-100% after 8 s, and p99 was 32.0 against 28.9 ms on average.
WARMUP_S = 8
SPAN_DAYS = 300  # days each HTTP phase may punch (punch.lua): 600 punches per employee, ~20x a 20 s run
STORM_DAYS_AGO = 1400  # the retry storm's BENCH_DAY0: days 1400-1699 ago, between the round trips' and the baseline's
PROBE_DAYS_AGO = 3400  # the probe windows' BENCH_DAY0s: 3400, 3700, ... days ago, beyond the gates phase's
VENV_BIN = Path(sys.executable).parent


def emp_id(n: int) -> uuid.UUID:
    return uuid.UUID(f"00000000-0000-4000-8000-{n:012x}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def midnight_days_ago(days: int) -> int:
    d = datetime.now(UTC).date() - timedelta(days=days)
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp())


# --- database --------------------------------------------------------------------------------

def analyze(db: str) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("ANALYZE")


def seed(db: str, employees: int) -> tuple[uuid.UUID, uuid.UUID]:
    """The bench tenant: a manager, and 2 x `employees` employees, each with a 09:00-17:00
    shift every day and a history of decided exceptions. The HTTP loads punch employees 0 to
    employees - 1; pgbench punches the others (its `eoff`), so its punches, on random days and
    times, never land in the windows the service evaluates."""
    tenant, user = uuid.uuid4(), uuid.uuid4()
    start, end = date.today() - timedelta(days=3000), date.today() + timedelta(days=1)
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("INSERT INTO tenants (tenant_id, name, timezone) VALUES (%s, 'Bench Hotel', 'UTC')", (tenant,))
        conn.execute("INSERT INTO users (tenant_id, id, email, role, subject) VALUES (%s, %s, %s, 'manager', %s)",
                     (tenant, user, "bench-manager@example.com", str(user)))
        conn.execute(
            "INSERT INTO employees (tenant_id, id, first_name, last_name, timezone) "
            "SELECT %s, ('00000000-0000-4000-8000-' || lpad(to_hex(n), 12, '0'))::uuid, 'Emp', n::text, 'UTC' "
            "FROM generate_series(0, %s - 1) n", (tenant, 2 * employees))
        conn.execute(
            "INSERT INTO schedules (tenant_id, id, employee_id, name, start_date, end_date) "
            "SELECT tenant_id, gen_random_uuid(), id, 'day', %s, %s FROM employees WHERE tenant_id = %s",
            (start, end, tenant))
        conn.execute(
            "INSERT INTO shifts (tenant_id, id, schedule_id, day_of_week, start_time, end_time) "
            "SELECT s.tenant_id, gen_random_uuid(), s.id, d, '09:00', '17:00' "
            "FROM schedules s CROSS JOIN generate_series(1, 7) d WHERE s.tenant_id = %s", (tenant,))
        # A history of decided exceptions (HISTORY per employee, on days before every window the
        # bench punches), so the planner sees a table of production-like size from the start.
        # Without it the table starts empty, the first plans cached by each connection scan it
        # sequentially, and it grows for up to a minute (autovacuum's naptime) before the next
        # ANALYZE: 129 of the context read's 147 buffer hits in a 20 s run (auto_explain).
        conn.execute(
            "INSERT INTO exceptions (tenant_id, employee_id, type, status, shift_id, shift_date, dedupe_key, "
            "details, resolved_at) SELECT sh.tenant_id, s.employee_id, 'late_arrival', 'approved', sh.id, "
            "%s::date - n, 'history:' || n, '{}'::jsonb, now() FROM schedules s JOIN shifts sh ON sh.schedule_id = "
            "s.id AND sh.day_of_week = 1 CROSS JOIN generate_series(1, %s) n WHERE s.tenant_id = %s",
            (start, HISTORY, tenant))
        conn.execute("ANALYZE")
    return tenant, user


def punch_count(db: str) -> int:
    with psycopg.connect(db, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM punches").fetchone()
        return int(row[0]) if row else 0


# --- processes -------------------------------------------------------------------------------

class Server:
    """A server process we started; stopped by its own pid (then its process group)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], cwd: Path, log_dir: Path, port: int):
        self.name, self.port = name, port
        self.base = f"http://127.0.0.1:{port}"
        self.log_path = log_dir / f"{name}.log"
        self.log = self.log_path.open("wb")
        self.proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def wait_ready(self, path: str, timeout: float = 60) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(self.base + path, timeout=1).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready: {self.log_path.read_text()[-2000:]}")

    def workers(self) -> list[int]:
        """Worker processes: children of the server process (multiprocessing spawn), not the
        resource tracker."""
        out = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) != self.proc.pid:
                    continue
                cmd = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ")
            except (OSError, IndexError, ValueError):
                continue
            if b"resource_tracker" not in cmd:
                out.append(int(stat.parent.name))
        return sorted(out)

    def peak_rss_mb(self) -> list[float]:
        peaks = []
        for pid in self.workers():
            try:
                text = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            m = re.search(r"VmHWM:\s+(\d+) kB", text)
            if m:
                peaks.append(round(int(m.group(1)) / 1024, 1))
        return peaks

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(25)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.log.close()


def warm_up(base: str, base_env: dict[str, str], prefix: str, day0: int, seconds: int, clients: int,
            work: Path) -> None:
    """`seconds` of the punch load on days of its own (BENCH_DAY0 `day0`, epoch seconds, and
    BENCH_SPAN's days before it) ahead of a measured run; none for 0. bench/ab.py and
    bench/alert_calibration.py warm their runs with it too."""
    if seconds > 0:
        run_wrk(base, {**base_env, "BENCH_PREFIX": prefix, "BENCH_DAY0": str(day0)}, seconds, clients,
                work / f"{prefix}.json")


def run_wrk(base: str, env: dict[str, str], duration: int, clients: int, out: Path) -> dict[str, Any]:
    threads = 2
    wenv = {**os.environ, **env, "BENCH_THREADS": str(threads), "BENCH_OUT": str(out)}
    subprocess.run(["wrk", f"-t{threads}", f"-c{clients}", f"-d{duration}s", "--timeout", "10s",
                    "-s", str(HERE / "punch.lua"), base], env=wenv, check=True, capture_output=True)
    result: dict[str, Any] = json.loads(out.read_text())
    result["duration_s"] = result["duration_us"] / 1e6
    result["rps"] = result["requests"] / result["duration_s"]
    return result


def storm_tally(db: str, tenant: uuid.UUID, prefix: str, day0: int, counts: Path, copies: int,
                employees: int) -> dict[str, Any]:
    """Exactly-once after a retry storm (run once the service has stopped, so that no request
    it accepted is still running): the distinct keys wrk sent (per thread, ceil(requests issued
    / copies), from the counts punch.lua's done() wrote), the punch rows of the HTTP loads'
    employees on the storm's days (no other phase punches them; pgbench punches the other
    employees on random days), groups of identical (employee, ts, type) rows among them
    (every logical request's body is unique, so any such group is a key written twice) and the
    idempotency records of the storm's keys."""
    issued = [int(line) for line in counts.read_text().split()]
    keys = sum(-(-n // copies) for n in issued)
    lo = datetime.fromtimestamp(day0 - (SPAN_DAYS - 1) * 86400, UTC)
    hi = datetime.fromtimestamp(day0 + 86400, UTC)
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, false)", (str(tenant),))  # RLS, for a non-superuser
        row = conn.execute("SELECT count(*) FROM punches WHERE tenant_id = %s AND ts >= %s AND ts < %s "
                           "AND employee_id < %s", (tenant, lo, hi, emp_id(employees))).fetchone()
        rows = int(row[0]) if row else 0
        row = conn.execute("SELECT count(*), coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM punches "
                           "WHERE tenant_id = %s AND ts >= %s AND ts < %s AND employee_id < %s "
                           "GROUP BY employee_id, ts, type HAVING count(*) > 1) d",
                           (tenant, lo, hi, emp_id(employees))).fetchone()
        dup_groups, dup_rows = (int(row[0]), int(row[1])) if row else (0, 0)
        row = conn.execute("SELECT count(*), count(*) FILTER (WHERE status_code = 201) FROM idempotency_records "
                           "WHERE tenant_id = %s AND key LIKE %s", (tenant, prefix + "-%")).fetchone()
        records, records_201 = (int(row[0]), int(row[1])) if row else (0, 0)
    return {"requests_issued": sum(issued), "keys_sent": keys, "punch_rows": rows,
            "duplicate_groups": dup_groups, "duplicate_rows": dup_rows, "idempotency_records": records,
            "idempotency_records_201": records_201,
            "exactly_once": dup_groups == 0 and rows <= keys and rows == records_201}


def metric_families(base: str) -> list[Any]:
    """The service's `/metrics` (every worker's series), parsed."""
    return list(text_string_to_metric_families(httpx.get(f"{base}/metrics", timeout=10).text))


def punches_within(base: str, bound: str = "0.025") -> tuple[float, float]:
    """From the service's own request histogram (all workers, `/metrics`): POST /api/punches
    answered within `bound` seconds, and all answered. It times a request from the app's first
    middleware to its last byte: not the wait in the socket before the worker reads it, nor
    the kernel's and wrk's part, which wrk's latencies include."""
    within = answered = 0.0
    bound_seen = False
    for family in metric_families(base):
        if family.name != "unifocus_http_request_duration_seconds":
            continue
        for sample in family.samples:
            if sample.labels.get("route") != "/api/punches" or sample.labels.get("method") != "POST":
                continue
            if sample.name.endswith("_bucket") and sample.labels.get("le") == bound:
                within += sample.value
                bound_seen = True
            elif sample.name.endswith("_count"):
                answered += sample.value
    if answered and not bound_seen:
        sys.exit(f"the request histogram has no bucket at {bound} s (observability/metrics.py HTTP_BUCKETS)")
    return within, answered


class HealthProbe(threading.Thread):
    """GET `path` at `rate` req/s (one keep-alive connection) while the load runs."""

    def __init__(self, base: str, path: str = "/health", rate: float = 20.0) -> None:
        super().__init__(daemon=True)
        self.base, self.path, self.period = base, path, 1.0 / rate
        self.latencies: list[float] = []
        self.failures = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.base, timeout=5) as client:
            nxt = time.perf_counter()
            while not self.stopping.is_set():
                t0 = time.perf_counter()
                try:
                    ok = client.get(self.path).status_code == 200
                except httpx.HTTPError:
                    ok = False
                if ok:
                    self.latencies.append((time.perf_counter() - t0) * 1000)
                else:
                    self.failures += 1
                nxt += self.period
                time.sleep(max(0.0, nxt - time.perf_counter()))

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies)
        return {"samples": len(lat), "failures": self.failures, "p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99),
                "max_ms": round(lat[-1], 2) if lat else None}


def health_probes(base: str) -> list[HealthProbe]:
    """The probes of a punch load, started: GET /health at 20/s and, as a load balancer and the
    kubelet ask it but more often (5/s, for enough samples), GET /ready, which reads the
    database and so is what a punch load could slow down."""
    probes = [HealthProbe(base), HealthProbe(base, "/ready", rate=5.0)]
    for probe in probes:
        probe.start()
    return probes


def stop_probes(probes: list[HealthProbe]) -> None:
    """Stop the probes and wait for their threads: their summaries are final after this."""
    for probe in probes:
        probe.stopping.set()
        probe.join()


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    return round(values[min(len(values) - 1, int(len(values) * p / 100))], 2)


def code_version(where: Path = HERE) -> str:
    """The commit the run measured (of the checkout holding `where`), `+dirty` when the working
    tree had changes (a figure in the README must name the code it came from); `unknown`
    outside a git checkout."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=where, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=where,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def run_pgbench(db: str, url: str, script: Path, tenant: uuid.UUID, user: uuid.UUID, employees: int, clients: int,
                duration: int) -> dict[str, Any]:
    """pgbench with `script` on `url`: its figures, the punches it wrote (counted on `db`) and
    the CPU per write of the database's backends and of pgbench."""
    before = punch_count(db)
    meters = Meters(db, {"pgbench": command(b"pgbench")})
    proc = subprocess.run(
        ["pgbench", "-n", "-M", "prepared", "-c", str(clients), "-j", "2", "-T", str(duration), "-f", str(script),
         "-D", f"tenant={tenant}", "-D", f"user={user}", "-D", f"nemp={employees}", "-D", f"eoff={employees}",
         "-D", f"chains={CHAINS}", url],
        capture_output=True, text=True, check=False)
    share = meters.machine_share()
    if proc.returncode != 0:
        raise RuntimeError(f"pgbench failed: {proc.stderr[-2000:]}")
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", proc.stdout)
    lat = re.search(r"latency average = ([\d.]+) ms", proc.stdout)
    failed = re.search(r"number of failed transactions: (\d+)", proc.stdout)
    writes = punch_count(db) - before
    return {"tps": float(tps.group(1)) if tps else 0.0, "latency_avg_ms": float(lat.group(1)) if lat else None,
            "failed": int(failed.group(1)) if failed else 0, "writes": writes,
            "cpu_ms_per_write": meters.per_write(writes), "machine_share": share}


class Meters:
    """CpuMeters for one load: the bench database's PostgreSQL backends, plus `others`."""

    def __init__(self, db: str, others: dict[str, Any]) -> None:
        database = database_name(db)
        self.meters = {"postgres": CpuMeter(postgres_backends(database)),
                       **{k: CpuMeter(match) for k, match in others.items()}}
        for m in self.meters.values():
            m.start()
        self.machine = MachineShare()

    def machine_share(self) -> dict[str, float]:
        """The whole machine's busy and stolen shares since the start: called as the load ends,
        before the counting that follows it."""
        return self.machine.stop()

    def per_write(self, writes: int) -> dict[str, float | None]:
        """CPU milliseconds per write of each group (None: no such process on this machine)."""
        out: dict[str, float | None] = {}
        for name, meter in self.meters.items():
            seconds = meter.stop()
            out[name] = round(seconds * 1000 / writes, 3) if seconds is not None and writes else None
        return out


# --- round trips of one punch ----------------------------------------------------------------

async def count_round_trips(settings: Settings, token: str) -> dict[str, list[str]]:
    """Drive punches through the real app in-process, recording every statement the asyncpg
    connection sends for two of them (statements are cached by then: one call is one round
    trip): `ordinary`, a clock_in of an employee who clocked in and out the day before (every
    working day's punch), and `after_quiet_days`, an employee's first clock_in after two days
    without one (the window then holds no clock_in or clock_out, and one more read looks for a
    session left open before it: engine.opened_before_needed)."""
    import asyncpg

    from unifocus.app import create_app

    seen: dict[str, list[str]] = {"ordinary": [], "after_quiet_days": []}
    recording: list[str] = []
    originals = {}

    def wrap(name: str) -> None:
        original = getattr(asyncpg.connection.Connection, name)
        originals[name] = original

        async def method(self: Any, query: str, *args: Any, **kw: Any) -> Any:
            if recording:
                seen[recording[0]].append(" ".join(query.split())[:90])
            return await original(self, query, *args, **kw)

        setattr(asyncpg.connection.Connection, name, method)

    for name in ("execute", "fetch", "fetchrow", "fetchval", "executemany"):
        wrap(name)
    try:
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                day0 = midnight_days_ago(1200)

                async def punch(employee: int, kind: str, day: int, hour: int) -> None:
                    ts = datetime.fromtimestamp(day0 + day * 86400 + hour * 3600, UTC).isoformat()
                    r = await client.post("/api/punches", json={"employeeId": str(emp_id(employee)), "type": kind,
                                                                "timestamp": ts},
                                          headers={"Authorization": f"Bearer {token}",
                                                   "Idempotency-Key": f"rt-{uuid.uuid4()}"})
                    if r.status_code != 201:
                        raise RuntimeError(f"round-trip punch failed: {r.status_code} {r.text}")

                await punch(0, "clock_in", 0, 9)  # warms the pool and the statement caches
                await punch(1, "clock_in", 0, 9)
                await punch(1, "clock_out", 0, 17)
                recording.append("ordinary")
                await punch(1, "clock_in", 1, 9)
                recording[0] = "after_quiet_days"
                await punch(2, "clock_in", 1, 9)
    finally:
        for name, original in originals.items():
            setattr(asyncpg.connection.Connection, name, original)
    return seen


# --- the run ---------------------------------------------------------------------------------

@contextmanager
def bench_database(prefix: str, keep: bool) -> Iterator[tuple[str, Path, list[Server]]]:
    """A dedicated `unifocus_bench_<hex>` database on DATABASE_URL's server (else on an embedded
    one), a work directory named `prefix...`, and the list of servers a run starts in them. At
    the end, those servers are stopped (last started first), the database dropped (unless
    `keep`), the embedded server stopped and the directory removed."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    embedded = None
    server_url = os.environ.get("DATABASE_URL")
    if not server_url:
        from unifocus.db.embedded import start_embedded

        server_url, embedded = start_embedded(work)
    name = f"unifocus_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    started: list[Server] = []
    try:
        yield with_database(server_url, name), work, started
    finally:
        for s in reversed(started):
            s.stop()
        if not keep:
            with psycopg.connect(server_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if embedded is not None:
            embedded.cleanup()
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=int, default=20, help="seconds of pgbench and of each fresh HTTP run")
    ap.add_argument("--replay-duration", type=int, default=20)
    ap.add_argument("--storm-duration", type=int, default=10,
                    help="retry storm: every key sent --storm-copies times at once; 0 skips it")
    ap.add_argument("--storm-copies", type=int, default=4, help="copies of each key in the retry storm (>= 2)")
    ap.add_argument("--log-duration", type=int, default=15, help="fresh run with access logs on; 0 skips it")
    ap.add_argument("--gates-duration", type=int, default=15,
                    help="punch load during `unifocus gate verify --create`; 0 skips it")
    ap.add_argument("--probe-windows", type=int, default=2,
                    help="pairs of punch windows without and with the health probes; 0 skips them")
    ap.add_argument("--probe-window", type=int, default=8, help="seconds of each such window")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--employees", type=int, default=1000)
    ap.add_argument("--warmup", type=int, default=WARMUP_S,
                    help="seconds of wrk on each HTTP target (its own keys and days) before its measured run")
    ap.add_argument("--profile", action="store_true", help="py-spy both service workers during the fresh run")
    ap.add_argument("--keep-db", action="store_true")
    ap.add_argument("--order", choices=("forward", "backward"), default="forward",
                    help="each employee's days oldest first, as a clock sends them (default), or newest first "
                         "(every clock_in then raises a missed_punch its clock_out withdraws; punch.lua)")
    args = ap.parse_args()
    if args.storm_copies < 2:
        ap.error("--storm-copies must be at least 2")
    for tool in ("wrk", "pgbench"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed (apt-get install wrk postgresql-client)")

    with bench_database("unifocus-bench-", args.keep_db) as (db, work, started):
        results = bench(args, db, work, started)
    report(results)
    if not results["audit_after_load"]["intact"]:
        sys.exit("audit chains after the load: NOT intact: " + "; ".join(results["audit_after_load"]["bad"]))
    gates = results["gates_under_load"]
    if gates is not None and not gates["passed"]:
        sys.exit(f"gates under load: NOT all passed: {gates['gates']} {gates['output_tail']}")
    storm = results["storm"]
    if storm is not None and not storm["exactly_once"]:
        sys.exit(f"retry storm: NOT exactly-once: {storm['keys_sent']} keys sent, {storm['punch_rows']} punch rows, "
                 f"{storm['idempotency_records_201']} records answered 201, {storm['duplicate_groups']} duplicated "
                 "(employee, ts, type)")


def bench(args: argparse.Namespace, db: str, work: Path, started: list[Server]) -> dict[str, Any]:
    t_start = time.time()
    settings = Settings(database_url=db, jwt_secret=SECRET, data_dir=work / "data", scheduler_enabled=False,
                        rate_limit_enabled=False, log_level="WARNING")
    upgrade(db, settings)
    tenant, user = seed(db, args.employees)
    runtime = app_url(settings, db)
    token = mint_token(settings, tenant, str(user), ttl_minutes=120)
    print(f"bench database ready ({args.employees} employees); counting round trips ...", flush=True)
    statements = asyncio.run(count_round_trips(settings, token))
    loop_ms = python_loop_ms()

    print(f"pgbench: {args.clients} clients, {args.duration} s ...", flush=True)
    pgb = run_pgbench(db, runtime, HERE / "pgbench_punch.sql", tenant, user, args.employees, args.clients,
                      args.duration)
    print(f"pgbench, the service's own statements: {args.clients} clients, {args.duration} s ...", flush=True)
    pgs = run_pgbench(db, runtime, HERE / "pgbench_service.sql", tenant, user, args.employees, args.clients,
                      args.duration)

    # each phase punches its own SPAN_DAYS days ending on its BENCH_DAY0; phases are >= 99 days apart, far
    # outside any punch's 72 h evaluation window
    base_env = {"BENCH_TOKEN": token, "BENCH_EMPLOYEES": str(args.employees), "BENCH_COUNTS": str(work / "counts"),
                "BENCH_SPAN": str(SPAN_DAYS), "BENCH_ORDER": args.order}

    # the bare baseline: uvicorn, 2 workers, three inserts
    port = free_port()
    env = {**os.environ, "BENCH_DB_URL": runtime, "BENCH_TENANT": str(tenant), "BENCH_USER": str(user)}
    baseline = Server("baseline", [str(VENV_BIN / "uvicorn"), "baseline_app:app", "--app-dir", str(HERE),
                                   "--workers", "2", "--port", str(port), "--loop", "uvloop", "--http", "httptools",
                                   "--no-access-log", "--log-level", "warning"], env, HERE, work, port)
    started.append(baseline)
    baseline.wait_ready("/")
    print(f"baseline: wrk {args.clients} connections, {args.duration} s ...", flush=True)
    warm_up(baseline.base, base_env, "bwarm", midnight_days_ago(2500), args.warmup, args.clients, work)
    before = punch_count(db)
    meters = Meters(db, {"http_workers": pids_of({baseline.proc.pid, *baseline.workers()}), "wrk": command(b"wrk")})
    base = run_wrk(baseline.base, {**base_env, "BENCH_PREFIX": "base", "BENCH_DAY0": str(midnight_days_ago(2000))},
                   args.duration, args.clients, work / "base.json")
    base["machine_share"] = meters.machine_share()
    base["writes"] = punch_count(db) - before
    base["cpu_ms_per_write"] = meters.per_write(base["writes"])
    base["writes_per_s"] = base["writes"] / base["duration_s"]
    base["peak_rss_mb"] = baseline.peak_rss_mb()
    baseline.stop()
    started.remove(baseline)

    service, svc = start_service(work, db, "WARNING", started)
    warm_up(service.base, base_env, "swarm", midnight_days_ago(800), args.warmup, args.clients, work)
    # pgbench and the baseline filled `punches` after seed()'s ANALYZE: without fresh statistics
    # (which autovacuum keeps on a live system, but not within this two-minute database) the
    # planner reads the employee's window through the tenant-wide time index, ~30x slower.
    analyze(db)
    print(f"service: wrk {args.clients} connections, {args.duration} s (+ /health and /ready probes) ...",
          flush=True)
    profilers = start_profilers(service, args.duration, work) if args.profile else []
    probes = health_probes(service.base)
    before = punch_count(db)
    fresh_env = {**base_env, "BENCH_PREFIX": f"svc{uuid.uuid4().hex[:6]}", "BENCH_DAY0": str(midnight_days_ago(2))}
    meters = Meters(db, {"http_workers": pids_of({service.proc.pid, *service.workers()}), "wrk": command(b"wrk")})
    hist_before = punches_within(service.base)
    fresh = run_wrk(service.base, fresh_env, args.duration, args.clients, work / "fresh.json")
    fresh["machine_share"] = meters.machine_share()
    hist_after = punches_within(service.base)
    stop_probes(probes)
    fresh["writes"] = punch_count(db) - before
    fresh["cpu_ms_per_write"] = meters.per_write(fresh["writes"])
    fresh["writes_per_s"] = fresh["writes"] / fresh["duration_s"]
    fresh["health"], fresh["ready"] = (probe.summary() for probe in probes)
    answered = hist_after[1] - hist_before[1]
    fresh["in_app_within_25ms"] = (hist_after[0] - hist_before[0]) / answered if answered else None
    for p in profilers:
        p.wait(args.duration + 30)

    print(f"service: replay of the same keys, {args.replay_duration} s ...", flush=True)
    before = punch_count(db)
    replay = run_wrk(service.base, {**fresh_env, "BENCH_REPLAY": "1"}, args.replay_duration, args.clients,
                     work / "replay.json")
    replay["new_writes"] = punch_count(db) - before  # keys in flight when the fresh run stopped
    svc["peak_rss_mb"] = service.peak_rss_mb()  # before the storm: the figure of the runs before it

    interference: dict[str, Any] | None = None
    if args.probe_windows > 0:
        interference = probe_interference(args, db, work, service, base_env)

    storm: dict[str, Any] | None = None
    if args.storm_duration > 0:
        print(f"service: retry storm, each key {args.storm_copies} times at once, {args.storm_duration} s ...",
              flush=True)
        storm_prefix, storm_day0 = f"stm{uuid.uuid4().hex[:6]}", midnight_days_ago(STORM_DAYS_AGO)
        before = punch_count(db)
        storm = run_wrk(service.base, {**base_env, "BENCH_PREFIX": storm_prefix, "BENCH_DAY0": str(storm_day0),
                                       "BENCH_STORM": str(args.storm_copies), "BENCH_STATUS": "1",
                                       "BENCH_COUNTS": str(work / "storm-counts")},
                        args.storm_duration, args.clients, work / "storm.json")
    service.stop()  # graceful: every request it accepted has finished before the storm is counted
    started.remove(service)
    if storm is not None:
        storm["rows_added"] = punch_count(db) - before
        storm.update(storm_tally(db, tenant, storm_prefix, storm_day0, work / "storm-counts", args.storm_copies,
                                 args.employees))

    logged: dict[str, Any] | None = None
    if args.log_duration > 0:
        service, _ = start_service(work, db, "INFO", started)
        # days 1700-1999, between the storm's and the base's
        warm_up(service.base, base_env, "lwarm", midnight_days_ago(1700), args.warmup, args.clients, work)
        print(f"service with access logs: wrk {args.clients} connections, {args.log_duration} s ...", flush=True)
        before = punch_count(db)
        logged = run_wrk(service.base, {**base_env, "BENCH_PREFIX": f"log{uuid.uuid4().hex[:6]}",
                                        "BENCH_DAY0": str(midnight_days_ago(400))},
                         args.log_duration, args.clients, work / "logged.json")
        logged["writes"] = punch_count(db) - before
        logged["writes_per_s"] = logged["writes"] / logged["duration_s"]
        service.stop()
        started.remove(service)

    gates: dict[str, Any] | None = None
    if args.gates_duration > 0:
        gates = gates_under_load(args, db, work, started, base_env)

    # The audit gate after the load: every entry the phases wrote (the service's, the
    # baseline's and pgbench's, all through the chain trigger) still hashes and links.
    print("audit chains after the load: unifocus audit verify ...", flush=True)
    audit_started = time.perf_counter()
    audited = asyncio.run(verify_url(db, tenant))
    audit = {"entries": audited.entries, "chains": len(audited.heads), "intact": audited.ok,
             "bad": [b.describe() for b in audited.bad], "seconds": round(time.perf_counter() - audit_started, 1)}

    if args.profile:
        from profile_summary import summarise

        summary = summarise([HERE / "results" / f"profile-worker{i}.txt" for i in range(len(profilers))])
        (HERE / "results" / "profile-summary.txt").write_text(summary)
        print(summary)

    svc_w, base_w, pgb_w = fresh["writes_per_s"], base["writes_per_s"], pgb["tps"]
    return {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "code": code_version(),
        # which state of the machine the run met: its CPU, one core's speed for pure Python
        # before any load (cpu.python_loop_ms: lower is faster), and during each fresh run the
        # whole machine's busy and hypervisor-stolen shares (cpu.MachineShare)
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0], "cpu_model": cpu_model(),
                    "python_loop_ms": loop_ms,
                    "during_load": {"pgbench": pgb["machine_share"], "pgbench_service_sql": pgs["machine_share"],
                                    "baseline": base["machine_share"], "service": fresh["machine_share"]}},
        "params": {"clients": args.clients, "wrk_threads": 2, "service_workers": 2, "baseline_workers": 2,
                   "employees": args.employees, "warmup_s": args.warmup, "duration_s": args.duration,
                   "replay_duration_s": args.replay_duration, "storm_duration_s": args.storm_duration,
                   "storm_copies": args.storm_copies, "rate_limit_enabled": False,
                   "service_log_level": "WARNING", "audit_chains": CHAINS, "order": args.order},
        "service_writes_per_s": round(svc_w, 1),
        "baseline_writes_per_s": round(base_w, 1),
        "pgbench_writes_per_s": round(pgb_w, 1),
        "punch_vs_pgbench_ratio": round(svc_w / pgb_w, 3) if pgb_w else None,
        "punch_vs_baseline_ratio": round(svc_w / base_w, 3) if base_w else None,
        "baseline_vs_pgbench_ratio": round(base_w / pgb_w, 3) if pgb_w else None,
        # CPU ms per write, by process group, during each fresh run (bench/cpu.py)
        "cpu_ms_per_write": {"pgbench": pgb["cpu_ms_per_write"], "pgbench_service_sql": pgs["cpu_ms_per_write"],
                             "baseline": base["cpu_ms_per_write"], "service": fresh["cpu_ms_per_write"]},
        # the service's statements run by pgbench (pgbench_service.sql): its SQL without Python
        "pgbench_service_sql_writes_per_s": round(pgs["tps"], 1),
        "service_latency_ms": {"p50": fresh["p50_ms"], "p90": fresh["p90_ms"], "p99": fresh["p99_ms"],
                               "max": fresh["max_ms"]},
        # share of the punches the service's own histogram timed at <= 25 ms (>= 0.99: its p99 <= 25 ms)
        "service_in_app_share_within_25ms": (round(fresh["in_app_within_25ms"], 4)
                                             if fresh["in_app_within_25ms"] is not None else None),
        "baseline_latency_ms": {"p50": base["p50_ms"], "p99": base["p99_ms"]},
        "pgbench_latency_avg_ms": pgb["latency_avg_ms"],
        "replay_per_s": round(replay["rps"], 1),
        "replay_latency_ms": {"p50": replay["p50_ms"], "p99": replay["p99_ms"]},
        "replay_new_writes": replay["new_writes"],
        # retry storm: every key sent `copies` times at once; exactly_once false fails the run
        "storm": storm_summary(storm, args.storm_copies),
        "health_during_load_ms": fresh["health"],
        # punch windows alternated with and without those probes (the gate: health checks do not
        # interfere with traffic)
        "probe_interference": interference,
        "ready_during_load_ms": fresh["ready"],
        # `unifocus audit verify` of the bench tenant after every phase; intact false fails the run
        "audit_after_load": audit,
        "service_peak_rss_mb_per_worker": svc["peak_rss_mb"],
        "baseline_peak_rss_mb_per_worker": base["peak_rss_mb"],
        # `unifocus gate verify --create` (the five gates, two new tenants) while wrk punches;
        # passed false fails the run
        "gates_under_load": gates,
        "service_with_access_log_writes_per_s": round(logged["writes_per_s"], 1) if logged else None,
        "service_with_access_log_latency_ms": {"p50": logged["p50_ms"], "p99": logged["p99_ms"]} if logged else None,
        "errors": {"service_non_2xx": fresh["non_2xx"], "baseline_non_2xx": base["non_2xx"],
                   "replay_non_2xx": replay["non_2xx"], "pgbench_failed": pgb["failed"] + pgs["failed"],
                   "service_socket_errors": fresh["errors_connect"] + fresh["errors_read"] + fresh["errors_timeout"]},
        "round_trips_per_punch": len(statements["ordinary"]),
        "round_trip_statements": statements["ordinary"],
        "round_trips_first_punch_after_quiet_days": len(statements["after_quiet_days"]),
        "wall_seconds": round(time.time() - t_start, 1),
    }


def probe_interference(args: argparse.Namespace, db: str, work: Path, service: Server,
                       base_env: dict[str, str]) -> dict[str, Any]:
    """Punch windows with and without the health probes, alternated on the warm service.

    The gate asks that health checks not interfere with traffic. The probes here are the fresh
    run's (/health at 20/s, /ready at 5/s: several hundred times what a kubelet and a load
    balancer send at one probe per 30 s). Windows go without, with, with, without, ... (ABBA)
    so that a drift of the machine's speed during the phase falls on both sides alike.
    """
    print(f"service: punch windows with and without probes, {2 * args.probe_windows} x {args.probe_window} s ...",
          flush=True)
    sides: dict[str, list[dict[str, Any]]] = {"without": [], "with": []}
    order = ["with" if i % 4 in (1, 2) else "without" for i in range(2 * args.probe_windows)]
    for i, side in enumerate(order):
        probes = health_probes(service.base) if side == "with" else []
        before = punch_count(db)
        run = run_wrk(service.base, {**base_env, "BENCH_PREFIX": f"prb{i}{uuid.uuid4().hex[:6]}",
                                     "BENCH_DAY0": str(midnight_days_ago(PROBE_DAYS_AGO + SPAN_DAYS * i))},
                      args.probe_window, args.clients, work / f"probe{i}.json")
        stop_probes(probes)
        sides[side].append({"writes_per_s": round((punch_count(db) - before) / run["duration_s"], 1),
                            "p99_ms": run["p99_ms"], "non_2xx": run["non_2xx"],
                            "probe_failures": sum(p.failures for p in probes)})

    def mean(side: str, key: str) -> float:
        return round(sum(w[key] for w in sides[side]) / len(sides[side]), 1)

    return {"windows": len(order), "window_s": args.probe_window, "order": order, **sides,
            "writes_per_s": {"with": mean("with", "writes_per_s"), "without": mean("without", "writes_per_s")},
            "p99_ms": {"with": mean("with", "p99_ms"), "without": mean("without", "p99_ms")},
            "with_vs_without": round(mean("with", "writes_per_s") / mean("without", "writes_per_s"), 3)}


def interference_rows(pi: dict[str, Any] | None) -> list[tuple[str, Any]]:
    if pi is None:
        return []
    w, p = pi["writes_per_s"], pi["p99_ms"]
    return [("punch writes/s with / without probes (alternated windows)",
             f"{w['with']} / {w['without']} = {pi['with_vs_without']} ({pi['windows']} x {pi['window_s']} s)"),
            ("... p99 with / without probes (ms)", f"{p['with']} / {p['without']}")]


GATES_DAYS_AGO = 3000  # the gates phase's BENCH_DAY0: days 3000-3299 ago, beyond every other phase's
GATE_ROW = re.compile(r"^(preflight|readiness|idempotency|tenancy|audit|alerts/monitoring)\s+(PASS|FAIL|SKIP)\b")


def gates_under_load(args: argparse.Namespace, db: str, work: Path, started: list[Server],
                     base_env: dict[str, str]) -> dict[str, Any]:
    """The readiness gate's own check, `unifocus gate verify --create` (two new tenants, every
    gate: readiness, idempotency, tenancy, audit, alerts/monitoring), run against the service
    while wrk sends it punches at the usual 16 connections: the gates hold under load, not
    only on a quiet server. Started a second into the load, which lasts `--gates-duration`."""
    service, _ = start_service(work, db, "WARNING", started)
    print(f"service: unifocus gate verify during a punch load, {args.gates_duration} s ...", flush=True)
    env = unifocus_env(db, work / "gate")
    before = punch_count(db)
    load: dict[str, Any] = {}
    loader = threading.Thread(target=lambda: load.update(run_wrk(
        service.base, {**base_env, "BENCH_PREFIX": f"gate{uuid.uuid4().hex[:6]}",
                       "BENCH_DAY0": str(midnight_days_ago(GATES_DAYS_AGO))},
        args.gates_duration, args.clients, work / "gates.json")))
    loader.start()
    time.sleep(1)
    started_at = time.monotonic()
    proc = subprocess.run([str(VENV_BIN / "unifocus"), "gate", "verify", service.base, "--create"],
                          env=env, capture_output=True, text=True, check=False, timeout=300)
    seconds = time.monotonic() - started_at
    loader.join()
    service.stop()
    started.remove(service)
    rows = {m.group(1): m.group(2) for m in map(GATE_ROW.match, proc.stdout.splitlines()) if m}
    writes = punch_count(db) - before
    return {"passed": proc.returncode == 0 and bool(rows) and set(rows.values()) == {"PASS"}, "gates": rows,
            "seconds": round(seconds, 1), "within_load": seconds + 1 < args.gates_duration,
            "punch_writes_per_s": round(writes / load["duration_s"], 1) if load.get("duration_s") else None,
            "punch_p99_ms": load.get("p99_ms"), "output_tail": proc.stdout.splitlines()[-3:]}


def gate_rows(g: dict[str, Any] | None) -> list[tuple[str, Any]]:
    if g is None:
        return []
    verdicts = ", ".join(f"{name} {result}" for name, result in g["gates"].items()) or "no table"
    return [("gate verify during a punch load", f"{'PASSED' if g['passed'] else 'FAILED'}: {verdicts}; {g['seconds']} s"
             f"{'' if g['within_load'] else ' (outlasted the load)'}, {g['punch_writes_per_s']} punches/s, "
             f"punch p99 {g['punch_p99_ms']} ms")]


def storm_summary(storm: dict[str, Any] | None, copies: int) -> dict[str, Any] | None:
    if storm is None:
        return None
    # a replay answers the original's status, 201 for a punch, with Idempotent-Replayed: true
    statuses: dict[str, int] = dict(storm.get("statuses", {}))
    named = {"first_writes_201": statuses.pop("201", 0), "replays_201": statuses.pop("201_replayed", 0),
             "in_flight_409": statuses.pop("409", 0)}
    return {
        "copies": copies,
        "responses_per_s": round(storm["rps"], 1),
        # other: "<status>" or "<status>_replayed" -> count (any 200, 422, 5xx, a replayed 409, ...)
        "statuses": {**named, "other": statuses},
        "latency_ms": {"p50": storm["p50_ms"], "p99": storm["p99_ms"], "max": storm["max_ms"]},
        "socket_errors": storm["errors_connect"] + storm["errors_read"] + storm["errors_write"]
        + storm["errors_timeout"],
        **{k: storm[k] for k in ("requests_issued", "keys_sent", "rows_added", "punch_rows", "duplicate_groups",
                                 "duplicate_rows", "idempotency_records", "idempotency_records_201",
                                 "exactly_once")},
    }


def unifocus_env(db: str, data: Path) -> dict[str, str]:
    """The environment of a `unifocus` command on the bench database: its owner URL, the
    bench's token secret, a data directory of its own, and none of the caller's app URL,
    metrics directory or Redis."""
    env = {**os.environ, "DATABASE_URL": db, "UNIFOCUS_JWT_SECRET": SECRET, "UNIFOCUS_DATA_DIR": str(data)}
    for var in ("UNIFOCUS_APP_DATABASE_URL", "PROMETHEUS_MULTIPROC_DIR", "REDIS_URL"):
        env.pop(var, None)
    return env


def start_service(work: Path, db: str, log_level: str, started: list[Server],
                  extra_env: dict[str, str] | None = None) -> tuple[Server, dict[str, Any]]:
    """`unifocus serve --workers 2` on `db` as the bench runs it (`extra_env`: bench/ab.py's
    variants), ready when this returns."""
    port = free_port()
    env = {**unifocus_env(db, work / f"serve-{log_level.lower()}"), "UNIFOCUS_SCHEDULER_ENABLED": "false",
           "UNIFOCUS_RATE_LIMIT_ENABLED": "false", "UNIFOCUS_LOG_LEVEL": log_level,
           "UNIFOCUS_AUDIT_CHAINS": str(CHAINS), **(extra_env or {})}
    service = Server(f"service-{log_level.lower()}", [str(VENV_BIN / "unifocus"), "serve", "--workers", "2",
                                                      "--port", str(port)], env, ROOT, work, port)
    started.append(service)
    service.wait_ready("/ready")
    return service, {}


def start_profilers(service: Server, duration: int, work: Path) -> list[subprocess.Popen[bytes]]:
    spy = VENV_BIN / "py-spy"
    if not spy.exists():
        sys.exit("--profile needs py-spy: .venv/bin/pip install py-spy")
    (HERE / "results").mkdir(exist_ok=True)
    procs = []
    for i, pid in enumerate(service.workers()):
        out = HERE / "results" / f"profile-worker{i}.txt"
        procs.append(subprocess.Popen(
            [str(spy), "record", "--pid", str(pid), "--duration", str(duration), "--rate", "200", "--format", "raw",
             "--nonblocking", "--output", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    return procs


def cpu(r: dict[str, Any], run: str, other: str) -> str:
    figures = r["cpu_ms_per_write"][run]
    return " / ".join("-" if figures.get(k) is None else f"{figures[k]:.2f}" for k in ("postgres", other))


def storm_rows(st: dict[str, Any] | None) -> list[tuple[str, Any]]:
    if st is None:
        return [("retry storm", "skipped")]
    s = st["statuses"]
    other = ", ".join(f"{k}: {v}" for k, v in sorted(s["other"].items())) or "none"
    verdict = "OK" if st["exactly_once"] else "FAILED: not exactly-once"
    return [
        (f"retry storm ({st['copies']} copies per key) responses/s", st["responses_per_s"]),
        ("retry storm: 201 first / 201 replayed / 409 in flight / other",
         f"{s['first_writes_201']} / {s['replays_201']} / {s['in_flight_409']} / {other}"),
        ("retry storm latency p50 / p99 (ms)", f"{st['latency_ms']['p50']:.1f} / {st['latency_ms']['p99']:.1f}"),
        ("retry storm exactly-once: keys / punch rows / records 201",
         f"{st['keys_sent']} / {st['punch_rows']} / {st['idempotency_records_201']}, "
         f"{st['duplicate_groups']} duplicated (employee, ts, type): {verdict}"),
    ]


def report(r: dict[str, Any]) -> None:
    def f(v: Any) -> str:
        return "-" if v is None else str(v)

    h, rd = r["health_during_load_ms"], r["ready_during_load_ms"]
    rows = [
        ("punch writes/s: service (2 workers)", r["service_writes_per_s"]),
        ("punch writes/s: bare baseline (2 workers)", r["baseline_writes_per_s"]),
        ("punch writes/s: pgbench (SQL only)", r["pgbench_writes_per_s"]),
        ("ratio service / pgbench", r["punch_vs_pgbench_ratio"]),
        ("ratio service / baseline", r["punch_vs_baseline_ratio"]),
        ("ratio baseline / pgbench", r["baseline_vs_pgbench_ratio"]),
        ("punch writes/s: pgbench, the service's statements", r["pgbench_service_sql_writes_per_s"]),
        ("CPU ms per write: pgbench (PostgreSQL / pgbench)", cpu(r, "pgbench", "pgbench")),
        ("CPU ms per write: service's SQL in pgbench (PG / pgbench)", cpu(r, "pgbench_service_sql", "pgbench")),
        ("CPU ms per write: baseline (PostgreSQL / workers)", cpu(r, "baseline", "http_workers")),
        ("CPU ms per write: service (PostgreSQL / workers)", cpu(r, "service", "http_workers")),
        ("machine: pure-Python loop before the load (ms, lower is faster)", r["machine"]["python_loop_ms"]),
        ("machine: busy / stolen share of both cores, service's run",
         f"{r['machine']['during_load']['service']['busy']} / {r['machine']['during_load']['service']['steal']}"),
        ("service latency p50 / p99 (ms)",
         f"{r['service_latency_ms']['p50']:.1f} / {r['service_latency_ms']['p99']:.1f}"),
        ("service: share within 25 ms, its own histogram (in-app)", f(r["service_in_app_share_within_25ms"])),
        ("baseline latency p50 / p99 (ms)",
         f"{r['baseline_latency_ms']['p50']:.1f} / {r['baseline_latency_ms']['p99']:.1f}"),
        ("replay (same keys) responses/s", r["replay_per_s"]),
        ("replay latency p50 / p99 (ms)", f"{r['replay_latency_ms']['p50']:.1f} / {r['replay_latency_ms']['p99']:.1f}"),
        *storm_rows(r["storm"]),
        *interference_rows(r["probe_interference"]),
        *gate_rows(r["gates_under_load"]),
        ("audit chains after the load (unifocus audit verify)",
         f"{r['audit_after_load']['entries']} entries on {r['audit_after_load']['chains']} chains, "
         + ("intact" if r["audit_after_load"]["intact"] else "TAMPERED: " + "; ".join(r["audit_after_load"]["bad"]))
         + f" ({r['audit_after_load']['seconds']} s)"),
        ("/health p50 / p99 during punch load (ms)", f"{f(h['p50_ms'])} / {f(h['p99_ms'])} ({h['samples']} samples)"),
        ("/ready p50 / p99 during punch load (ms)",
         f"{f(rd['p50_ms'])} / {f(rd['p99_ms'])} ({rd['samples']} samples, {rd['failures']} not 200)"),
        ("peak RSS per service worker (MB)", ", ".join(map(str, r["service_peak_rss_mb_per_worker"]))),
        ("peak RSS per baseline worker (MB)", ", ".join(map(str, r["baseline_peak_rss_mb_per_worker"]))),
        ("service with access logs (INFO) writes/s", f(r["service_with_access_log_writes_per_s"])),
        ("database round trips per punch write", r["round_trips_per_punch"]),
        ("... the first clock_in after two days without one", r["round_trips_first_punch_after_quiet_days"]),
        ("errors", json.dumps(r["errors"])),
    ]
    width = max(len(k) for k, _ in rows)
    print()
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    write_result("punch", r)


def write_result(kind: str, r: dict[str, Any]) -> None:
    """The run's figures as bench/results/<kind>-<UTC stamp>.json."""
    out_dir = HERE / "results"
    out_dir.mkdir(exist_ok=True)
    path = out_dir / f"{kind}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(r, indent=2) + "\n")
    print(f"\nwritten to {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
