"""The AppError family and the one place that turns errors into problem+json (RFC 9457)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic.alias_generators import to_camel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import get_route_path

from unifocus.observability.logging import mark_logged

PROBLEM_BASE = "https://unifocus.dev/problems/"
PROBLEM_JSON = "application/problem+json"

log = logging.getLogger("unifocus.errors")


def one_line(exc: BaseException, default: str | None = None) -> str:
    """An error's text for a log or terminal line: a ServiceUnavailable's `detail`, the
    driver's error SQLAlchemy wraps (`orig`: its own text adds the SQL and a link), else its
    own, on one line (libpq puts its hint on a second: "Is the server running ..."); when it
    has none, `default`, else the error's type."""
    text = getattr(exc, "detail", None) or str(getattr(exc, "orig", None) or exc).strip()
    return " ".join(str(text).split()) or default or type(exc).__name__


class AppError(Exception):
    """An error a client is told about. `kept` errors are domain answers (404, 409, ...)
    that the idempotency store keeps; the others are refusals before the handler ran."""

    status = 500
    slug = "internal-error"
    title = "Internal Server Error"
    kept = False

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.errors = errors
        self.headers = headers or {}


class BadRequest(AppError):
    status, slug, title = 400, "bad-request", "Bad Request"


class InvalidIdempotencyKey(AppError):
    status, slug, title = 400, "invalid-idempotency-key", "Invalid Idempotency-Key"


class Unauthorized(AppError):
    status, slug, title = 401, "unauthorized", "Unauthorized"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


class Forbidden(AppError):
    status, slug, title = 403, "forbidden", "Forbidden"


class NotFound(AppError):
    status, slug, title, kept = 404, "not-found", "Not Found", True


class Conflict(AppError):
    status, slug, title, kept = 409, "conflict", "Conflict", True


class IdempotencyInProgress(AppError):
    status, slug, title = 409, "idempotency-request-in-progress", "Request In Progress"


class PayloadTooLarge(AppError):
    status, slug, title = 413, "payload-too-large", "Payload Too Large"


class HeadersTooLarge(AppError):
    status, slug, title = 431, "request-header-fields-too-large", "Request Header Fields Too Large"


class Unprocessable(AppError):
    """A semantically invalid body found by the handler (kept, like other domain answers)."""

    status, slug, title, kept = 422, "unprocessable-entity", "Unprocessable Entity", True


class UnsupportedMediaType(AppError):
    """A body in a media type the operation does not take (not kept: refused before the
    handler, like a body that is not JSON)."""

    status, slug, title = 415, "unsupported-media-type", "Unsupported Media Type"


class ValidationFailed(AppError):
    """Schema validation before the handler ran (not kept)."""

    status, slug, title = 422, "validation-failed", "Validation Failed"


class IdempotencyKeyReused(AppError):
    status, slug, title = 422, "idempotency-key-reused", "Idempotency-Key Reused"


class RateLimited(AppError):
    status, slug, title = 429, "rate-limited", "Too Many Requests"


class ServiceUnavailable(AppError):
    status, slug, title = 503, "service-unavailable", "Service Unavailable"

    def __init__(self, detail: str | None = None, retry_after: int = 5) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


class TenantScopeViolation(AppError):
    """An entity of another tenant was about to be returned: never sent, always counted."""

    status, slug, title = 500, "internal-error", "Internal Server Error"


def problem_body(
    status: int, slug: str, title: str, detail: str, instance: str | None, errors: Any = None
) -> bytes:
    body: dict[str, Any] = {"type": PROBLEM_BASE + slug, "title": title, "status": status, "detail": detail}
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = errors
    return orjson.dumps(body)


def problem_response(error: AppError, instance: str | None = None) -> Response:
    body = problem_body(error.status, error.slug, error.title, error.detail, instance, error.errors)
    return Response(body, status_code=error.status, media_type=PROBLEM_JSON, headers=error.headers)


def _field(loc: tuple[Any, ...]) -> str:
    """The `errors[].field` of a validation error. Body fields come by their camelCase JSON
    names and query parameters by their camelCase aliases; a path parameter comes by its
    Python name in the route (`employee_id`), so it is spelt camelCase here (`employeeId`):
    one naming for a client."""
    if len(loc) >= 2 and loc[0] in ("path", "query") and isinstance(loc[1], str):
        loc = (loc[0], to_camel(loc[1]), *loc[2:])
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or ".".join(str(p) for p in loc)


# The type a 415 names. FastAPI parses `application/json` and `application/*+json` as JSON,
# with any parameters (`; charset=utf-8`) and in any case; a body of any other type (or with
# no type) it hands to validation as raw bytes, which then failed as "not a valid
# dictionary": a 422 that said nothing of the real mistake.
ACCEPTED_MEDIA_TYPE = "application/json"


def unsupported_media_type(exc: RequestValidationError, content_type: str | None) -> AppError | None:
    """415 when the route takes a body and FastAPI did not parse this one as JSON, which is
    exactly when the body it validated is raw bytes (json.loads never returns bytes). FastAPI's
    own test, so the answer cannot disagree with what it parses. An empty body stays a
    missing one (422)."""
    if not isinstance(exc.body, bytes) or not exc.body:
        return None
    got = f"Content-Type {content_type[:100]}" if content_type else "no Content-Type"
    return UnsupportedMediaType(
        f"The request body must be {ACCEPTED_MEDIA_TYPE} (or an application/*+json type); it was sent with {got}.")


def validation_problem(exc: RequestValidationError, content_type: str | None = None) -> AppError:
    unsupported = unsupported_media_type(exc, content_type)
    if unsupported is not None:
        return unsupported
    raw = exc.errors()
    if any(e.get("type") == "json_invalid" for e in raw):
        return BadRequest("The request body is not valid JSON.")
    errors = [{"field": _field(tuple(e.get("loc", ()))), "message": str(e.get("msg", ""))} for e in raw]
    return ValidationFailed("The request is invalid; see errors.", errors=errors)


def allowed_methods(routes: Any, path: str) -> set[str]:
    """Every method of every route whose template matches `path` (RFC 9110 15.5.6: a 405's
    `Allow` lists all the methods the target supports). Starlette names only the first route
    that matched the path (`/api/employees` is two routes, GET and POST). A route of literal
    segments wins over a template that also matches (`/api/punches/batch` is not the punch
    `batch` of `/api/punches/{punch_id}`); the routes of `refuse_methods` add nothing. Only
    405 answers pay for the walk."""
    literal: set[str] = set()
    templated: set[str] = set()
    for route, is_literal in matching_routes(routes, path):
        if not refuses_methods(route):
            (literal if is_literal else templated).update(getattr(route, "methods", None) or ())
    return literal or templated


def matching_routes(routes: Any, path: str) -> Iterator[tuple[Any, bool]]:
    """(route, whether its path is all literal segments) of every route whose template
    matches `path`, in the router's order. Included routers are walked, as FastAPI keeps them
    (`original_router`)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from matching_routes(included.routes, path)
            continue
        regex = getattr(route, "path_regex", None)
        if regex is not None and regex.match(path):
            yield route, not getattr(route, "param_convertors", None)


async def _method_not_allowed(request: Request) -> Response:
    raise StarletteHTTPException(405)


def refuses_methods(route: Any) -> bool:
    """A route of `refuse_methods`: it answers 405 and runs nothing (route tables that look
    for writes skip it)."""
    route = getattr(route, "original_route", route)
    return getattr(route, "endpoint", None) is _method_not_allowed


def refuse_methods(router: Any, path: str, methods: list[str]) -> None:
    """Answer 405 (with the literal route's `Allow`) to `methods` on `path`, a literal path
    that a template of the same router also matches: without it, `GET /api/punches/batch`
    reaches `GET /api/punches/{punch_id}` and is refused as a malformed id (422). Register
    it before the template. A plain Starlette route, not an operation: not in the OpenAPI
    document, the metrics' operations or the route tables the tests walk (APIRoutes)."""
    router.add_route(router.prefix + path, _method_not_allowed, methods=methods, include_in_schema=False)


_STATUS_SLUGS = {404: ("not-found", "Not Found"), 405: ("method-not-allowed", "Method Not Allowed")}


def install_error_handlers(
    app: FastAPI, caller_first: Callable[[Request], Awaitable[None]] | None = None
) -> None:
    """`caller_first(request)`, when given, runs before a request is refused as invalid and
    raises the AppError (401, 403, ...) to answer instead (db/writepath.py `caller_first`)."""

    async def on_app_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, AppError)
        return problem_response(exc, request.url.path)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        if caller_first is not None:
            try:
                # A lookup that fails is logged and ignored there (`check_caller`): the answer
                # is then the 400/422 below, never a 500.
                await caller_first(request)
            except AppError as refused:  # 401/403, or 503 when the database is unavailable
                return problem_response(refused, request.url.path)
        problem = validation_problem(exc, request.headers.get("content-type"))
        if isinstance(problem, UnsupportedMediaType):
            # Which media type the method takes: Accept-Patch (RFC 5789), Accept-Post (W3C
            # LDP, registered with IANA); PUT has no such header.
            advertised = {"POST": "Accept-Post", "PATCH": "Accept-Patch"}.get(request.method)
            if advertised:
                problem.headers[advertised] = ACCEPTED_MEDIA_TYPE
        return problem_response(problem, request.url.path)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        slug, title = _STATUS_SLUGS.get(exc.status_code, ("http-error", "HTTP Error"))
        err = AppError(str(exc.detail), headers=dict(exc.headers or {}))
        err.status, err.slug, err.title = exc.status_code, slug, title
        if exc.status_code == 405:
            methods = allowed_methods(request.app.routes, get_route_path(request.scope))
            if methods:
                err.headers["Allow"] = ", ".join(sorted(methods))
        return problem_response(err, request.url.path)

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        # A stack trace never reaches a client; it goes to the log with the request id, which
        # the client gets too. Starlette runs this handler outermost, outside the middleware
        # that adds X-Request-ID to every other answer and of the rate limiter's, so they are
        # added here (what those middlewares chose, from the request's state).
        request_id = getattr(request.state, "request_id", None)
        log.exception("unhandled error on %s %s (request_id %s)", request.method, request.url.path, request_id)
        # Starlette raises it again once this answer is sent, and uvicorn would log the same
        # traceback a second time, without the request id: marked, that copy is dropped.
        mark_logged(exc)
        response = problem_response(AppError("An unexpected error occurred."), request.url.path)
        # The server closes this connection once the error has propagated past the answer
        # (uvicorn drops the transport): said here, a client opens a new one for its next
        # request instead of sending it into a closing socket.
        response.headers["Connection"] = "close"
        if isinstance(request_id, str):
            response.headers["X-Request-ID"] = request_id
        for name, value in getattr(request.state, "ratelimit_headers", ()):
            response.headers[name.decode()] = value.decode()
        return response

    app.add_exception_handler(AppError, on_app_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
