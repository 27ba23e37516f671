"""Schedules (an employee's date range) and their weekly shifts. Deletes are soft: punches
stay attributed to the shifts they were matched with until an evaluation of their zone
re-attributes them, and the deleted shifts' pending exceptions are withdrawn (audited).
Every change locks the employee and bumps its facts version, as an evaluation does, so a
punch write that read the old shifts does not commit on them (migration 0010)."""

from __future__ import annotations

from datetime import date
from typing import Any, cast
from uuid import UUID, uuid4

import asyncpg

from unifocus.audit.writer import AuditEntry
from unifocus.auth.context import NO_EMPLOYEE, Caller, employee_filter, guard
from unifocus.db.writepath import WriteTx
from unifocus.errors import Conflict, NotFound
from unifocus.pagination import EMPTY_PAGE, PageParams, page_of
from unifocus.schedules.occurrences import WeeklyShift, overlaps
from unifocus.schedules.schemas import Schedule, ScheduleCreate, Shift, ShiftCreate
from unifocus.timeexceptions import engine

SCHEDULE_COLS = "tenant_id, id, employee_id, name, start_date, end_date, created_at"
SHIFT_COLS = "tenant_id, id, schedule_id, day_of_week, start_time, end_time, created_at"


def to_shift(row: Any) -> Shift:
    return Shift(id=row["id"], schedule_id=row["schedule_id"], day_of_week=row["day_of_week"],
                 start_time=row["start_time"], end_time=row["end_time"])


def to_schedule(row: Any, shifts: list[Shift]) -> Schedule:
    return Schedule(id=row["id"], employee_id=row["employee_id"], name=row["name"],
                    start_date=row["start_date"], end_date=row["end_date"], shifts=shifts)


def _json(model: Any) -> dict[str, Any]:
    return dict(model.model_dump(mode="json", by_alias=True))


async def _shifts(conn: asyncpg.Connection, caller: Caller, schedule_ids: list[UUID]) -> dict[UUID, list[Shift]]:
    rows = await conn.fetch(
        f"SELECT {SHIFT_COLS} FROM shifts WHERE tenant_id = $1 AND schedule_id = ANY($2::uuid[]) "  # noqa: S608
        "AND deleted_at IS NULL ORDER BY day_of_week, start_time, id",
        caller.tenant_id, schedule_ids,
    )
    out: dict[UUID, list[Shift]] = {sid: [] for sid in schedule_ids}
    for row in rows:
        out[row["schedule_id"]].append(to_shift(guard(caller, row)))
    return out


async def _visible_row(conn: asyncpg.Connection, caller: Caller, schedule_id: UUID, lock: bool = False) -> Any:
    """The live schedule row, when the caller may see it (404 otherwise: another tenant's, or
    another employee's to an employee)."""
    row = await conn.fetchrow(
        f"SELECT {SCHEDULE_COLS} FROM schedules WHERE tenant_id = $1 AND id = $2 "  # noqa: S608
        "AND deleted_at IS NULL" + (" FOR UPDATE" if lock else ""),
        caller.tenant_id, schedule_id,
    )
    if row is None or not caller.sees_employee(row["employee_id"]):
        raise NotFound("No schedule with this id.")
    return guard(caller, row)


async def get(conn: asyncpg.Connection, caller: Caller, schedule_id: UUID, lock: bool = False) -> Schedule:
    row = await _visible_row(conn, caller, schedule_id, lock)
    return to_schedule(row, (await _shifts(conn, caller, [schedule_id]))[schedule_id])


async def get_shift(conn: asyncpg.Connection, caller: Caller, schedule_id: UUID, shift_id: UUID) -> Shift:
    """One live shift of a schedule the caller sees (what a created shift's `Location` names)."""
    await _visible_row(conn, caller, schedule_id)
    row = await conn.fetchrow(
        f"SELECT {SHIFT_COLS} FROM shifts WHERE tenant_id = $1 AND schedule_id = $2 AND id = $3 "  # noqa: S608
        "AND deleted_at IS NULL",
        caller.tenant_id, schedule_id, shift_id,
    )
    if row is None:
        raise NotFound("No shift with this id in this schedule.")
    return to_shift(guard(caller, row))


async def shift_page(conn: asyncpg.Connection, caller: Caller, schedule_id: UUID, page: PageParams) -> dict[str, Any]:
    """A schedule's live shifts, newest first by (created_at, id), a page at a time: a
    schedule's shifts are added one by one without a bound, so the list is paged like any other."""
    await _visible_row(conn, caller, schedule_id)  # the schedule row alone: its shifts are paged below
    rows = await conn.fetch(
        f"SELECT {SHIFT_COLS} FROM shifts WHERE tenant_id = $1 AND schedule_id = $2 "  # noqa: S608
        "AND deleted_at IS NULL AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4)) "
        "ORDER BY created_at DESC, id DESC LIMIT $5",
        caller.tenant_id, schedule_id, *page.keyset(),
    )
    return page_of([guard(caller, r) for r in rows], page.limit, to_shift)


async def list_page(
    conn: asyncpg.Connection, caller: Caller, page: PageParams,
    employee_id: UUID | None, from_date: date | None, to_date: date | None,
) -> dict[str, Any]:
    scoped = employee_filter(caller, employee_id, "schedules")
    if scoped is NO_EMPLOYEE:
        return EMPTY_PAGE
    employee_id = cast(UUID | None, scoped)
    rows = await conn.fetch(
        f"SELECT {SCHEDULE_COLS} FROM schedules WHERE tenant_id = $1 AND deleted_at IS NULL "  # noqa: S608
        "AND ($2::uuid IS NULL OR employee_id = $2) "
        "AND ($3::date IS NULL OR end_date >= $3) AND ($4::date IS NULL OR start_date <= $4) "
        "AND ($5::timestamptz IS NULL OR (created_at, id) < ($5, $6)) "
        "ORDER BY created_at DESC, id DESC LIMIT $7",
        caller.tenant_id, employee_id, from_date, to_date,
        *page.keyset(),
    )
    rows = [guard(caller, r) for r in rows]
    shifts = await _shifts(conn, caller, [r["id"] for r in rows])
    return page_of(rows, page.limit, lambda r: to_schedule(r, shifts[r["id"]]))


async def _lock_employee(tx: WriteTx, employee_id: UUID) -> None:
    """Serialises schedule changes of one employee (overlap checks stay true under races). An
    update, not FOR UPDATE: the new row version tells a two-statement punch write that read
    the employee's facts before this change that they are stale (migration 0010)."""
    found = await tx.conn.fetchval(
        "UPDATE employees SET facts_version = facts_version + 1 WHERE tenant_id = $1 AND id = $2 RETURNING 1",
        tx.caller.tenant_id, employee_id,
    )
    if not found:
        raise NotFound("employeeId names no employee of this tenant.")


def _weekly(shift: Shift | ShiftCreate, shift_id: UUID, schedule_id: UUID) -> WeeklyShift:
    return WeeklyShift(shift_id, schedule_id, shift.day_of_week, shift.start_time, shift.end_time)


async def _insert_shift(tx: WriteTx, schedule: Schedule, body: ShiftCreate) -> Shift:
    new = _weekly(body, uuid4(), schedule.id)
    existing = [_weekly(s, s.id, schedule.id) for s in schedule.shifts]
    if overlaps(existing, new):
        raise Conflict("This shift overlaps another shift of the schedule.")
    row = await tx.conn.fetchrow(
        f"INSERT INTO shifts (tenant_id, id, schedule_id, day_of_week, start_time, end_time) "  # noqa: S608
        f"VALUES ($1, $2, $3, $4, $5, $6) RETURNING {SHIFT_COLS}",
        tx.caller.tenant_id, new.id, schedule.id, body.day_of_week, body.start_time, body.end_time,
    )
    shift = to_shift(row)
    tx.audit(AuditEntry("Shift", "created", shift.id, None, _json(shift), employee_id=schedule.employee_id))
    schedule.shifts.append(shift)
    return shift


async def create(tx: WriteTx, body: ScheduleCreate) -> Schedule:
    await _lock_employee(tx, body.employee_id)
    clash = await tx.conn.fetchval(
        "SELECT id FROM schedules WHERE tenant_id = $1 AND employee_id = $2 AND deleted_at IS NULL "
        "AND start_date <= $4 AND end_date >= $3 LIMIT 1",
        tx.caller.tenant_id, body.employee_id, body.start_date, body.end_date,
    )
    if clash:
        raise Conflict(f"The employee already has schedule {clash} overlapping these dates.")
    row = await tx.conn.fetchrow(
        f"INSERT INTO schedules (tenant_id, id, employee_id, name, start_date, end_date) "  # noqa: S608
        f"VALUES ($1, $2, $3, $4, $5, $6) RETURNING {SCHEDULE_COLS}",
        tx.caller.tenant_id, uuid4(), body.employee_id, body.name, body.start_date, body.end_date,
    )
    schedule = to_schedule(row, [])
    tx.audit(AuditEntry("Schedule", "created", schedule.id, None,
                        _json(schedule.model_copy(update={"shifts": []})), employee_id=schedule.employee_id))
    for shift in body.shifts:
        await _insert_shift(tx, schedule, shift)
    return schedule


async def delete(tx: WriteTx, schedule_id: UUID) -> None:
    schedule = await get(tx.conn, tx.caller, schedule_id, lock=True)
    await _lock_employee(tx, schedule.employee_id)  # the employee's facts change
    await tx.conn.execute(
        "UPDATE schedules SET deleted_at = now() WHERE tenant_id = $1 AND id = $2", tx.caller.tenant_id, schedule_id
    )
    tx.audit(AuditEntry("Schedule", "deleted", schedule_id, _json(schedule), None, employee_id=schedule.employee_id))
    await engine.withdraw_of_shifts(tx.conn, tx.caller.tenant_id, schedule.employee_id,
                                    [s.id for s in schedule.shifts], tx.entries)


async def add_shift(tx: WriteTx, schedule_id: UUID, body: ShiftCreate) -> Shift:
    schedule = await get(tx.conn, tx.caller, schedule_id, lock=True)
    await _lock_employee(tx, schedule.employee_id)  # the employee's facts change
    return await _insert_shift(tx, schedule, body)


async def delete_shift(tx: WriteTx, schedule_id: UUID, shift_id: UUID) -> None:
    schedule = await get(tx.conn, tx.caller, schedule_id, lock=True)
    await _lock_employee(tx, schedule.employee_id)  # the employee's facts change
    shift = next((s for s in schedule.shifts if s.id == shift_id), None)
    if shift is None:
        raise NotFound("No shift with this id in this schedule.")
    await tx.conn.execute(
        "UPDATE shifts SET deleted_at = now() WHERE tenant_id = $1 AND id = $2", tx.caller.tenant_id, shift_id
    )
    tx.audit(AuditEntry("Shift", "deleted", shift_id, _json(shift), None, employee_id=schedule.employee_id))
    await engine.withdraw_of_shifts(tx.conn, tx.caller.tenant_id, schedule.employee_id, [shift_id], tx.entries)
