"""Employees of a tenant (manager+). DELETE deactivates: history is kept."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

import asyncpg

from unifocus.audit.writer import AuditEntry
from unifocus.auth.context import Caller, guard
from unifocus.db.writepath import WriteTx
from unifocus.employees.schemas import Employee, EmployeeCreate, EmployeePatch
from unifocus.errors import Conflict, NotFound
from unifocus.pagination import PageParams, page_of

COLUMNS = "tenant_id, id, first_name, last_name, external_id, email, timezone, active, created_at"


def to_employee(row: Any) -> Employee:
    return Employee(
        id=row["id"], first_name=row["first_name"], last_name=row["last_name"],
        external_id=row["external_id"], email=row["email"], timezone=row["timezone"], active=row["active"],
    )


def _json(e: Employee) -> dict[str, Any]:
    return e.model_dump(mode="json", by_alias=True)


async def get(conn: asyncpg.Connection, caller: Caller, employee_id: UUID, lock: bool = False) -> Employee:
    sql = f"SELECT {COLUMNS} FROM employees WHERE tenant_id = $1 AND id = $2"  # noqa: S608
    row = await conn.fetchrow(sql + (" FOR UPDATE" if lock else ""), caller.tenant_id, employee_id)
    if row is None:
        raise NotFound("No employee with this id.")
    return to_employee(guard(caller, row))


async def list_page(
    conn: asyncpg.Connection, caller: Caller, page: PageParams, active: bool | None
) -> dict[str, Any]:
    rows = await conn.fetch(
        f"SELECT {COLUMNS} FROM employees WHERE tenant_id = $1 "  # noqa: S608
        "AND ($2::boolean IS NULL OR active = $2) "
        "AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4)) "
        "ORDER BY created_at DESC, id DESC LIMIT $5",
        caller.tenant_id, active, *page.keyset(),
    )
    return page_of([guard(caller, r) for r in rows], page.limit, to_employee)


def _conflict(exc: asyncpg.UniqueViolationError) -> Conflict:
    return Conflict("An employee with this externalId already exists in this tenant.")


async def create(tx: WriteTx, body: EmployeeCreate) -> Employee:
    try:
        row = await tx.conn.fetchrow(
            f"INSERT INTO employees (tenant_id, id, first_name, last_name, external_id, email, timezone) "  # noqa: S608
            f"VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}",
            tx.caller.tenant_id, uuid4(), body.first_name, body.last_name, body.external_id,
            str(body.email) if body.email else None, body.timezone,
        )
    except asyncpg.UniqueViolationError as exc:
        raise _conflict(exc) from exc
    emp = to_employee(row)
    tx.audit(AuditEntry("Employee", "created", emp.id, None, _json(emp), employee_id=emp.id))
    return emp


async def update(tx: WriteTx, employee_id: UUID, patch: EmployeePatch, action: str = "updated") -> Employee:
    before = await get(tx.conn, tx.caller, employee_id, lock=True)
    after = before.model_copy(update=patch.model_dump(exclude_unset=True))
    if after == before:
        return before
    try:
        await tx.conn.execute(
            "UPDATE employees SET first_name = $3, last_name = $4, external_id = $5, email = $6, "
            "timezone = $7, active = $8, updated_at = now() WHERE tenant_id = $1 AND id = $2",
            tx.caller.tenant_id, employee_id, after.first_name, after.last_name, after.external_id,
            after.email, after.timezone, after.active,
        )
    except asyncpg.UniqueViolationError as exc:
        raise _conflict(exc) from exc
    tx.audit(AuditEntry("Employee", action, employee_id, _json(before), _json(after), employee_id=employee_id))
    return after


async def deactivate(tx: WriteTx, employee_id: UUID) -> None:
    await update(tx, employee_id, EmployeePatch(active=False), action="deleted")
