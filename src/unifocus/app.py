"""create_app(settings): lifespan, middleware order, routers, error handlers."""

from __future__ import annotations

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
from unifocus.errors import install_error_handlers
from unifocus.jobs.registry import build_scheduler
from unifocus.observability.requestid import RequestIdMiddleware
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
**Lists** take `limit` (1-500, default 50) and an opaque `cursor`, answer
`{items, nextCursor}`, newest first.
"""


def _routers() -> list[Any]:
    from unifocus.employees.routes import router as employees
    from unifocus.health.routes import router as health
    from unifocus.schedules.routes import router as schedules
    from unifocus.tenants.routes import router as tenants
    from unifocus.users.routes import router as users

    return [health, tenants, users, employees, schedules]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    if settings.database_url is None and settings.app_database_url is None:
        raise RuntimeError("DATABASE_URL (or UNIFOCUS_APP_DATABASE_URL) must be set; `unifocus serve` sets it")
    runtime_url = app_url(settings, settings.database_url or "")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await app.state.db.open()
        scheduler = build_scheduler(app.state.db, settings) if settings.scheduler_enabled else None
        if scheduler is not None:
            scheduler.start()
        try:
            yield
        finally:
            if scheduler is not None:
                await scheduler.stop()
            await app.state.db.close()

    app = FastAPI(title="Unifocus API", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    app.state.db = Database(runtime_url, settings)
    app.state.verifier = TokenVerifier(settings)
    app.state.started = time.monotonic()
    app.state.draining = False
    app.state.redis = None
    install_error_handlers(app)
    for router in _routers():
        app.include_router(router)
    app.add_middleware(RequestIdMiddleware)
    return app


def app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory` (several workers): settings from the environment."""
    return create_app(get_settings())
