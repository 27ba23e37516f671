"""A typed client for the Unifocus API: `Client` (sync) and `AsyncClient` (asyncio).

Every write sends one `Idempotency-Key` (uuid4, or `key=`) on all of its tries; connection
errors, 409 `idempotency-request-in-progress`, 429 and 503 are retried with exponential
backoff and full jitter, honouring `Retry-After`. Problem answers raise typed `ApiError`s.
"""

from unifocus.client.aio import AsyncClient
from unifocus.client.core import ApiResponse, Call, RetryPolicy
from unifocus.client.errors import (
    ApiError,
    BadRequest,
    Conflict,
    Forbidden,
    IdempotencyInProgress,
    IdempotencyKeyReused,
    NotFound,
    RateLimited,
    ServiceUnavailable,
    Unauthorized,
    ValidationError,
)
from unifocus.client.sync import Client

__all__ = [
    "ApiError", "ApiResponse", "AsyncClient", "BadRequest", "Call", "Client", "Conflict", "Forbidden",
    "IdempotencyInProgress", "IdempotencyKeyReused", "NotFound", "RateLimited", "RetryPolicy",
    "ServiceUnavailable", "Unauthorized", "ValidationError",
]
