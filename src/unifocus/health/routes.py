"""Liveness and readiness (contract section 6): no auth, no rate limit, no idempotency."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

import asyncpg
from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.responses import JSONResponse, Response

from unifocus import __version__
from unifocus.db.migrate import COMPATIBLE_FROM, head_revision, newer, passing, schema_check
from unifocus.db.pool import Database, discard
from unifocus.errors import ServiceUnavailable, one_line
from unifocus.observability import hooks

router = APIRouter(tags=["health"])
log = logging.getLogger("unifocus.health")
HEAD = head_revision()
# Every 503 tells the client when to come back (contract section 1); /ready's uses the same
# value as the service's other dependency 503s, taken from ServiceUnavailable to stay in step.
UNAVAILABLE_HEADERS = dict(ServiceUnavailable().headers)


class Health(BaseModel):
    status: str
    timestamp: str
    uptime: float
    version: str


class Ready(BaseModel):
    status: str
    checks: dict[str, str]


@router.get("/health", response_model=Health)
async def health(request: Request) -> dict[str, Any]:
    """Liveness: the process answers. Touches no dependency."""
    return {
        "status": "ok",
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "uptime": round(time.monotonic() - request.app.state.started, 3),
        "version": __version__,
    }


# The schema's version, and whether this server takes writes: after a failover the old primary
# may come back as a standby (or read-only) at the same address, and every write there fails.
# One row even when alembic_version is empty (a schema being created), so read-only is
# always asked.
READ_PROBE = ("SELECT (SELECT version_num FROM alembic_version LIMIT 1) AS version_num, "
              "pg_is_in_recovery() OR current_setting('transaction_read_only')::bool AS read_only")


class ReadOnlyDatabase(Exception):
    """The database answers but refuses writes (reported by /ready, never raised to a client)."""


async def _database(db: Database, timeout: float) -> dict[str, str]:
    async def probe() -> tuple[str | None, str | None]:
        # Its own pool: requests that fill theirs (load) do not make the replica unready.
        async with db.connection(probe=True) as conn:
            row = await conn.fetchrow(READ_PROBE, timeout=timeout)
            if row is not None and row["read_only"]:
                # Not handed back: a session opened while the server was read-only stays so
                # (default_transaction_read_only is read at connect), after it is writable again.
                discard(conn)
                raise ReadOnlyDatabase("read-only (a standby or demoted primary, or default_transaction_read_only "
                                       "on): writes would fail")
            version = None if row is None else row["version_num"]
            if not newer(version, HEAD):
                return version, None  # this code's head, behind it, or not numbered
            # A newer schema says which code it still serves (0014). (Only then asked: on an
            # older one the function may not exist, and each probe would log an error.)
            try:
                return version, await conn.fetchval(COMPATIBLE_FROM, timeout=timeout)
            except asyncpg.exceptions.UndefinedFunctionError:
                return version, None

    started = time.monotonic()
    try:
        # Cut short, the probe's connection is terminated, not handed back (db/pool.py ABANDON):
        # a graceful release would wait on a hung server again, past the 2 s /ready promises.
        version, compatible_from = await asyncio.wait_for(probe(), timeout)
    except Exception as exc:  # any failure is reported, by its cause, never raised
        reason = database_cause(exc, time.monotonic() - started)
        return {"database": f"error: {reason[:200]}", "migrations": "error: database unreachable"}
    return {"database": "ok", "migrations": schema_check(version, compatible_from, HEAD)}


def database_cause(exc: BaseException, elapsed: float) -> str:
    """Why the database check failed, for an operator. The pool's ServiceUnavailable carries a
    client's text ("The database is unavailable; retry later.", the same for every cause);
    the cause it was raised from (db/pool.py) is what happened: a refused connection, a
    server that did not answer in time, an authentication failure. Never sent to /api clients,
    whose 503 stays generic."""
    if isinstance(exc, ServiceUnavailable) and exc.__cause__ is not None:
        exc = exc.__cause__
    if isinstance(exc, TimeoutError):  # asyncio's too; its text is empty
        return f"timed out after {elapsed:.1f} s"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused ({one_line(exc)})"
    return one_line(exc)


READY_KEY = "unifocus:ready"


async def _redis(request: Request, timeout: float) -> str:
    client = getattr(request.app.state, "redis", None)
    if client is None:
        return "disabled"
    try:
        # A write, as the rate limiter's script makes, not a PING: a Redis out of memory
        # (maxmemory, noeviction) or a read-only replica answers PING but refuses the limiter.
        await asyncio.wait_for(client.set(READY_KEY, "1", ex=60), timeout)
        return "ok"
    except Exception as exc:
        return f"error: {(str(exc) or type(exc).__name__)[:200]}"


@router.get("/ready", response_model=Ready, responses={503: {
    "model": Ready, "description": "Not ready (a check names why), or shutting down.",
    "headers": {"Retry-After": {"description": "Seconds to wait before asking again.", "schema": {"type": "integer"}}},
}})
async def ready(request: Request) -> JSONResponse:
    """Readiness: the database answers and its schema serves this code: migrated to this
    code's head, or newer and saying it still serves this code (`ok: ...`, a rolled-back
    release; docs/rollback.md). Redis is reported but only feeds rate limits (which fall back
    to in-process buckets), so it never makes us unready."""
    state = request.app.state
    timeout = state.settings.ready_check_timeout_seconds
    db_checks, redis = await asyncio.gather(_database(state.db, timeout), _redis(request, timeout))
    checks = {"database": db_checks["database"], "redis": redis, "migrations": db_checks["migrations"]}
    for name, value in checks.items():
        hooks.readiness(name, passing(value) or value == "disabled")
    _log_database_change(state, checks["database"])
    if state.drain.active:
        return JSONResponse({"status": "shutting_down", "checks": checks}, status_code=503,
                            headers=UNAVAILABLE_HEADERS)
    if checks["database"] == "ok" and passing(checks["migrations"]):
        return JSONResponse({"status": "ready", "checks": checks})
    return JSONResponse({"status": "not_ready", "checks": checks}, status_code=503, headers=UNAVAILABLE_HEADERS)


def _log_database_change(state: Any, check: str) -> None:
    """One line when the database check starts failing (naming why) and one when it passes
    again, not one per probe: the kubelet asks every few seconds through an outage."""
    failing = check != "ok"
    if failing == getattr(state, "database_failing", False):
        return
    state.database_failing = failing
    if failing:
        log.warning("readiness: the database check fails: %s", check.removeprefix("error: "))
    else:
        log.info("readiness: the database check passes again")


def headless(response: Response) -> Response:
    """The GET answer to a HEAD: its status and headers (Content-Length and Retry-After
    included, RFC 9110 9.3.2), no body. Load balancers probe with HEAD; a 405 there reads as
    a dead replica. Emptied here, not only by the server (uvicorn drops a HEAD's body), so
    any ASGI server answers the same."""
    response.body = b""
    return response


# Not in the OpenAPI document: HEAD is GET without the body (README, "Health"), and a second
# operation per probe would only repeat GET's.
@router.head("/health", include_in_schema=False)
async def health_head(request: Request) -> Response:
    return headless(JSONResponse(await health(request)))


@router.head("/ready", include_in_schema=False)
async def ready_head(request: Request) -> Response:
    return headless(await ready(request))
