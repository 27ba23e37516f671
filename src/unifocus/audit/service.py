"""The audit log query behind `GET /api/audit-logs`: filters, newest first, keyset pages.

The WHERE clause holds only the filters given, so each combination gets a plan on the index
that serves it (audit_log_tenant_created / _entity / _user / _employee, all ending in
created_at DESC, id DESC): a page is an index range scan that stops after limit+1 rows,
however deep the cursor is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from unifocus.audit.schemas import AuditAction, AuditChanges, AuditEntity, AuditLogEntry
from unifocus.auth.context import Caller, guard
from unifocus.pagination import PageParams, page_of

SELECT = (
    "SELECT a.tenant_id, a.id, a.user_id, u.email AS user_email, a.action, a.entity, a.entity_id, "
    "a.changes, a.employee_id, a.punch_id, a.exception_id, a.request_id, a.created_at "
    "FROM audit_log a LEFT JOIN users u ON u.tenant_id = a.tenant_id AND u.id = a.user_id "
)


@dataclass(frozen=True)
class AuditFilters:
    entity: AuditEntity | None = None
    action: AuditAction | None = None
    user_id: UUID | None = None
    employee_id: UUID | None = None
    since: datetime | None = None  # `from`, inclusive
    until: datetime | None = None  # `to`, exclusive


def build_query(tenant_id: UUID, f: AuditFilters, after: tuple[datetime, UUID] | None,
                limit: int) -> tuple[str, list[Any]]:
    """The page's SQL and its arguments; every value is a bind parameter."""
    args: list[Any] = [tenant_id]
    where = ["a.tenant_id = $1"]

    def add(sql: str, *values: Any) -> None:
        names = []
        for v in values:
            args.append(v)
            names.append(f"${len(args)}")
        where.append(sql.format(*names))

    if f.entity is not None:
        add("a.entity = {}", f.entity.value)
    if f.action is not None:
        add("a.action = {}", f.action.value)
    if f.user_id is not None:
        add("a.user_id = {}", f.user_id)
    if f.employee_id is not None:
        add("a.employee_id = {}", f.employee_id)
    if f.since is not None:
        add("a.created_at >= {}", f.since)
    if f.until is not None:
        add("a.created_at < {}", f.until)
    if after is not None:
        add("(a.created_at, a.id) < ({}, {})", after[0], after[1])
    args.append(limit + 1)
    order = f" ORDER BY a.created_at DESC, a.id DESC LIMIT ${len(args)}"
    return SELECT + "WHERE " + " AND ".join(where) + order, args


def to_entry(row: Any) -> AuditLogEntry:
    changes = row["changes"]
    if isinstance(changes, str | bytes):
        changes = orjson.loads(changes)
    return AuditLogEntry(
        id=row["id"], tenant_id=row["tenant_id"], user_id=row["user_id"], user_email=row["user_email"],
        action=row["action"], entity=row["entity"], entity_id=row["entity_id"],
        changes=AuditChanges(before=changes.get("before"), after=changes.get("after")),
        employee_id=row["employee_id"], punch_id=row["punch_id"], exception_id=row["exception_id"],
        request_id=row["request_id"], created_at=row["created_at"],
    )


async def list_page(conn: asyncpg.Connection, caller: Caller, page: PageParams, filters: AuditFilters
                    ) -> dict[str, Any]:
    sql, args = build_query(caller.tenant_id, filters, page.after, page.limit)
    rows = await conn.fetch(sql, *args)
    return page_of([guard(caller, r) for r in rows], page.limit, to_entry)
