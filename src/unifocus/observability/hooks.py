"""Narrow functions the request path calls to count things, so features never import
prometheus objects directly (and tests can run without a metrics registry)."""

from __future__ import annotations

from unifocus.observability import metrics as m


def auth_attempt(result: str) -> None:
    m.child(m.AUTH_ATTEMPTS, result).inc()


def tenant_scope_violation() -> None:
    m.TENANT_SCOPE_VIOLATIONS.inc()


def idempotency_lookup(outcome: str) -> None:
    m.child(m.IDEMPOTENCY_LOOKUPS, outcome).inc()


def audit_written(count: int) -> None:
    if count:
        m.AUDIT_ENTRIES_WRITTEN.inc(count)


def audit_failed() -> None:
    m.AUDIT_WRITE_FAILURES.inc()


def punches_created(source: str, count: int = 1) -> None:
    m.child(m.PUNCHES_CREATED, source).inc(count)


def punch_write(outcome: str) -> None:
    m.child(m.PUNCH_WRITES, outcome).inc()


def write_group(items: int) -> None:
    m.WRITE_GROUPS.inc()
    m.WRITE_GROUP_ITEMS.inc(items)


def exception_raised(kind: str) -> None:
    m.child(m.EXCEPTIONS_RAISED, kind).inc()


def rate_limited(scope: str) -> None:
    m.child(m.RATE_LIMIT_REJECTIONS, scope).inc()


def rate_limit_fallback() -> None:
    m.RATE_LIMIT_FALLBACKS.inc()


def readiness(check: str, ok: bool) -> None:
    m.child(m.READINESS_CHECK, check).set(1 if ok else 0)


def job_declared(job: str) -> None:
    """A scheduled job's run counters exist at 0 from the start, so the first failure after a
    restart is counted by increase() (`ExceptionSweepFailing`), as the 5xx series are."""
    for result in ("success", "failure"):
        m.child(m.JOB_RUNS, job, result)


def job_run(job: str, ok: bool, finished_at: float) -> None:
    m.child(m.JOB_RUNS, job, "success" if ok else "failure").inc()
    if ok:
        m.child(m.JOB_LAST_SUCCESS, job).set(finished_at)
