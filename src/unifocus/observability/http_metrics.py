"""Pure ASGI middleware recording request count, duration and in-progress gauges.

The route label is the matched route *template* (``scope["route"].path``, set by Starlette's
router once routing has happened) so ``/api/punches/123`` and ``/api/punches/456`` share one
series; requests that matched no route are labelled ``unmatched``. ``/metrics`` itself is not
counted (scrapes would otherwise dominate traffic and skew latency).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from unifocus.observability.metrics import (
    HTTP_REQUEST_DURATION,
    HTTP_REQUESTS,
    HTTP_REQUESTS_IN_PROGRESS,
    status_class,
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

EXCLUDED_PATHS = frozenset({"/metrics"})
UNMATCHED = "unmatched"


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, excluded_paths: frozenset[str] = EXCLUDED_PATHS) -> None:
        self.app = app
        self.excluded_paths = excluded_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in self.excluded_paths:
            await self.app(scope, receive, send)
            return

        method = str(scope.get("method", "GET")).upper()
        status = 500  # if the app raises before sending a response, the server answers 500
        in_progress = HTTP_REQUESTS_IN_PROGRESS.labels(method=method)

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        in_progress.inc()
        start = time.perf_counter()
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - start
            in_progress.dec()
            labels = {"route": route_template(scope), "method": method, "status_class": status_class(status)}
            HTTP_REQUESTS.labels(**labels).inc()
            HTTP_REQUEST_DURATION.labels(**labels).observe(elapsed)
