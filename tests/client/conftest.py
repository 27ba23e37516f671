"""A real `unifocus serve` subprocess on 127.0.0.1 for the client tests, and two tenants."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests import serving
from tests.conftest import TenantFixture, make_tenant
from tests.serving import LiveServer as Server
from unifocus.settings import Settings

# The client tests' servers: migrated by the fixtures already, fast to stop.
CLIENT_ENV = {"UNIFOCUS_MIGRATE_ON_START": "false", "UNIFOCUS_SHUTDOWN_DRAIN_SECONDS": "0",
              "UNIFOCUS_SHUTDOWN_GRACE_SECONDS": "3"}


@contextmanager
def run_server(owner_url: str, data: Path, **extra: str) -> Iterator[Server]:
    """`unifocus serve --port <free>` until /ready answers 200; terminated on exit."""
    with serving.run_server(owner_url, data, {**CLIENT_ENV, **extra}) as server:
        yield server


@pytest.fixture(scope="session")
def live(owner_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The server under test, as deployed: rate limits on (the default)."""
    with run_server(owner_url, tmp_path_factory.mktemp("live")) as server:
        yield server


@pytest.fixture()
def ta(owner_url: str, settings: Settings) -> TenantFixture:
    return make_tenant(owner_url, settings, "America/New_York")


@pytest.fixture()
def tb(owner_url: str, settings: Settings) -> TenantFixture:
    return make_tenant(owner_url, settings, "Europe/London")
