"""Offline batches from devices: each item stands alone (its own savepoint), in order."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
from pydantic import ValidationError

from unifocus.db.writepath import WriteTx
from unifocus.errors import AppError
from unifocus.punches import service
from unifocus.punches.schemas import (
    BatchItem,
    BatchResult,
    BatchStatus,
    Punch,
    PunchCreate,
    PunchCreated,
    PunchSource,
)


def _validation_message(exc: ValidationError) -> str:
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first.get("loc", ())) or "item"
    return f"{field}: {first.get('msg', 'invalid')}"


async def record_batch(tx: WriteTx, items: list[BatchItem | dict[str, Any]]) -> list[BatchResult]:
    parsed = [_parse(raw) for raw in items]
    await _lock_employees(tx, [p.employee_id for p in parsed if isinstance(p, BatchItem)])
    return [p if isinstance(p, BatchResult) else await _one(tx, p) for p in parsed]


# Each item's write locks its employee's row (the facts' version). Two kiosks uploading the
# same staff in different orders would take those locks in opposite orders and deadlock (one
# answered 503 after deadlock_timeout), so the batch takes them all first, in employee order,
# the order group commit uses too. Ids of no employee of the tenant lock nothing (RLS).
LOCK_EMPLOYEES = ("SELECT id FROM employees WHERE tenant_id = $1 AND id = ANY($2::uuid[]) "
                  "ORDER BY id FOR NO KEY UPDATE")


async def _lock_employees(tx: WriteTx, employee_ids: list[UUID]) -> None:
    if not tx.caller.is_staff():  # an employee's batch writes only their own record's punches
        employee_ids = [e for e in employee_ids if e == tx.caller.employee_id]
    if employee_ids:
        await tx.conn.execute(LOCK_EMPLOYEES, tx.caller.tenant_id, sorted(set(employee_ids)))


def _parse(raw: BatchItem | dict[str, Any]) -> BatchItem | BatchResult:
    """The item, or its rejection when it is malformed."""
    if isinstance(raw, BatchItem):
        return raw
    client_id = raw.get("clientPunchId") if isinstance(raw, dict) else None
    client_id = client_id if isinstance(client_id, str) and len(client_id) <= 100 else None
    try:
        return BatchItem.model_validate(raw)
    except ValidationError as exc:
        return BatchResult(client_punch_id=client_id, status=BatchStatus.rejected, error=_validation_message(exc))


def _duplicate(item: BatchItem, stored: Punch | None) -> BatchResult:
    """An item already stored (same device, clientPunchId and employee): the stored punch. The
    caller may see it: the item's employee was checked first."""
    return BatchResult(client_punch_id=item.client_punch_id, status=BatchStatus.duplicate, punch=stored)


async def _one(tx: WriteTx, item: BatchItem) -> BatchResult:
    if not tx.caller.is_staff() and tx.caller.employee_id != item.employee_id:
        return BatchResult(client_punch_id=item.client_punch_id, status=BatchStatus.rejected,
                           error="employees may punch only for their own employee record")
    existing = await service.find_by_client_id(tx, item.device, item.client_punch_id, item.employee_id)
    if existing is not None:
        return _duplicate(item, existing)
    body = PunchCreate(employee_id=item.employee_id, type=item.type, timestamp=item.timestamp,
                       device=item.device, client_punch_id=item.client_punch_id)
    source = PunchSource.device if item.device else PunchSource.api
    audit_mark = len(tx.entries)
    savepoint = tx.conn.transaction()
    await savepoint.start()
    try:
        punch = PunchCreated.model_validate(await service.record(tx, body, source))
    except asyncpg.UniqueViolationError:
        # The same device + clientPunchId + employee committed by a concurrent batch meanwhile.
        await savepoint.rollback()
        del tx.entries[audit_mark:]
        stored = await service.find_by_client_id(tx, item.device, item.client_punch_id, item.employee_id)
        return _duplicate(item, stored)
    except AppError as exc:
        await savepoint.rollback()
        del tx.entries[audit_mark:]
        error = "employee not found" if exc.status == 404 else exc.detail
        return BatchResult(client_punch_id=item.client_punch_id, status=BatchStatus.rejected, error=error)
    except BaseException:
        await savepoint.rollback()
        raise
    await savepoint.commit()
    return BatchResult(client_punch_id=item.client_punch_id, status=BatchStatus.created, punch=punch)
