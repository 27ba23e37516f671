"""POST /api/punches without FastAPI's per-request plumbing, for the requests it would accept.

Every time clock sends this request, and FastAPI's route matching, dependency solving and
request/response wrapping cost about as much worker CPU as the exception engine (a profile of
the route in-process: ~15% of a punch's Python time, bench/README.md). This layer answers a
well-formed punch itself with exactly what the route does: the same `writer` dependency (token,
Idempotency-Key, body), the same handler (`routes.create`), the app's own exception handlers
(Starlette's ExceptionMiddleware built from them, as FastAPI builds it), and the matched route
in the scope, so metrics and access lines name `/api/punches` as before.

Anything else goes to the FastAPI route untouched, with the body replayed: another content
type, a body that is not JSON or not a valid `PunchCreate`. Those answers (415 for a type
that is neither `application/json` nor `application/*+json`, 422 with the validation errors,
401 before either, ...) are the route's own, so
the fast path can only differ from the route on requests where both run the same code.
`tests/punches/test_fast_route.py` compares the two answer for answer.
`UNIFOCUS_FAST_PUNCH_ROUTE=false` turns the layer off.
"""

from __future__ import annotations

import orjson
from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from unifocus.auth.roles import Role
from unifocus.db.writepath import writer
from unifocus.limits.middleware import replay_body
from unifocus.punches.routes import create, router
from unifocus.punches.schemas import PunchCreate

PATH = "/api/punches"
_BODY_KEY = "unifocus.punch"


def _is_json(scope: Scope) -> bool:
    """`application/json`, with or without parameters: the content type FastAPI parses as JSON
    for certain. Other spellings (`+json` subtypes, none at all) take the route."""
    for key, value in scope.get("headers", ()):
        if key == b"content-type":
            return value.split(b";", 1)[0].strip().lower() == b"application/json"
    return False


def parse(scope: Scope, body: bytes) -> PunchCreate | None:
    """The punch, when FastAPI would accept this body as one; None sends it to the route.
    orjson is stricter than the json module FastAPI uses (no NaN, no lone surrogates, no
    integers past 64 bits), so what it parses, json parses to the same value."""
    if not body or not _is_json(scope):
        return None
    try:
        return PunchCreate.model_validate(orjson.loads(body))
    except (orjson.JSONDecodeError, ValidationError):
        return None


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


class PunchFastPath:
    """Pure ASGI, innermost of the app's middleware (inside the limits and the rate limit)."""

    def __init__(self, app: ASGIApp, owner: FastAPI) -> None:
        self.app = app
        self.owner = owner
        self.dependency = writer(Role.employee)
        self.route: APIRoute | None = None
        self.handled: ASGIApp | None = None

    def _prepare(self) -> tuple[APIRoute, ASGIApp]:
        """The route object and the exception handling, once the app is complete."""
        if self.route is None or self.handled is None:
            # From the punches router itself: how FastAPI nests included routers in app.routes
            # differs between its versions.
            self.route = next(r for r in router.routes
                              if isinstance(r, APIRoute) and r.path == PATH and "POST" in (r.methods or ()))
            # As FastAPI builds its ExceptionMiddleware: every handler but the catch-all, which
            # the outermost ServerErrorMiddleware runs for us as for every route.
            handlers = {k: v for k, v in self.owner.exception_handlers.items() if k not in (500, Exception)}
            self.handled = ExceptionMiddleware(self._answer, handlers=handlers)
        return self.route, self.handled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope.get("method") != "POST" or scope.get("path") != PATH
                or scope.get("root_path")):
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:
            return  # the client went away
        punch = parse(scope, body)
        if punch is None:
            await self.app(scope, replay_body(body, receive), send)
            return
        route, handled = self._prepare()
        scope["route"] = route
        scope["endpoint"] = route.endpoint
        scope[_BODY_KEY] = punch
        await handled(scope, replay_body(body, receive), send)

    async def _answer(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        w = await self.dependency(request)
        response = await create(scope[_BODY_KEY], w)
        await response(scope, receive, send)


def install(app: FastAPI) -> None:
    """Add the layer (before the other middleware, so it runs innermost)."""
    app.add_middleware(PunchFastPath, owner=app)
