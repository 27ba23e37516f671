"""Problem details (RFC 9457) answers as typed exceptions."""

from __future__ import annotations

import json
from typing import Any

import httpx

IN_PROGRESS = "idempotency-request-in-progress"
KEY_REUSED = "idempotency-key-reused"


class ApiError(Exception):
    """A non-2xx answer. `type` is the problem type URI; `errors` the per-field messages."""

    def __init__(
        self,
        status: int,
        type: str = "about:blank",
        title: str = "",
        detail: str = "",
        errors: list[dict[str, str]] | None = None,
        *,
        instance: str | None = None,
        retry_after: float | None = None,
        request_id: str | None = None,
        body: bytes = b"",
    ) -> None:
        super().__init__(f"{status} {title}: {detail}" if detail else f"{status} {title}")
        self.status = status
        self.type = type
        self.title = title
        self.detail = detail
        self.errors = errors or []
        self.instance = instance
        self.retry_after = retry_after
        self.request_id = request_id
        self.body = body

    @property
    def slug(self) -> str:
        """The last segment of `type`, e.g. `not-found`."""
        return self.type.rstrip("/").rsplit("/", 1)[-1]


class BadRequest(ApiError):
    """400: malformed request (bad JSON, bad Idempotency-Key, bad cursor)."""


class Unauthorized(ApiError):
    """401: missing or invalid credentials."""


class Forbidden(ApiError):
    """403: the caller's role may not do this (or the user is deactivated)."""


class NotFound(ApiError):
    """404: unknown id, or an id of another tenant."""


class Conflict(ApiError):
    """409: state conflict (duplicate email, overlapping shift, already resolved, ...)."""


class IdempotencyInProgress(Conflict):
    """409 `idempotency-request-in-progress`: retried automatically, raised after the last try."""


class ValidationError(ApiError):
    """422: semantically invalid body (see `errors`)."""


class IdempotencyKeyReused(ApiError):
    """422 `idempotency-key-reused`: the same key was used with another request."""


class RateLimited(ApiError):
    """429: retried automatically (honouring Retry-After), raised after the last try."""


class ServiceUnavailable(ApiError):
    """503: a dependency is down; retried automatically, raised after the last try."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound, 409: Conflict,
    422: ValidationError, 429: RateLimited, 503: ServiceUnavailable,
}


def parse_retry_after(value: str | None) -> float | None:
    """Delay-seconds form only (what this API sends); an HTTP date is ignored."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return max(0.0, seconds)


def problem_of(content: bytes) -> dict[str, Any]:
    try:
        data = json.loads(content) if content else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def error_class(status: int, slug: str) -> type[ApiError]:
    if slug == KEY_REUSED:
        return IdempotencyKeyReused
    if slug == IN_PROGRESS:
        return IdempotencyInProgress
    return _BY_STATUS.get(status, ApiError)


def error_from(status: int, headers: httpx.Headers, content: bytes) -> ApiError:
    """The typed exception for an error answer (problem+json or not)."""
    problem = problem_of(content)
    ptype = str(problem.get("type") or "about:blank")
    slug = ptype.rstrip("/").rsplit("/", 1)[-1]
    title = str(problem.get("title") or httpx.codes.get_reason_phrase(status))
    raw_errors = problem.get("errors")
    errors = [e for e in raw_errors if isinstance(e, dict)] if isinstance(raw_errors, list) else []
    cls = error_class(status, slug)
    return cls(
        status, ptype, title, str(problem.get("detail") or ""), errors,
        instance=problem.get("instance"), retry_after=parse_retry_after(headers.get("retry-after")),
        request_id=headers.get("x-request-id"), body=content,
    )
