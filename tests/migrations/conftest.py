"""A database of its own for each migration test: they move the schema up and down."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import create_database, drop_database


@pytest.fixture()
def scratch_db(server_url: str) -> Iterator[str]:
    url = create_database(server_url)
    yield url
    drop_database(server_url, url)
