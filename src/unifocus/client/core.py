"""What the sync and async clients share, all pure: a `Call` (one logical operation, with the
Idempotency-Key and X-Request-ID it keeps across its retries), the retry policy (exponential
backoff with full jitter, Retry-After honoured) and the answer's decoding."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Generic, TypeVar
from uuid import UUID

import httpx

from unifocus.client.errors import IN_PROGRESS, ApiError, error_from, parse_retry_after, problem_of

T = TypeVar("T")
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
RETRY_STATUSES = frozenset({429, 503})
# Transport errors that a retry cannot fix (a bad URL, a request httpx refused to send).
NOT_RETRIED: tuple[type[Exception], ...] = (httpx.UnsupportedProtocol, httpx.LocalProtocolError)
QueryValue = str | int | bool | UUID | date | datetime | None


@dataclass(frozen=True)
class RetryPolicy:
    """`max_attempts` tries in all; before try n+1 wait Retry-After when the answer named one
    (capped at `max_retry_after`), else a uniform draw in [0, min(max_delay, base_delay * 2**(n-1))]."""

    max_attempts: int = 5
    base_delay: float = 0.2
    max_delay: float = 10.0
    max_retry_after: float = 60.0

    def delay(self, attempt: int, retry_after: float | None = None,
              rand: Callable[[], float] = random.random) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_retry_after)
        return rand() * min(self.max_delay, self.base_delay * 2 ** max(0, attempt - 1))


@dataclass(frozen=True)
class ApiResponse:
    """One HTTP answer, as received."""

    status: int
    headers: httpx.Headers
    content: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def replayed(self) -> bool:
        return self.headers.get("idempotent-replayed") == "true"

    @property
    def location(self) -> str | None:
        return self.headers.get("location")

    @property
    def retry_after(self) -> float | None:
        return parse_retry_after(self.headers.get("retry-after"))

    @property
    def request_id(self) -> str | None:
        return self.headers.get("x-request-id")

    def json(self) -> Any:
        return json.loads(self.content) if self.content else None

    @property
    def text(self) -> str:
        return self.content.decode("utf-8")

    def error(self) -> ApiError:
        return error_from(self.status, self.headers, self.content)


def _json(resp: ApiResponse) -> Any:
    return resp.json()


def _text(resp: ApiResponse) -> str:
    return resp.text


def _none(resp: ApiResponse) -> None:
    return None


def query_value(value: QueryValue) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("instants need a time zone (an aware datetime)")
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def query(**values: QueryValue) -> dict[str, str]:
    """Keyword names are the wire names; `from_` stands for `from`. None values are left out."""
    out: dict[str, str] = {}
    for name, value in values.items():
        text = query_value(value)
        if text is not None:
            out[name.rstrip("_")] = text
    return out


@dataclass(frozen=True)
class Call(Generic[T]):
    """One logical operation. A write carries one Idempotency-Key for all of its tries."""

    method: str
    path: str
    decode: Callable[[ApiResponse], T]
    params: Mapping[str, str] = field(default_factory=dict)
    body: Any = None
    idempotency_key: str | None = None
    request_id: str | None = None
    auth: bool = True
    retry: bool = True
    accept: str = "application/json"

    @property
    def content(self) -> bytes | None:
        if self.body is None:
            return None
        return json.dumps(self.body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    def headers(self, token: str | None) -> dict[str, str]:
        headers = {"Accept": self.accept}
        if self.auth and token:
            headers["Authorization"] = f"Bearer {token}"
        if self.body is not None:
            headers["Content-Type"] = "application/json"
        if self.idempotency_key is not None:
            headers["Idempotency-Key"] = self.idempotency_key
        # One request id per send (all of its tries): the server's logs and audit entries carry it.
        headers["X-Request-ID"] = self.request_id or uuid.uuid4().hex
        return headers


def new_key() -> str:
    return str(uuid.uuid4())


def read(path: str, decode: Callable[[ApiResponse], T] = _json, *, params: Mapping[str, str] | None = None,
         request_id: str | None = None, auth: bool = True, retry: bool = True,
         accept: str = "application/json") -> Call[T]:
    return Call("GET", path, decode, dict(params or {}), None, None, request_id, auth, retry, accept)


def write(method: str, path: str, body: Any = None, decode: Callable[[ApiResponse], T] = _json, *,
          params: Mapping[str, str] | None = None, key: str | None = None,
          request_id: str | None = None) -> Call[T]:
    """A write: the key is generated here, once, so every retry of this call repeats it."""
    return Call(method, path, decode, dict(params or {}), body, key or new_key(), request_id)


def retryable(resp: ApiResponse) -> bool:
    """429, 503, and 409 idempotency-request-in-progress (the original is still running)."""
    if resp.status in RETRY_STATUSES:
        return True
    if resp.status == 409 and not resp.replayed:
        slug = str(problem_of(resp.content).get("type") or "").rstrip("/").rsplit("/", 1)[-1]
        return slug == IN_PROGRESS
    return False


def next_delay(policy: RetryPolicy, call: Call[Any], attempt: int, resp: ApiResponse | None,
               error: Exception | None = None) -> float | None:
    """Seconds to wait before another try of `call`, or None: give up (the caller raises).
    `resp` is None when the try failed in transport (`error`: connection refused or dropped,
    timeout); a write is safe to resend because it repeats its Idempotency-Key."""
    if not call.retry or attempt >= policy.max_attempts:
        return None
    if resp is None:
        return None if isinstance(error, NOT_RETRIED) else policy.delay(attempt)
    if not retryable(resp):
        return None
    return policy.delay(attempt, resp.retry_after)


def result(call: Call[T], resp: ApiResponse) -> T:
    if not resp.ok:
        raise resp.error()
    return call.decode(resp)


decode_json = _json
decode_text = _text
decode_none = _none
