"""The AppError family and the one place that turns errors into problem+json (RFC 9457)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

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


class Unprocessable(AppError):
    """A semantically invalid body found by the handler (kept, like other domain answers)."""

    status, slug, title, kept = 422, "unprocessable-entity", "Unprocessable Entity", True


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
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or ".".join(str(p) for p in loc)


def validation_problem(exc: RequestValidationError) -> AppError:
    raw = exc.errors()
    if any(e.get("type") == "json_invalid" for e in raw):
        return BadRequest("The request body is not valid JSON.")
    errors = [{"field": _field(tuple(e.get("loc", ()))), "message": str(e.get("msg", ""))} for e in raw]
    return ValidationFailed("The request is invalid; see errors.", errors=errors)


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
        return problem_response(validation_problem(exc), request.url.path)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        slug, title = _STATUS_SLUGS.get(exc.status_code, ("http-error", "HTTP Error"))
        err = AppError(str(exc.detail), headers=dict(exc.headers or {}))
        err.status, err.slug, err.title = exc.status_code, slug, title
        return problem_response(err, request.url.path)

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        # A stack trace never reaches a client; it goes to the log with the request id, which
        # the client gets too. Starlette runs this handler outermost, outside the middleware
        # that adds X-Request-ID to every other answer and of the rate limiter's, so they are
        # added here (what those middlewares chose, from the request's state).
        request_id = getattr(request.state, "request_id", None)
        log.exception("unhandled error on %s %s (request_id %s)", request.method, request.url.path, request_id)
        response = problem_response(AppError("An unexpected error occurred."), request.url.path)
        if isinstance(request_id, str):
            response.headers["X-Request-ID"] = request_id
        for name, value in getattr(request.state, "ratelimit_headers", ()):
            response.headers[name.decode()] = value.decode()
        return response

    app.add_exception_handler(AppError, on_app_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
