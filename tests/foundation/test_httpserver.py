"""The served protocol's transport: a response's pieces leave together, and nothing is held
past one turn of the event loop or lost on close. Real sockets, on the loop `unifocus serve`
runs (uvloop) and on asyncio's own."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

import pytest
import uvloop

from unifocus.httpserver import CoalescingTransport

HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"
LOOPS = {"uvloop": uvloop.new_event_loop, "asyncio": asyncio.new_event_loop}


def run_on(loop_name: str, scenario: Callable[[CoalescingTransport, socket.socket], Awaitable[None]]) -> None:
    async def main() -> None:
        ours, peer = socket.socketpair()
        peer.setblocking(False)
        loop = asyncio.get_running_loop()
        transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, ours)
        try:
            await scenario(CoalescingTransport(transport, loop), peer)  # type: ignore[arg-type]
        finally:
            transport.close()
            peer.close()

    loop = LOOPS[loop_name]()
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()


async def turn() -> None:
    """Let the loop finish its current turn (and run what was scheduled in it)."""
    for _ in range(3):
        await asyncio.sleep(0)


def received(peer: socket.socket) -> bytes:
    try:
        return peer.recv(65536)
    except BlockingIOError:
        return b""


@pytest.mark.parametrize("loop_name", LOOPS)
def test_a_header_block_leaves_with_its_body_at_once(loop_name: str) -> None:
    async def scenario(transport: CoalescingTransport, peer: socket.socket) -> None:
        transport.write(HEAD)
        # the client never sees a header block without its body
        assert received(peer) == b""
        assert transport.get_write_buffer_size() == len(HEAD)
        transport.write(b"ok")
        assert received(peer) == HEAD + b"ok", "sent with the body, not at the end of the turn"
        await turn()
        assert received(peer) == b"", "nothing sent twice"

    run_on(loop_name, scenario)


@pytest.mark.parametrize("loop_name", LOOPS)
def test_a_streamed_header_block_leaves_when_the_writer_yields(loop_name: str) -> None:
    async def scenario(transport: CoalescingTransport, peer: socket.socket) -> None:
        transport.write(HEAD)
        await turn()  # a streaming response awaiting its next chunk
        assert received(peer) == HEAD
        transport.writelines([b"o", b"k"])
        await turn()
        assert received(peer) == b"ok"

    run_on(loop_name, scenario)


@pytest.mark.parametrize("loop_name", LOOPS)
def test_close_sends_what_was_written_before_it(loop_name: str) -> None:
    async def scenario(transport: CoalescingTransport, peer: socket.socket) -> None:
        transport.write(HEAD)
        transport.close()  # uvicorn closes right after the last write of a `Connection: close` response
        await turn()
        assert received(peer) == HEAD
        peer.settimeout(5)
        assert peer.recv(65536) == b"", "the connection is closed after the data"

    run_on(loop_name, scenario)


@pytest.mark.parametrize("loop_name", LOOPS)
def test_abort_drops_what_was_held(loop_name: str) -> None:
    async def scenario(transport: CoalescingTransport, peer: socket.socket) -> None:
        transport.write(HEAD)
        transport.abort()
        await turn()
        assert received(peer) == b""
        assert transport.get_write_buffer_size() == 0

    run_on(loop_name, scenario)
