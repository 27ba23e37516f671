"""create_app(settings): lifespan, middleware order, routers, error handlers."""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from unifocus import __version__
from unifocus.auth.tokens import TokenVerifier
from unifocus.db.pool import Database
from unifocus.db.urls import app_url
from unifocus.db.writepath import caller_first
from unifocus.errors import install_error_handlers
from unifocus.jobs.registry import build_scheduler
from unifocus.lifecycle import Drain, install_drain_handler
from unifocus.limits.middleware import RequestLimitsMiddleware
from unifocus.observability.logging import configure_logging
from unifocus.observability.middleware import ObservabilityMiddleware, declare_error_series
from unifocus.observability.process import worker_metrics
from unifocus.openapi import add_bearer_security, add_unsupported_media_type
from unifocus.punches import fast_route
from unifocus.ratelimit.buckets import RateLimiter
from unifocus.ratelimit.middleware import RateLimitMiddleware
from unifocus.settings import Settings, get_settings

log = logging.getLogger("unifocus")

DESCRIPTION = """
Time and attendance for shift-based businesses: employees, schedules, punches, exceptions,
timesheets. Every operation is scoped to the caller's tenant (from the bearer token); the
caller's role comes from the database on every request.

**Writes** (POST, PUT, PATCH, DELETE) accept an `Idempotency-Key` header. A repeat of the same
request within 24 h answers the original status, body and `Location` byte for byte with
`Idempotent-Replayed: true` and changes nothing; the same key with another request is 422
`idempotency-key-reused`; a duplicate arriving while the original is in flight waits for it
(up to 2 s) or gets 409 `idempotency-request-in-progress` with `Retry-After`. 5xx answers and
refusals before the handler ran (400, 401, 403, 422 validation, 429) are not stored, so they
can be retried with the same key. Every successful write appends audit entries in the same
transaction.

**Errors** are RFC 9457 `application/problem+json`. An id of another tenant is always 404.
A caller who may not use an operation gets 401/403 before any 400/422 about its parameters or
body; only the request limits (headers over 32 KiB in all: 431; a body too large: 413; too
deep or not UTF-8: 400; a NUL, or an unpaired `\\uD800`-`\\uDFFF` escape, which is not Unicode
text: 422) and a malformed `Idempotency-Key` (400) come first. A bearer token longer than 8192
characters is 401. A body sent as anything but `application/json` (or `application/*+json`)
is 415 `unsupported-media-type`, in the place of a 400 for bad JSON (not kept for an
`Idempotency-Key` either). A 405 lists every method of the path in `Allow`. A path with a
trailing slash is an unknown path (404), never redirected.
**Lists** take `limit` (1-500, default 50) and an opaque `cursor`, answer
`{items, nextCursor}`, newest first. **Rate limits**: token buckets per user and per tenant;
every /api answer carries `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset`; 429
adds `Retry-After`. `/health`, `/ready` and `/metrics` are never limited.
"""


def _routers() -> list[Any]:
    from unifocus.audit.routes import router as audit
    from unifocus.employees.routes import router as employees
    from unifocus.health.routes import router as health
    from unifocus.observability.routes import router as metrics
    from unifocus.punches.routes import router as punches
    from unifocus.schedules.routes import router as schedules
    from unifocus.tenants.routes import router as tenants
    from unifocus.timeexceptions.routes import router as exceptions
    from unifocus.timesheets.routes import router as timesheets
    from unifocus.users.routes import router as users

    # Matched in this order on every request: the hot path (punches, from every time clock)
    # first, probes next.
    return [punches, health, metrics, exceptions, schedules, timesheets, employees, users, tenants, audit]


def _redis_client(settings: Settings) -> Any:
    if not settings.redis_url:
        return None
    from redis import asyncio as aioredis

    return aioredis.from_url(
        settings.redis_url,
        socket_timeout=settings.redis_timeout_seconds,
        socket_connect_timeout=settings.redis_timeout_seconds,
        health_check_interval=30,
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    if settings.database_url is None and settings.app_database_url is None:
        raise RuntimeError("DATABASE_URL (or UNIFOCUS_APP_DATABASE_URL) must be set; `unifocus serve` sets it")
    configure_logging(settings.log_level, settings.log_json)
    runtime_url = app_url(settings, settings.database_url or "")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Each worker: the error-rate/availability rules' 5xx series exist at 0 from the start.
        declare_error_series(app.routes)
        await app.state.db.open()
        install_drain_handler(app, settings.shutdown_drain_seconds)
        jobs_db = Database.for_jobs(runtime_url, settings) if settings.scheduler_enabled else None
        scheduler = None
        if jobs_db is not None:
            await jobs_db.open()
            scheduler = build_scheduler(jobs_db, settings)
            scheduler.start()
        freeze_startup_heap()
        space_full_collections()
        try:
            async with worker_metrics(app.state.db):
                yield
        finally:
            if scheduler is not None:
                await scheduler.stop()
            if jobs_db is not None:
                await jobs_db.close()
            await app.state.db.close()
            if app.state.redis is not None:
                await app.state.redis.aclose()

    # FastAPI's native OpenTelemetry off: this service's metrics are Prometheus (/metrics) and
    # its logs structlog's JSON lines (README, "Operating Unifocus"). Left on, FastAPI checks
    # OpenTelemetry's three global providers on every request, for telemetry nobody configured:
    # 3.7% of a punch's instructions in-process (bench/README.md, "Seventeenth session").
    # No trailing-slash redirects: Starlette's 307 to `/api/employees` for `/api/employees/` is an
    # absolute URL built from the client's Host header (`Host: evil.example` -> a Location
    # there), sent before authentication; a POST got it with an empty body. Such paths are
    # unknown paths like any other: 404 problem+json.
    app = FastAPI(title="Unifocus API", version=__version__, description=DESCRIPTION, lifespan=lifespan,
                  telemetry={"tracing": False, "metrics": False, "logs": False}, redirect_slashes=False)
    app.state.settings = settings
    app.state.db = Database(runtime_url, settings)
    app.state.verifier = TokenVerifier(settings)
    app.state.started = time.monotonic()
    app.state.drain = Drain()
    app.state.redis = _redis_client(settings)
    install_error_handlers(app, caller_first)
    for router in _routers():
        app.include_router(router)
    _document_security(app)
    # Added innermost first: requests pass Observability -> RequestLimits -> RateLimit ->
    # PunchFastPath -> app.
    if settings.fast_punch_route:
        fast_route.install(app)
    if settings.rate_limit_enabled:
        limiter = RateLimiter(settings, app.state.redis)
        app.add_middleware(RateLimitMiddleware, limiter=limiter, verifier=app.state.verifier)
    app.add_middleware(RequestLimitsMiddleware, max_body_bytes=settings.max_body_bytes,
                       max_json_depth=settings.max_json_depth)
    app.add_middleware(ObservabilityMiddleware, drain=app.state.drain)
    return app


# Python (3.11-3.13) starts a full (gen-2) collection once more than 10 gen-1 collections
# have run since the last one and the objects promoted meanwhile reach a quarter of those it
# kept. Under punch load that was every ~6-10 s per worker, and each one re-scanned the
# ~60,000 objects the engine's caches keep (the start-up heap is frozen): a stop of 11-67 ms
# of every request in flight on the worker, by itself most of the 25 ms p99 target. None of
# the full collections measured under the punch load found cyclic garbage (the young
# collections, which run as before, reclaim what a request leaves), so waiting for 100 gen-1
# collections (about a minute under that load) makes those stops ten times rarer at the same
# peak memory. Measured in bench/README.md ("Sixteenth session"). Python 3.14's incremental
# collector ignores this threshold; tests/foundation/test_worker_gc.py would say so.
FULL_COLLECTION_AFTER_GEN1 = 100


def space_full_collections() -> None:
    gen0, gen1, _ = gc.get_threshold()
    gc.set_threshold(gen0, gen1, FULL_COLLECTION_AFTER_GEN1)


def freeze_startup_heap() -> None:
    """Take what start-up made (modules, routes, pydantic validators: ~130,000 objects, most
    of a worker's heap) out of the cyclic GC's reach. They live as long as the worker, yet
    each full collection re-scanned them: a 40-50 ms pause of every request in flight on this
    machine, straight into the latency tail. Measured in bench/README.md."""
    gc.collect()
    gc.freeze()


def _document_security(app: FastAPI) -> None:
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = add_unsupported_media_type(add_bearer_security(build()))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory` (several workers): settings from the environment."""
    return create_app(get_settings())
