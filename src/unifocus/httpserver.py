"""uvicorn's httptools protocol, with each response leaving in one send instead of two.

uvicorn writes a response's status line and headers to the socket when the app sends
`http.response.start`, and the body when it sends `http.response.body`: two `send` syscalls
for every response, and the client is woken twice (once for a header block it cannot use
yet). On this service's 2-core reference machine a punch is ~1.5-2 ms of worker CPU, and
every send on loopback also wakes the peer, which takes a core from a worker (bench/README.md,
"Sixth session").

`CoalescingTransport` holds a write that comes alone and sends it with the next one: a plain
response's header block leaves with its body, at once, in one `writelines` (one `writev`). A
write that stays alone (a streamed response's header block while the app awaits its first
chunk, a `100 Continue`) is sent at the end of the event-loop turn it was made in, so nothing
waits longer than that. `close()` and `write_eof()` send what is held first, so nothing
written before them is lost.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class CoalescingTransport:
    """Wraps a stream transport; two writes in a row reach it as one `writelines`."""

    __slots__ = ("_transport", "_loop", "_held")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._held:  # the pair is complete: both leave now
            self._held.append(bytes(data))
            self.flush()
            return
        self._held.append(bytes(data))
        self._loop.call_soon(self.flush)  # alone: at the latest when this turn ends

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self.write(chunk)

    def flush(self) -> None:
        held, self._held = self._held, []
        # A peer that has gone drops what was held, as the transport itself would.
        if held and not self._transport.is_closing():
            self._transport.writelines(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._held = []
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(len(chunk) for chunk in self._held)

    def __getattr__(self, name: str) -> Any:
        # everything else (reading control, extra info, flow-control limits) is the transport's
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's `http="httptools"` protocol on a `CoalescingTransport`."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]
