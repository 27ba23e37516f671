"""A database of its own for each migration test: they move the schema up and down."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import create_database, drop_database
from unifocus.db.migrate import upgrade
from unifocus.db.urls import app_url
from unifocus.settings import Settings


@pytest.fixture()
def scratch_db(server_url: str) -> Iterator[str]:
    url = create_database(server_url)
    yield url
    drop_database(server_url, url)


def migrated_to(owner_url: str, revision: str) -> tuple[Settings, str]:
    """The database of `owner_url` upgraded to `revision`: its settings and the app role's URL."""
    settings = Settings(database_url=owner_url)
    upgrade(owner_url, settings, revision)
    return settings, app_url(settings, owner_url)
