"""Reading and resolving exceptions (the engine that raises them is engine.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast
from uuid import UUID

import asyncpg

from unifocus.audit.writer import AuditEntry
from unifocus.auth.context import NO_EMPLOYEE, Caller, employee_filter, guard
from unifocus.db.writepath import WriteTx
from unifocus.errors import Conflict, NotFound
from unifocus.pagination import EMPTY_PAGE, PageParams, page_of
from unifocus.timeexceptions.engine import EXCEPTION_COLS, exception_json
from unifocus.timeexceptions.schemas import ExceptionStatus, ExceptionType, ResolveRequest, TimeException


def to_exception(row: Any) -> TimeException:
    return TimeException.model_validate(exception_json(row))


async def get(conn: asyncpg.Connection, caller: Caller, exception_id: UUID, lock: bool = False) -> Any:
    row = await conn.fetchrow(
        f"SELECT {EXCEPTION_COLS} FROM exceptions WHERE tenant_id = $1 AND id = $2"  # noqa: S608
        + (" FOR UPDATE" if lock else ""),
        caller.tenant_id, exception_id,
    )
    if row is None or not caller.sees_employee(row["employee_id"]):
        raise NotFound("No exception with this id.")
    return guard(caller, row)


async def list_page(
    conn: asyncpg.Connection, caller: Caller, page: PageParams, status: ExceptionStatus | None,
    kind: ExceptionType | None, employee_id: UUID | None, start: datetime | None, end: datetime | None,
) -> dict[str, Any]:
    scoped = employee_filter(caller, employee_id, "exceptions")
    if scoped is NO_EMPLOYEE:
        return EMPTY_PAGE
    employee_id = cast(UUID | None, scoped)
    rows = await conn.fetch(
        f"SELECT {EXCEPTION_COLS} FROM exceptions WHERE tenant_id = $1 "  # noqa: S608
        "AND ($2::text IS NULL OR status = $2) AND ($3::text IS NULL OR type = $3) "
        "AND ($4::uuid IS NULL OR employee_id = $4) AND ($5::timestamptz IS NULL OR created_at >= $5) "
        "AND ($6::timestamptz IS NULL OR created_at < $6) "
        "AND ($7::timestamptz IS NULL OR (created_at, id) < ($7, $8)) ORDER BY created_at DESC, id DESC LIMIT $9",
        caller.tenant_id, status.value if status else None, kind.value if kind else None, employee_id,
        start, end, *page.keyset(),
    )
    return page_of([guard(caller, r) for r in rows], page.limit, to_exception)


async def resolve(tx: WriteTx, exception_id: UUID, body: ResolveRequest) -> TimeException:
    before = await get(tx.conn, tx.caller, exception_id, lock=True)
    if before["status"] != "pending":
        raise Conflict(f"This exception is already {before['status']}.")
    after = await tx.conn.fetchrow(
        f"UPDATE exceptions SET status = $3, note = $4, resolved_by = $5, resolved_at = now() "  # noqa: S608
        f"WHERE tenant_id = $1 AND id = $2 RETURNING {EXCEPTION_COLS}",
        tx.caller.tenant_id, exception_id, body.status.value, body.note, tx.caller.user_id,
    )
    tx.audit(AuditEntry("Exception", body.status.value, exception_id, exception_json(before), exception_json(after),
                        employee_id=after["employee_id"], punch_id=after["punch_id"], exception_id=exception_id))
    return to_exception(after)
