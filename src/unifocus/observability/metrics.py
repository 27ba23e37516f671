"""Prometheus metrics for unifocus.

Works with several uvicorn worker processes: when ``PROMETHEUS_MULTIPROC_DIR`` is set *before*
``prometheus_client`` is first imported, every process writes its values to mmap files in that
directory and :func:`render_metrics` aggregates them with ``MultiProcessCollector``. Gauges carry
an explicit ``multiprocess_mode`` saying how per-process values combine.

Labels never carry tenant ids, user ids or raw paths (unbounded cardinality, and tenant names
would leak into a shared monitoring system): routes are templates such as ``/api/punches/{id}``.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

__all__ = [
    "AUDIT_ENTRIES_WRITTEN",
    "AUDIT_TABLE_BYTES",
    "AUDIT_WRITE_FAILURES",
    "AUTH_ATTEMPTS",
    "DB_POOL_CONNECTIONS_IN_USE",
    "DB_POOL_CONNECTIONS_MAX",
    "DB_QUERY_DURATION",
    "DB_SERVER_CONNECTIONS",
    "DB_SERVER_CONNECTIONS_LIMIT",
    "EXCEPTIONS_RAISED",
    "HTTP_REQUESTS",
    "HTTP_REQUESTS_IN_PROGRESS",
    "HTTP_REQUEST_DURATION",
    "IDEMPOTENCY_CLEANUP_LAST_SUCCESS",
    "IDEMPOTENCY_LOOKUPS",
    "IDEMPOTENCY_RECORDS",
    "JOB_LAST_SUCCESS",
    "JOB_RUNS",
    "PROCESS_CPU_LIMIT_CORES",
    "PROCESS_CPU_SECONDS",
    "PROCESS_MEMORY_LIMIT_BYTES",
    "PROCESS_RESIDENT_MEMORY_BYTES",
    "PUNCHES_CREATED",
    "PUNCH_WRITES",
    "RATE_LIMIT_BACKEND_FALLBACKS",
    "RATE_LIMIT_FALLBACKS",
    "RATE_LIMIT_REJECTIONS",
    "READINESS_CHECK",
    "TENANT_SCOPE_VIOLATIONS",
    "WRITE_GROUPS",
    "WRITE_GROUP_ITEMS",
    "child",
    "mark_process_dead",
    "multiprocess_enabled",
    "render_metrics",
    "status_class",
    "update_process_metrics",
]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# 5 ms .. 5 s; 0.5 s and 2 s are the p99 alert thresholds and 0.5 s the latency SLO target, so
# they must be bucket boundaries for histogram_quantile / the SLO ratio to be exact there.
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0)
DB_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

# Allowed label values (documentation for callers; enforced nowhere, kept small on purpose).
AUTH_RESULTS = ("success", "invalid_token", "expired", "unknown_user", "inactive", "forbidden")
IDEMPOTENCY_OUTCOMES = ("hit", "miss", "mismatch", "in_progress", "error")
# How a POST /api/punches was answered by the two-statement write (db/optimistic.py):
# "written" or "replayed" by it, or which reason sent it to the classic transaction.
PUNCH_WRITE_OUTCOMES = ("written", "replayed", "stale", "key_taken", "conflict", "withdrawals",
                        "out_of_order", "domain_error", "no_write", "group_failed")
# The `source` of a punch (punches/schemas.py PunchSource): `device` when a device is named,
# else `api` by default; `manual` is a manager's entry.
PUNCH_SOURCES = ("api", "device", "manual")
RATE_LIMIT_SCOPES = ("user", "tenant")
READINESS_CHECKS = ("database", "redis", "migrations")
JOB_RESULTS = ("success", "failure")

# --- HTTP (golden signals) -------------------------------------------------------------------
HTTP_REQUESTS = Counter(
    "unifocus_http_requests_total",
    "HTTP requests handled, by route template, method and status class.",
    ["route", "method", "status_class"],
)
HTTP_REQUEST_DURATION = Histogram(
    "unifocus_http_request_duration_seconds",
    "HTTP request duration in seconds, by route template, method and status class.",
    ["route", "method", "status_class"],
    buckets=HTTP_BUCKETS,
)
HTTP_REQUESTS_IN_PROGRESS = Gauge(
    "unifocus_http_requests_in_progress",
    "HTTP requests currently being handled.",
    ["method"],
    multiprocess_mode="livesum",
)

# --- database ----------------------------------------------------------------------------------
DB_POOL_CONNECTIONS_IN_USE = Gauge(
    "unifocus_db_pool_connections_in_use",
    "Database pool connections checked out (summed over live workers).",
    multiprocess_mode="livesum",
)
DB_POOL_CONNECTIONS_MAX = Gauge(
    "unifocus_db_pool_connections_max",
    "Database pool capacity (each worker's asyncpg pool max_size, UNIFOCUS_DB_POOL_MAX; asyncpg "
    "has no overflow), summed over live workers.",
    multiprocess_mode="livesum",
)
# The database server as a whole (all roles, databases and clients, not only this service's
# pools), measured by the `table-stats` job (idempotency/cleanup.py refresh_stats) in whichever
# replica runs it; "mostrecent": the newest measurement of the pod's workers wins, and a
# process that never measured reports 0.
DB_SERVER_CONNECTIONS = Gauge(
    "unifocus_db_server_connections",
    "Client connections open on the database server (all roles and databases; pg_stat_activity), "
    "as last counted by the table-stats job.",
    multiprocess_mode="mostrecent",
)
DB_SERVER_CONNECTIONS_LIMIT = Gauge(
    "unifocus_db_server_connections_limit",
    "Connections an ordinary role may open on the database server: max_connections minus "
    "superuser_reserved_connections (and reserved_connections on PostgreSQL 16+).",
    multiprocess_mode="mostrecent",
)
DB_QUERY_DURATION = Histogram(
    "unifocus_db_query_duration_seconds",
    "Database statement duration in seconds, by operation (select, insert, update, delete, ...).",
    ["operation"],
    buckets=DB_BUCKETS,
)

# --- process saturation (per worker pid in multiprocess mode) ----------------------------------
PROCESS_RESIDENT_MEMORY_BYTES = Gauge(
    "unifocus_process_resident_memory_bytes",
    "Resident set size of each worker process in bytes.",
    multiprocess_mode="liveall",
)
PROCESS_MEMORY_LIMIT_BYTES = Gauge(
    "unifocus_process_memory_limit_bytes",
    "Memory available to the container: cgroup memory.max if set, else total RAM.",
    multiprocess_mode="max",
)
PROCESS_CPU_SECONDS = Gauge(
    "unifocus_process_cpu_seconds",
    "User + system CPU seconds used by each worker process (monotonic per pid; use rate()).",
    multiprocess_mode="liveall",
)
PROCESS_CPU_LIMIT_CORES = Gauge(
    "unifocus_process_cpu_limit_cores",
    "CPU cores available to the container: cgroup cpu.max quota if set, else CPU count.",
    multiprocess_mode="max",
)

# --- auth, domain, idempotency, audit ----------------------------------------------------------
AUTH_ATTEMPTS = Counter(
    "unifocus_auth_attempts_total",
    "Authentication/authorization outcomes: " + ", ".join(AUTH_RESULTS) + ".",
    ["result"],
)
PUNCHES_CREATED = Counter(
    "unifocus_punches_created_total",
    "Punches created, by source: " + ", ".join(PUNCH_SOURCES) + ".",
    ["source"],
)
PUNCH_WRITES = Counter(
    "unifocus_punch_writes_total",
    "Single punches by how the two-statement write ended: " + ", ".join(PUNCH_WRITE_OUTCOMES)
    + " (every outcome but written and replayed fell back to the classic transaction).",
    ["outcome"],
)
WRITE_GROUPS = Counter(
    "unifocus_write_groups_total",
    "Statements sent with several punch writes at once (group commit: writes that became ready "
    "while another of their tenant was in flight); a write sent alone is not counted.",
)
WRITE_GROUP_ITEMS = Counter(
    "unifocus_write_group_items_total",
    "Punch writes sent in those statements (divided by unifocus_write_groups_total: the mean group).",
)
IDEMPOTENCY_LOOKUPS = Counter(
    "unifocus_idempotency_lookups_total",
    "Idempotency-Key lookups by outcome: " + ", ".join(IDEMPOTENCY_OUTCOMES) + ".",
    ["outcome"],
)
IDEMPOTENCY_RECORDS = Gauge(
    "unifocus_idempotency_records",
    "Rows in the idempotency table (as last counted by the cleanup job).",
    multiprocess_mode="max",
)
IDEMPOTENCY_CLEANUP_LAST_SUCCESS = Gauge(
    "unifocus_idempotency_cleanup_last_success_timestamp_seconds",
    "Unix time of the last successful idempotency cleanup.",
    multiprocess_mode="max",
)
AUDIT_ENTRIES_WRITTEN = Counter("unifocus_audit_entries_written_total", "Audit log entries written.")
AUDIT_WRITE_FAILURES = Counter(
    "unifocus_audit_write_failures_total",
    "Audit log entries that could not be written (the surrounding write was rolled back).",
)
AUDIT_TABLE_BYTES = Gauge(
    "unifocus_audit_table_bytes",
    "pg_total_relation_size('audit_log') in bytes.",
    multiprocess_mode="max",
)

# --- rate limiting, readiness, safety, jobs -----------------------------------------------------
RATE_LIMIT_REJECTIONS = Counter(
    "unifocus_rate_limit_rejections_total", "Requests rejected with 429, by scope (user, tenant).", ["scope"]
)
RATE_LIMIT_BACKEND_FALLBACKS = Counter(
    "unifocus_rate_limit_backend_fallbacks_total",
    "Rate-limit decisions taken by the in-process fallback because Redis was unavailable.",
)
READINESS_CHECK = Gauge(
    "unifocus_readiness_check",
    "Result of the last readiness check per dependency: 1 ok (or disabled), 0 failing.",
    ["check"],
    multiprocess_mode="mostrecent",
)
# Alias used by unifocus.observability.hooks.
RATE_LIMIT_FALLBACKS = RATE_LIMIT_BACKEND_FALLBACKS
TENANT_SCOPE_VIOLATIONS = Counter(
    "unifocus_tenant_scope_violations_total",
    "Queries or results that crossed (or tried to cross) the caller's tenant boundary.",
)
EXCEPTIONS_RAISED = Counter(
    "unifocus_exceptions_raised_total",
    "Attendance exceptions raised by the rules engine, by exception type.",
    ["type"],
)
JOB_RUNS = Counter(
    "unifocus_job_runs_total", "Background job runs by job and result (success, failure).", ["job", "result"]
)
JOB_LAST_SUCCESS = Gauge(
    "unifocus_job_last_success_timestamp_seconds",
    "Unix time of the last successful run of each background job.",
    ["job"],
    multiprocess_mode="max",
)


def multiprocess_enabled() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


def render_metrics() -> tuple[bytes, str]:
    """Return (body, content type) for ``GET /metrics``, aggregated over all workers."""
    update_process_metrics()
    if multiprocess_enabled():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def mark_process_dead(pid: int) -> None:
    """Call from the process manager when a worker exits (drops its ``live*`` gauge files)."""
    if multiprocess_enabled():
        multiprocess.mark_process_dead(pid)


# prometheus_client names a live gauge's file gauge_<mode>_<pid>.db, mode livesum, liveall, ...
_LIVE_GAUGE_FILE = re.compile(r"gauge_live[a-z]+_(\d+)\.db")


def sweep_dead_processes() -> list[int]:
    """Drop the ``live*`` gauge files of pids that no longer run, and return those pids. A
    worker that exits normally drops its own (lifespan end); one that was killed (SIGKILL, the
    OOM killer) never does, and uvicorn's supervisor starts another in its place: without this
    its in-flight requests, pool size and RSS would be added in until the pod restarts (a
    pool max of 30 for 20 real connections hides the pool alerts). Every worker calls it on
    start and on each refresh."""
    directory = os.environ.get(MULTIPROC_ENV)
    if not directory:
        return []
    dead: set[int] = set()
    with contextlib.suppress(FileNotFoundError):
        for name in os.listdir(directory):
            match = _LIVE_GAUGE_FILE.fullmatch(name)
            if match and not _running(int(match.group(1))):
                dead.add(int(match.group(1)))
    for pid in dead:
        multiprocess.mark_process_dead(pid, directory)
    return sorted(dead)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it runs
        return True
    return True


def status_class(status: int) -> str:
    return f"{status // 100}xx" if 100 <= status < 600 else "unknown"


def _read_text(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def _memory_limit_bytes() -> float:
    total = float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        raw = _read_text(path)
        if raw and raw != "max" and raw.isdigit():
            limit = float(raw)
            # cgroup v1 reports "unlimited" as a huge number: fall back to physical RAM.
            return min(limit, total) if total > 0 else limit
    return total


def _cpu_limit_cores() -> float:
    raw = _read_text("/sys/fs/cgroup/cpu.max")
    if raw:
        quota, _, period = raw.partition(" ")
        if quota != "max" and quota.isdigit() and period.isdigit() and int(period) > 0:
            return int(quota) / int(period)
    quota_v1 = _read_text("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
    period_v1 = _read_text("/sys/fs/cgroup/cpu/cpu.cfs_period_us")
    if quota_v1 and period_v1 and quota_v1.isdigit() and period_v1.isdigit() and int(period_v1) > 0:
        return int(quota_v1) / int(period_v1)
    try:
        return float(len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return float(os.cpu_count() or 1)


def _resident_bytes() -> float:
    statm = _read_text("/proc/self/statm")
    if statm:
        parts = statm.split()
        if len(parts) > 1 and parts[1].isdigit():
            return float(int(parts[1]) * os.sysconf("SC_PAGE_SIZE"))
    import resource  # fallback (non-Linux): peak RSS, KiB on Linux/BSD

    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)


_LIMITS_CACHE: dict[str, float] = {}
_LIMITS_TTL_SECONDS = 60.0


def update_process_metrics() -> None:
    """Refresh this process's memory/CPU gauges (cheap: a few /proc and cgroup reads).

    Called on every scrape by :func:`render_metrics`; in multiprocess mode only the worker that
    serves the scrape refreshes, so also call it periodically from each worker (e.g. every 15 s).
    """
    times = os.times()
    PROCESS_CPU_SECONDS.set(times.user + times.system)
    PROCESS_RESIDENT_MEMORY_BYTES.set(_resident_bytes())
    now = time.monotonic()
    if now - _LIMITS_CACHE.get("at", -_LIMITS_TTL_SECONDS * 2) >= _LIMITS_TTL_SECONDS:
        _LIMITS_CACHE["at"] = now
        PROCESS_MEMORY_LIMIT_BYTES.set(_memory_limit_bytes())
        PROCESS_CPU_LIMIT_CORES.set(_cpu_limit_cores())


_CHILDREN: dict[tuple[Any, ...], Any] = {}


def child(metric: Any, *labels: str) -> Any:
    """The metric's child for these label values (in the metric's label order), resolved once.
    `labels()` validates and sorts on every call; the request path counts a handful of things
    per request over small closed sets of values (outcomes, routes, methods, status classes)."""
    key = (metric, *labels)
    found = _CHILDREN.get(key)
    if found is None:
        found = _CHILDREN[key] = metric.labels(*labels)
    return found


def _declare_known_series() -> None:
    """Create every known label set up front, at zero: a series that exists from the start
    makes rate() and ratio alerts work from the first scrape, and in multiprocess mode a
    labelled series never touched would otherwise be missing from /metrics. The 5xx series of
    HTTP_REQUESTS depend on the app's routes: each worker creates them when it starts
    (observability.middleware.declare_error_series)."""
    for result in AUTH_RESULTS:
        AUTH_ATTEMPTS.labels(result=result)
    for outcome in IDEMPOTENCY_OUTCOMES:
        IDEMPOTENCY_LOOKUPS.labels(outcome=outcome)
    for scope in RATE_LIMIT_SCOPES:
        RATE_LIMIT_REJECTIONS.labels(scope=scope)
    for source in PUNCH_SOURCES:
        PUNCHES_CREATED.labels(source=source)
    for outcome in PUNCH_WRITE_OUTCOMES:
        PUNCH_WRITES.labels(outcome=outcome)


_declare_known_series()
