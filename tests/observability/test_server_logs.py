"""Everything a real `unifocus serve` writes is a JSON line with the documented keys (README,
"Logs"), on stdout and stderr alike: alembic's migration lines, uvicorn's own (start, stop, a
malformed request, a worker that died) and ours. An unhandled error is logged once, by the
app, with its request id: not a second time by uvicorn as a plain-text traceback."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.conftest import TenantFixture, employee_insert_fails, free_port
from tests.serving import UNIFOCUS, LiveServer, server_env, stop, wait_ready

pytestmark = [pytest.mark.alerts, pytest.mark.slow]

KEYS = {"event", "level", "logger", "timestamp"}


def start(owner_url: str, data: Path, workers: int = 1, **extra: str) -> tuple[LiveServer, Path]:
    """A server whose stdout and stderr are kept apart (server.log, server.err)."""
    data.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = server_env(owner_url, data, UNIFOCUS_LOG_LEVEL="INFO", **extra)
    out, err = data / "server.log", data / "server.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen([UNIFOCUS, "serve", "--workers", str(workers), "--port", str(port)],
                                env=env, stdout=stdout, stderr=stderr, start_new_session=True)
    return LiveServer(proc, f"http://127.0.0.1:{port}", env, out), err


def json_lines(*paths: Path) -> list[dict[str, Any]]:
    """Every line of every file, parsed; fails on the first line that is not a JSON object
    with the documented keys."""
    lines = []
    for path in paths:
        for number, text in enumerate(path.read_text().splitlines(), 1):
            try:
                line = json.loads(text)
            except ValueError:
                pytest.fail(f"{path.name}:{number} is not JSON: {text[:300]!r}")
            assert isinstance(line, dict) and KEYS <= set(line), f"{path.name}:{number}: {text[:300]}"
            lines.append(line)
    return lines


def output(*paths: Path) -> str:
    return "".join(path.read_text() for path in paths)


def raw_request(base: str, data: bytes) -> bytes:
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(data)
        return sock.recv(4096)


def test_every_line_is_json_and_a_500_is_logged_once(
    owner_url: str, owner_sql: psycopg.Connection, tenant_a: TenantFixture, tmp_path: Path
) -> None:
    server, err = start(owner_url, tmp_path / "data", workers=2)
    try:
        wait_ready([server])
        marker = f"Fail{uuid.uuid4().hex[:8]}"
        with employee_insert_fails(owner_sql, marker):
            r = httpx.post(f"{server.url}/api/employees", timeout=10,
                           headers={"Authorization": f"Bearer {tenant_a.manager}", "X-Request-ID": "logs-500"},
                           json={"firstName": marker, "lastName": "Failing"})
        assert r.status_code == 500, r.text
        # uvicorn refuses it before the app: its "Invalid HTTP request received." line.
        assert raw_request(server.url, b"NOT A REQUEST\r\n\r\n").startswith(b"HTTP/1.1 400")
        # A worker that dies is restarted by uvicorn's supervisor, which says so.
        worker = int(re.findall(r"Started server process \[(\d+)\]", output(server.log, err))[0])
        os.kill(worker, signal.SIGKILL)
        deadline = time.time() + 20
        while f"Child process [{worker}] died" not in output(server.log, err) and time.time() < deadline:
            time.sleep(0.2)
        wait_ready([server])
    finally:
        stop([server])

    lines = json_lines(server.log, err)
    events = [line["event"] for line in lines]
    loggers = {line["logger"] for line in lines}
    assert {"alembic.runtime.migration", "uvicorn.error", "unifocus.access"} <= loggers, loggers
    assert "Invalid HTTP request received." in events
    assert f"Child process [{worker}] died" in events
    assert any(e.startswith("Shutting down") or e.startswith("Terminated child process") for e in events), events
    # The 500: its traceback once, on the app's line with the request id; uvicorn's copy dropped.
    tracebacks = [line for line in lines if "exception" in line]
    assert len(tracebacks) == 1, [t["event"] for t in tracebacks]
    assert tracebacks[0]["logger"] == "unifocus.errors" and "logs-500" in tracebacks[0]["event"]
    assert "injected failure in employees" in tracebacks[0]["exception"]
    assert "Exception in ASGI application" not in " ".join(events)


def test_an_error_the_app_did_not_log_is_still_logged_by_uvicorn() -> None:
    """The duplicate filter drops only what the app marked: an error raised outside its
    handler (here, straight to uvicorn's logger) keeps its line."""
    import logging

    from unifocus.observability.logging import LoggedOnce, mark_logged

    unmarked, marked = RuntimeError("not logged"), RuntimeError("logged")
    mark_logged(marked)
    keep = LoggedOnce()

    def record(exc: BaseException) -> logging.LogRecord:
        return logging.LogRecord("uvicorn.error", logging.ERROR, __file__, 1, "Exception in ASGI application",
                                 None, (type(exc), exc, None))

    assert keep.filter(record(unmarked))
    assert not keep.filter(record(marked))
    assert keep.filter(logging.LogRecord("uvicorn.error", logging.INFO, __file__, 1, "started", None, None))


def test_a_fatal_start_up_error_of_serve_is_a_json_line(tmp_path: Path) -> None:
    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"
    env = server_env(dead, tmp_path, UNIFOCUS_LOG_LEVEL="INFO")
    done = subprocess.run([UNIFOCUS, "serve", "--port", str(free_port())], env=env, capture_output=True, timeout=60)
    assert done.returncode == 1
    (tmp_path / "out").write_bytes(done.stdout)
    (tmp_path / "err").write_bytes(done.stderr)
    lines = json_lines(tmp_path / "out", tmp_path / "err")
    fatal = [line for line in lines if line["level"] == "error" and line["logger"] == "unifocus.cli"]
    assert len(fatal) == 1 and fatal[0]["event"].startswith("unifocus: "), lines
    assert "nowhere" in fatal[0]["event"] or "connect" in fatal[0]["event"].lower(), fatal
