"""Graceful shutdown: on SIGTERM, /ready answers 503 `shutting_down` for a short drain delay
(so load balancers stop sending), then the server stops accepting and lets requests in
flight finish (uvicorn's graceful timeout), all within UNIFOCUS_SHUTDOWN_GRACE_SECONDS."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

log = logging.getLogger("unifocus.lifecycle")


class Drain:
    """Whether this app is draining after SIGTERM (`app.state.drain`): /ready reads it, and so
    does every answer (observability middleware: `Connection: close`), hence a plain attribute
    of an object the middleware holds, not a lookup through `app.state` per request."""

    active = False


def install_drain_handler(app: Any, drain_seconds: float) -> bool:
    """Only under a server that handles SIGTERM itself (uvicorn); returns whether installed."""
    previous = signal.getsignal(signal.SIGTERM)
    if not callable(previous):
        return False
    loop = asyncio.get_running_loop()

    def hand_over() -> None:
        loop.remove_signal_handler(signal.SIGTERM)
        signal.signal(signal.SIGTERM, previous)
        previous(signal.SIGTERM, None)  # uvicorn: stop accepting, finish in-flight requests

    def on_sigterm() -> None:
        if app.state.drain.active:
            return
        app.state.drain.active = True
        log.info("SIGTERM: draining for %.1fs, then finishing in-flight requests", drain_seconds)
        loop.call_later(drain_seconds, hand_over)

    loop.add_signal_handler(signal.SIGTERM, on_sigterm)
    return True
