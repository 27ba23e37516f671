"""Fixtures the audit tests share."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from unifocus.db.pool import Database
from unifocus.settings import Settings


@pytest.fixture()
async def db(runtime_url: str, settings: Settings) -> AsyncIterator[Database]:
    """A pool as the runtime role (what the service and its jobs read the audit log as)."""
    database = Database(runtime_url, settings)
    await database.open()
    yield database
    await database.close()
