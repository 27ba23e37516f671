"""Users of a tenant (admin). The last active admin can never be demoted or deactivated."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

import asyncpg

from unifocus.audit.writer import AuditEntry
from unifocus.auth.context import Caller, guard
from unifocus.db.writepath import WriteTx
from unifocus.errors import Conflict, Forbidden, NotFound
from unifocus.pagination import PageParams, page_of
from unifocus.users.schemas import User, UserCreate, UserPatch

COLUMNS = "tenant_id, id, email, role, employee_id, active, subject, created_at"


def to_user(row: Any) -> User:
    return User(id=row["id"], email=row["email"], role=row["role"], employee_id=row["employee_id"],
                active=row["active"], subject=row["subject"])


def _json(user: User) -> dict[str, Any]:
    return user.model_dump(mode="json", by_alias=True)


async def get(conn: asyncpg.Connection, caller: Caller, user_id: UUID, lock: bool = False) -> User:
    sql = f"SELECT {COLUMNS} FROM users WHERE tenant_id = $1 AND id = $2"  # noqa: S608
    row = await conn.fetchrow(sql + (" FOR UPDATE" if lock else ""), caller.tenant_id, user_id)
    if row is None:
        raise NotFound("No user with this id.")
    return to_user(guard(caller, row))


async def list_page(conn: asyncpg.Connection, caller: Caller, page: PageParams) -> dict[str, Any]:
    rows = await conn.fetch(
        f"SELECT {COLUMNS} FROM users WHERE tenant_id = $1 "  # noqa: S608
        "AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3)) "
        "ORDER BY created_at DESC, id DESC LIMIT $4",
        caller.tenant_id, *page.keyset(),
    )
    return page_of([guard(caller, r) for r in rows], page.limit, to_user)


async def _check_employee(tx: WriteTx, employee_id: UUID | None) -> None:
    if employee_id is None:
        return
    found = await tx.conn.fetchval(
        "SELECT 1 FROM employees WHERE tenant_id = $1 AND id = $2", tx.caller.tenant_id, employee_id
    )
    if not found:
        raise NotFound("employeeId names no employee of this tenant.")


async def create(tx: WriteTx, body: UserCreate) -> User:
    await _check_employee(tx, body.employee_id)
    user_id = uuid4()
    subject = body.subject or str(user_id)
    try:
        row = await tx.conn.fetchrow(
            f"INSERT INTO users (tenant_id, id, email, role, employee_id, subject) "  # noqa: S608
            f"VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLUMNS}",
            tx.caller.tenant_id, user_id, str(body.email), body.role.value, body.employee_id, subject,
        )
    except asyncpg.UniqueViolationError as exc:
        field = "email" if "email" in (exc.constraint_name or "") else "subject"
        raise Conflict(f"A user with this {field} already exists in this tenant.") from exc
    user = to_user(row)
    tx.audit(AuditEntry("User", "created", user.id, None, _json(user), employee_id=user.employee_id))
    return user


# Changes to a tenant's users go one at a time (transaction-scoped, so safe behind PgBouncer).
# Two admins demoting each other at once would otherwise both pass the last-admin check (or,
# with row locks instead, each hold its own target's row while waiting for the other's: a
# deadlock, which PostgreSQL breaks after `deadlock_timeout` with a 503). Queued, the second
# reads the admins after the first has committed: its caller no longer one, it gets 403; still
# one but about to lose the last, 409. User changes are rare, so the queue costs nothing.
USERS_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('unifocus.users:' || $1::uuid::text, 0))"
ACTIVE_ADMINS = "SELECT id FROM users WHERE tenant_id = $1 AND role = 'admin' AND active"


async def update(tx: WriteTx, user_id: UUID, patch: UserPatch) -> User:
    await tx.conn.execute(USERS_LOCK, tx.caller.tenant_id)
    admins = {r["id"] for r in await tx.conn.fetch(ACTIVE_ADMINS, tx.caller.tenant_id)}
    # The caller's role was read before the queue: a change committed meanwhile may have
    # taken it away, and an admin's power must not outlive it.
    if tx.caller.user_id not in admins:
        raise Forbidden("This operation needs the admin role.")
    before = await get(tx.conn, tx.caller, user_id, lock=True)
    fields = patch.model_dump(exclude_unset=True)
    after = before.model_copy(update=fields)
    if "employee_id" in fields:
        await _check_employee(tx, after.employee_id)
    losing_admin = before.role.value == "admin" and before.active and (
        after.role.value != "admin" or not after.active
    )
    if losing_admin and not admins - {user_id}:
        raise Conflict("The last active admin cannot be demoted or deactivated.")
    if after == before:
        return before
    await tx.conn.execute(
        "UPDATE users SET role = $3, active = $4, employee_id = $5, updated_at = now() "
        "WHERE tenant_id = $1 AND id = $2",
        tx.caller.tenant_id, user_id, after.role.value, after.active, after.employee_id,
    )
    tx.audit(AuditEntry("User", "updated", user_id, _json(before), _json(after), employee_id=after.employee_id))
    return after
