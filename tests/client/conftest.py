"""A real `unifocus serve` subprocess on 127.0.0.1 for the client tests, and two tenants."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import JWT_SECRET, TenantFixture, free_port, make_tenant
from unifocus.settings import Settings

UNIFOCUS = str(Path(sys.executable).with_name("unifocus"))


@dataclass
class Server:
    url: str
    env: dict[str, str]
    log: Path


def server_env(owner_url: str, data: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "DATABASE_URL": owner_url, "UNIFOCUS_JWT_SECRET": JWT_SECRET,
           "UNIFOCUS_DATA_DIR": str(data), "UNIFOCUS_SCHEDULER_ENABLED": "false", "UNIFOCUS_LOG_LEVEL": "WARNING",
           "UNIFOCUS_SHUTDOWN_DRAIN_SECONDS": "0", "UNIFOCUS_SHUTDOWN_GRACE_SECONDS": "3",
           **extra}
    for name in ("UNIFOCUS_APP_DATABASE_URL", "PROMETHEUS_MULTIPROC_DIR", "UNIFOCUS_METRICS_TOKEN"):
        env.pop(name, None)
    return env


@contextmanager
def run_server(owner_url: str, data: Path, **extra: str) -> Iterator[Server]:
    """`unifocus serve --port <free>` until /ready answers 200; terminated on exit."""
    port = free_port()
    env = server_env(owner_url, data, UNIFOCUS_MIGRATE_ON_START="false", **extra)
    log_path = data / "server.log"
    log = log_path.open("wb")
    proc = subprocess.Popen([UNIFOCUS, "serve", "--port", str(port)], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"unifocus serve exited {proc.returncode}: {log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline:
                pytest.fail(f"unifocus serve not ready: {log_path.read_text()[-2000:]}")
            time.sleep(0.1)
        yield Server(url, env, log_path)
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


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
