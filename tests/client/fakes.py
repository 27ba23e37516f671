"""Network fakes on 127.0.0.1 for the retry tests: a TCP proxy that drops the client's
connection after the server has answered a chosen request, and a scripted HTTP stub."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def _head(data: bytes) -> tuple[str, dict[str, str]] | None:
    """The request line and headers when `data` starts a request."""
    if b"\r\n\r\n" not in data or not data[:8].split(b" ")[0].isalpha():
        return None
    lines = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return lines[0], headers


@dataclass
class DropProxy:
    """Relays 127.0.0.1:port <-> upstream. The first `drops` requests whose line starts with
    `match` are forwarded in full; once the upstream's answer starts to arrive (so the server
    has committed), the client connection is aborted without relaying a byte of it."""

    upstream_port: int
    match: str = "POST /api/punches "
    drops: int = 1
    port: int = 0
    seen: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    dropped: int = 0

    async def _handle(self, creader: asyncio.StreamReader, cwriter: asyncio.StreamWriter) -> None:
        ureader, uwriter = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        doomed = False

        async def upstream() -> None:
            nonlocal doomed
            try:
                while data := await creader.read(65536):
                    head = _head(data)
                    if head is not None:
                        self.seen.append(head)
                        if head[0].startswith(self.match) and self.drops > 0:
                            self.drops -= 1
                            doomed = True
                    uwriter.write(data)
                    await uwriter.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                uwriter.close()

        async def downstream() -> None:
            try:
                while data := await ureader.read(65536):
                    if doomed:
                        self.dropped += 1
                        cwriter.transport.abort()
                        return
                    cwriter.write(data)
                    await cwriter.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                cwriter.close()

        await asyncio.gather(upstream(), downstream(), return_exceptions=True)

    @contextmanager
    def running(self) -> Iterator[DropProxy]:
        loop = asyncio.new_event_loop()
        started = threading.Event()
        holder: dict[str, Any] = {}

        async def main() -> None:
            server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
            self.port = server.sockets[0].getsockname()[1]
            holder["server"] = server
            started.set()
            try:
                async with server:
                    await server.serve_forever()
            finally:
                # Relays of connections the client keeps open end here, on this loop: left
                # pending, they would be collected after the loop is closed and fail then.
                relays = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
                for relay in relays:
                    relay.cancel()
                await asyncio.gather(*relays, return_exceptions=True)

        thread = threading.Thread(target=lambda: loop.run_until_complete(_quiet(main())), daemon=True)
        thread.start()
        started.wait(5)
        try:
            yield self
        finally:
            loop.call_soon_threadsafe(holder["server"].close)
            thread.join(5)
            if not thread.is_alive():
                loop.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


async def _quiet(aw: Any) -> None:
    try:
        await aw
    except asyncio.CancelledError:
        pass


@dataclass
class Scripted:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class StubServer:
    """Answers each request with the next scripted answer (the last one repeats) and records
    what it received: (method, path, headers, body)."""

    def __init__(self, script: list[Scripted]) -> None:
        self.script = script
        self.received: list[tuple[str, str, dict[str, str], bytes]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                stub.received.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                answer = stub.script[min(len(stub.received), len(stub.script)) - 1]
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> StubServer:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def problem(status: int, slug: str, retry_after: str | None = None) -> Scripted:
    body = f'{{"type":"https://unifocus.dev/problems/{slug}","title":"t","status":{status},"detail":"d"}}'
    headers = {"Content-Type": "application/problem+json"}
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    return Scripted(status, body.encode(), headers)


def created(body: bytes) -> Scripted:
    return Scripted(201, body, {"Content-Type": "application/json", "Location": "/api/punches/x"})
