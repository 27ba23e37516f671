"""Problem responses documented on every operation."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class FieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details (`application/problem+json`)."""

    type: str = Field(description="A URI naming the problem; ends in a stable slug.")
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[FieldError] | None = None


_DESCRIPTIONS = {
    400: "Malformed request: invalid JSON, a bad cursor, or a malformed `Idempotency-Key`.",
    401: "Missing, malformed, expired or otherwise invalid bearer token, or unknown user.",
    403: "The caller's role does not allow this, or the user is deactivated.",
    404: "No such id in the caller's tenant (an id of another tenant is also 404).",
    409: "State conflict, or `idempotency-request-in-progress` (with `Retry-After`).",
    413: "The request body is too large.",
    415: "The body is not sent as `application/json` (or an `application/*+json` type).",
    422: "Invalid body or parameters, or `idempotency-key-reused` with another request.",
    429: "Rate limited; see `Retry-After` and the `RateLimit-*` headers.",
    503: "A dependency (the database, or the token issuer's signing keys) is unavailable; see `Retry-After`.",
}


def errors(*codes: int, write: bool = False) -> dict[int | str, dict[str, Any]]:
    wanted = {400, 401, 403, 422, 429, 503, *codes}
    if write:
        wanted |= {409, 413}
    return {
        code: {"model": Problem, "description": _DESCRIPTIONS[code],
               "content": {"application/problem+json": {}}}
        for code in sorted(wanted)
    }


def add_bearer_security(schema: dict[str, Any]) -> dict[str, Any]:
    """Document the bearer JWT on every /api operation (health and metrics need none)."""
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})["bearerAuth"] = {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "HS256 (UNIFOCUS_JWT_SECRET) or an OIDC issuer's RS256/ES256 keys (UNIFOCUS_JWKS_URL); "
        "the token names the tenant and the user, never the role.",
    }
    for path, operations in schema.get("paths", {}).items():
        if path.startswith("/api/"):
            for operation in operations.values():
                if isinstance(operation, dict):
                    operation["security"] = [{"bearerAuth": []}]
    return schema


def add_unsupported_media_type(schema: dict[str, Any]) -> dict[str, Any]:
    """Document 415 on every operation that takes a JSON body, read from the document itself
    (its `requestBody`), so a new write route is covered without naming it. Its schema is
    the one FastAPI wrote for the operation's other problems (`Problem`)."""
    problem = {"$ref": "#/components/schemas/Problem"}
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            if isinstance(operation, dict) and "requestBody" in operation:
                responses = operation.setdefault("responses", {})
                responses["415"] = {"description": _DESCRIPTIONS[415],
                                    "content": {"application/problem+json": {"schema": problem}}}
                operation["responses"] = dict(sorted(responses.items()))  # in status order
    return schema
