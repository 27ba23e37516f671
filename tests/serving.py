"""Real `unifocus serve` processes on 127.0.0.1 for the tests that need a live server
(several workers, SIGTERM, proxies, PgBouncer): started, awaited ready, always stopped."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import JWT_SECRET, free_port

UNIFOCUS = str(Path(sys.executable).with_name("unifocus"))


@dataclass
class LiveServer:
    proc: subprocess.Popen[bytes]
    url: str
    env: dict[str, str]
    log: Path


def server_env(owner_url: str, data: Path, **extra: str) -> dict[str, str]:
    """The test database, the test secret, no scheduler, quiet logs; `extra` wins. Variables
    of the outer environment that would change the server are dropped unless given."""
    env = {**os.environ, "DATABASE_URL": owner_url, "UNIFOCUS_JWT_SECRET": JWT_SECRET,
           "UNIFOCUS_DATA_DIR": str(data), "UNIFOCUS_SCHEDULER_ENABLED": "false",
           "UNIFOCUS_LOG_LEVEL": "WARNING", **extra}
    for name in ("UNIFOCUS_APP_DATABASE_URL", "PROMETHEUS_MULTIPROC_DIR", "UNIFOCUS_METRICS_TOKEN", "REDIS_URL"):
        if name not in extra:
            env.pop(name, None)
    return env


def start_server(owner_url: str, data: Path, extra: Mapping[str, str] | None = None, workers: int = 1) -> LiveServer:
    port = free_port()
    data.mkdir(parents=True, exist_ok=True)
    env = server_env(owner_url, data, **(extra or {}))
    log = data / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([UNIFOCUS, "serve", "--workers", str(workers), "--port", str(port)],
                                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return LiveServer(proc, f"http://127.0.0.1:{port}", env, log)


def wait_ready(servers: list[LiveServer], timeout: float = 60) -> None:
    deadline = time.time() + timeout
    for server in servers:
        while True:
            if server.proc.poll() is not None:
                pytest.fail(f"unifocus serve exited {server.proc.returncode}: {server.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{server.url}/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline:
                pytest.fail(f"unifocus serve not ready: {server.log.read_text()[-2000:]}")
            time.sleep(0.1)


def stop(servers: list[LiveServer]) -> None:
    for server in servers:
        if server.proc.poll() is None:
            server.proc.terminate()
    for server in servers:
        try:
            server.proc.wait(20)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait(5)


@contextmanager
def run_server(
    owner_url: str, data: Path, extra: Mapping[str, str] | None = None, workers: int = 1
) -> Iterator[LiveServer]:
    """One server, ready, for the length of the block."""
    server = start_server(owner_url, data, extra, workers)
    try:
        wait_ready([server])
        yield server
    finally:
        stop([server])
