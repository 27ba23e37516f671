"""The runtime pool for CLI commands that run jobs by hand."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from unifocus.db.pool import Database
from unifocus.db.urls import app_url
from unifocus.settings import Settings, get_settings


@asynccontextmanager
async def with_database() -> AsyncIterator[tuple[Database, Settings]]:
    from unifocus.cli import owner_url

    settings = get_settings()
    db = Database(app_url(settings, owner_url(settings)), settings)
    await db.open()
    try:
        yield db, settings
    finally:
        await db.close()
