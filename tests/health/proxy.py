"""A TCP proxy in the test's event loop, to take a dependency away and give it back while
the app keeps running, or to freeze it under open connections; and a black hole that accepts
connections and never answers."""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import quote

from psycopg.conninfo import conninfo_to_dict

from tests.conftest import free_port


def postgres_address(url: str) -> tuple[str, int | str]:
    """(host, port) of a PostgreSQL URL, or ('unix', socket path) for a socket directory."""
    info = conninfo_to_dict(url)
    host, port = str(info.get("host") or "127.0.0.1"), int(info.get("port") or 5432)
    if host.startswith("/"):
        return "unix", f"{host}/.s.PGSQL.{port}"
    return host, port


def url_through(port: int, owner_url: str, role: str, password: str | None) -> str:
    dbname = conninfo_to_dict(owner_url)["dbname"]
    cred = quote(role) + (":" + quote(password) if password else "")
    return f"postgresql://{cred}@127.0.0.1:{port}/{dbname}"


class TcpProxy:
    def __init__(self, target: tuple[str, int | str]) -> None:
        self.target = target
        self.port = free_port()
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.flowing = asyncio.Event()  # cleared: frozen

    async def start(self) -> None:
        self.flowing.set()
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    def freeze(self) -> None:
        """The database stops answering and nothing is closed (a hung server, a partition):
        every open connection stays open and silent, new ones are accepted and never answered."""
        self.flowing.clear()

    async def stop(self) -> None:
        """Close the listener and every connection in flight: the database is 'gone'."""
        assert self.server is not None
        self.server.close()
        for writer in list(self.writers):
            writer.close()
        self.flowing.set()  # lets frozen connections see that they are closed, and end
        await self.server.wait_closed()
        self.writers.clear()

    async def _open_target(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        host, port = self.target
        if host == "unix":
            return await asyncio.open_unix_connection(str(port))
        return await asyncio.open_connection(host, int(port))

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.writers.add(client_w)
        await self.flowing.wait()
        if client_w.is_closing():  # stopped while frozen
            return
        try:
            server_r, server_w = await self._open_target()
        except OSError:
            client_w.close()
            self.writers.discard(client_w)
            return
        self.writers.add(server_w)
        await asyncio.gather(_pipe(client_r, server_w, self.flowing), _pipe(server_r, client_w, self.flowing))
        self.writers -= {client_w, server_w}


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, flowing: asyncio.Event) -> None:
    with contextlib.suppress(OSError, asyncio.IncompleteReadError, RuntimeError):
        while data := await reader.read(65536):
            await flowing.wait()  # frozen: held, not forwarded
            if writer.is_closing():
                break
            writer.write(data)
            await writer.drain()
    writer.close()


class BlackHole:
    """Accepts TCP connections and never sends a byte."""

    def __init__(self) -> None:
        self.port = free_port()
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._hold, "127.0.0.1", self.port)

    async def _hold(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        with contextlib.suppress(OSError, ConnectionError):
            await reader.read()  # until the client gives up

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.close()
        await self.server.wait_closed()
