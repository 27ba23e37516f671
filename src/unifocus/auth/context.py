"""Who is calling: the token's identity, then the user row (role, active) from the database."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
from fastapi import Request

from unifocus.auth.roles import Role
from unifocus.auth.tokens import Identity, TokenError, TokenVerifier
from unifocus.errors import Forbidden, TenantScopeViolation, Unauthorized
from unifocus.observability import hooks

log = logging.getLogger("unifocus.auth")


@dataclass(frozen=True)
class Caller:
    tenant_id: UUID
    user_id: UUID
    email: str
    role: Role
    employee_id: UUID | None
    request_id: str

    def is_staff(self) -> bool:
        return self.role.at_least(Role.manager)

    def sees_employee(self, employee_id: UUID) -> bool:
        """Staff see every employee of the tenant; an employee only their own record."""
        return self.is_staff() or self.employee_id == employee_id


NO_EMPLOYEE = object()  # the employee filter of a caller who can see no one (an unlinked employee user)


def employee_filter(caller: Caller, employee_id: UUID | None, what: str) -> UUID | None | object:
    """The employee filter a list runs with: staff any (or none); an employee user always
    their own record (asking for another is 403); NO_EMPLOYEE when they have none."""
    if caller.is_staff():
        return employee_id
    if employee_id is not None and employee_id != caller.employee_id:
        raise Forbidden(f"Employees can read only their own {what}.")
    return caller.employee_id if caller.employee_id is not None else NO_EMPLOYEE


async def bearer_identity(request: Request) -> Identity:
    """FastAPI dependency: verify the bearer token (401 on any problem)."""
    header = request.headers.get("authorization")
    if not header:
        hooks.auth_attempt("invalid_token")
        raise Unauthorized("A bearer token is required.")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        hooks.auth_attempt("invalid_token")
        raise Unauthorized("The Authorization header must be 'Bearer <token>'.")
    verified = getattr(request.state, "verified", None)
    if verified is not None and verified[0] == token.strip():
        identity: Identity = verified[1]  # already verified by the rate limiter
        request.state.tenant_id = str(identity.tenant_id)
        return identity
    verifier: TokenVerifier = request.app.state.verifier
    try:
        identity = await verifier.verify_async(token.strip())
    except TokenError as exc:
        hooks.auth_attempt(exc.reason)
        raise
    request.state.tenant_id = str(identity.tenant_id)
    return identity


@dataclass(frozen=True)
class Claim:
    """An idempotency claim to make in the same round trip as the caller lookup."""

    method: str
    path: str
    key: str
    fingerprint: bytes
    ttl_seconds: float


@dataclass(frozen=True)
class Prefetch:
    """A route's own reads, made in the same round trip as `enter` by a function that calls
    `unifocus_enter` first and takes the enter arguments ($1-$8), then `args`; it answers
    enter's columns plus `o_context` (e.g. `unifocus_enter_punch`, migration 0005)."""

    sql: str
    args: tuple[Any, ...]
    # The statement answers one composite value (its columns as fields), not a row.
    composite: bool = False


@dataclass(frozen=True)
class Entered:
    caller: Caller
    claimed: bool | None  # None: no key; True: this request owns it; False: stored answer below
    stored: Any = None
    context: Any = None  # the prefetch's `o_context`, if one was asked for


ENTER = "SELECT * FROM unifocus_enter($1, $2, $3, $4, $5, $6, $7, $8)"


def _uncounted(result: str) -> None:
    """An authentication already counted for this request."""


async def enter(
    conn: asyncpg.Connection, identity: Identity, request_id: str, min_role: Role,
    lock_timeout_ms: int | None = None, claim: Claim | None = None, prefetch: Prefetch | None = None,
    *, count: bool = True,
) -> Entered:
    """One round trip inside the request's transaction: set the tenant for RLS, load the
    caller (role and active come from the database), for a keyed write claim the key, and
    make the route's `prefetch` reads. `count`: add the outcome to the auth metric."""
    args: tuple[Any, ...] = (identity.tenant_id, identity.subject,
                             f"{lock_timeout_ms}ms" if lock_timeout_ms is not None else None)
    if claim is not None:
        args += (claim.method, claim.path, claim.key, claim.fingerprint, claim.ttl_seconds)
    else:
        args += (None, None, None, None, None)
    if prefetch is not None and prefetch.composite:
        row = await conn.fetchval(prefetch.sql, *args, *prefetch.args)
    elif prefetch is not None:
        row = await conn.fetchrow(prefetch.sql, *args, *prefetch.args)
    else:
        row = await conn.fetchrow(ENTER, *args)
    observe = hooks.auth_attempt if count else _uncounted
    if row is None or row["o_user_id"] is None:  # no row (enter_punch), or a NULL composite
        observe("unknown_user")
        raise Unauthorized("The token's user is not known.")
    if not row["o_active"]:
        observe("inactive")
        raise Forbidden("This user is deactivated.")
    caller = Caller(identity.tenant_id, row["o_user_id"], row["o_email"], Role(row["o_role"]),
                    row["o_employee_id"], request_id)
    if not caller.role.at_least(min_role):
        observe("forbidden")
        raise Forbidden(f"This operation needs the {min_role.value} role.")
    observe("success")
    return Entered(caller, row["o_claimed"], row, row["o_context"] if prefetch is not None else None)


def guard(caller: Caller, row: Any) -> Any:
    """The response guard: an entity of another tenant is never returned. It cannot happen
    with RLS and tenant-named queries; if it ever does, it is a 500, a log line and a count."""
    tenant = row["tenant_id"]
    if tenant != caller.tenant_id:
        hooks.tenant_scope_violation()
        log.error("tenant-scope violation: a row of another tenant was about to be returned")
        raise TenantScopeViolation("An unexpected error occurred.")
    return row
