"""One pure-ASGI layer per request for what operators need: the request id (accepted when
sane, else generated, always echoed), the HTTP metrics, and one JSON access line."""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Iterable, Iterator
from typing import Any

import structlog
from fastapi.routing import APIRoute
from starlette.routing import get_route_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from unifocus.errors import matching_routes
from unifocus.lifecycle import Drain
from unifocus.observability.metrics import (
    HTTP_REQUEST_DURATION,
    HTTP_REQUESTS,
    HTTP_REQUESTS_IN_PROGRESS,
    child,
    status_class,
)

# /metrics is not counted: scrapes would dominate the traffic and skew the latency figures.
EXCLUDED_PATHS = frozenset({"/metrics"})
UNMATCHED = "unmatched"
# The probe routes, which the error-rate and availability rules leave out of both sides of
# their ratios (`route!~"/health|/ready"` in deploy/prometheus/alerts.yml).
PROBE_ROUTES = frozenset({"/health", "/ready"})
# The status class those rules count as errors (`status_class="5xx"`): every 5xx code, 500
# and 503 alike, is this one label value.
ERROR_CLASS = "5xx"


def route_template(scope: Scope) -> str:
    """The matched route's template (`/api/punches/{punch_id}`), never the raw path: one series
    per route, and no ids in label values. Requests that matched no route are `unmatched`."""
    path = getattr(scope.get("route"), "path", None)
    if isinstance(path, str) and path:
        return path
    # No route in the scope: a request refused before routing (413, a client gone mid-body,
    # 429) or answered by a plain Starlette route, which sets none (/openapi.json, /docs, the
    # 405 of `refuse_methods`). The template of the app's route its path matches, so an
    # operator sees which endpoint got them; only these requests pay for the walk, and the
    # label is still one of the app's templates. A path no route matches (a 404) is `unmatched`.
    app = scope.get("app")
    return _template(getattr(app, "routes", ()), get_route_path(scope)) or UNMATCHED


def _template(routes: Iterable[Any], path: str) -> str | None:
    """The template of the route matching `path`: a route of literal segments before a template
    that also matches (`/api/punches/batch`, not `/api/punches/{punch_id}`), as `Allow` does."""
    templated: str | None = None
    for route, literal in matching_routes(routes, path):
        if literal:
            return str(route.path)
        templated = templated or str(route.path)
    return templated


def api_operations(routes: Iterable[Any]) -> Iterator[tuple[str, str]]:
    """(route template, method) of every operation of the app's routers, with the template
    exactly as route_template() labels a request the route answers: the APIRoute object's
    own `path`, which is what FastAPI puts in scope["route"] (nested included routers are
    walked: FastAPI keeps them as `_IncludedRouter` entries with an `original_router`)."""
    for route in routes:
        if isinstance(route, APIRoute):
            for method in sorted(route.methods or ()):
                yield route.path, method
            continue
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from api_operations(included.routes)


def declare_error_series(routes: Iterable[Any]) -> int:
    """Create `unifocus_http_requests_total{status_class="5xx"}` at 0 for every operation the
    error-rate and availability SLO rules count (each route template of the app's routers x
    each method that route has; not the probes, not /metrics, not `unmatched`). Called by
    each worker when it starts, so a healthy service exposes the rules' error input as 0
    rather than no series at all, and Prometheus's rate()/increase() count the first 5xx after
    a restart (a series first seen at 1 has no earlier sample to count it from). In
    multiprocess mode creating the child writes it, at 0, to this worker's file, so /metrics
    shows it whichever worker serves the scrape. A 0 adds nothing to the ratios' denominators.
    Returns how many series were declared (one per operation: bounded by the router)."""
    operations = sorted({op for op in api_operations(routes)
                         if op[0] not in PROBE_ROUTES and op[0] not in EXCLUDED_PATHS})
    for route, method in operations:
        child(HTTP_REQUESTS, route, method, ERROR_CLASS)
    return len(operations)


_SANE_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
access_log = logging.getLogger("unifocus.access")


def _incoming_id(scope: Scope) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == b"x-request-id":
            text = value.decode("latin-1")
            return text if _SANE_ID.match(text) else None
    return None


# Added to every answer while draining after SIGTERM (lifecycle.py): the server stops
# accepting once the drain ends and closes idle keep-alive connections, so a client that
# reused one would send its next request into a closing socket. Told to close, it opens a new
# connection (through the load balancer, to a replica still serving).
_CLOSE = (b"connection", b"close")
# nginx's "client closed request": logged and counted for a request whose client went away
# before any answer (`scope["state"][CLIENT_GONE]`, set where the disconnect is seen).
CLIENT_CLOSED = 499
CLIENT_GONE = "client_gone"


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp, drain: Drain | None = None) -> None:
        self.app = app
        self.drain = drain or Drain()  # the app's (`app.state.drain`); a bare one never drains

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_id(scope) or secrets.token_hex(16)  # 32 hex digits, as uuid4().hex but cheaper
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        header = (b"x-request-id", request_id.encode())
        status = 0  # no answer started yet

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message["headers"] = [*message.get("headers", ()), header]
                if self.drain.active:
                    message["headers"].append(_CLOSE)
            await send(message)

        counted = scope.get("path") not in EXCLUDED_PATHS
        method = scope.get("method", "GET")
        if counted:
            child(HTTP_REQUESTS_IN_PROGRESS, method).inc()
        start = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            # No answer started: the client went away mid-body (499, the client's doing, kept out
            # of the 5xx rate the alerts watch), or else an error, a cancellation (uvicorn's
            # graceful timeout) or an app that never answered: the server sends a 500.
            status = status or (CLIENT_CLOSED if state.get(CLIENT_GONE) else 500)
            elapsed = time.perf_counter() - start
            route = route_template(scope)
            if counted:
                child(HTTP_REQUESTS_IN_PROGRESS, method).dec()
                labels = (route, method, status_class(status))
                child(HTTP_REQUESTS, *labels).inc()
                child(HTTP_REQUEST_DURATION, *labels).observe(elapsed)
            _log_access(request_id, state, method, route, status, elapsed)


def _log_access(request_id: str, state: dict, method: str, route: str, status: int, elapsed: float) -> None:
    if not access_log.isEnabledFor(logging.INFO):
        return
    structlog.get_logger("unifocus.access").info(
        "request",
        request_id=request_id,
        tenant_id=state.get("tenant_id"),
        user_id=state.get("user_id"),
        method=method,
        route=route,
        status=status,
        duration_ms=round(elapsed * 1000, 2),
    )
