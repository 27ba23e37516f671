"""Offline batches from devices: each item stands alone (its own savepoint), in order."""

from __future__ import annotations

from typing import Any

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
    return [await _one(tx, raw) for raw in items]


def _duplicate(item: BatchItem, stored: Punch | None) -> BatchResult:
    """An item already stored (same device, clientPunchId and employee): the stored punch. The
    caller may see it: the item's employee was checked first."""
    return BatchResult(client_punch_id=item.client_punch_id, status=BatchStatus.duplicate, punch=stored)


async def _one(tx: WriteTx, raw: Any) -> BatchResult:
    if isinstance(raw, BatchItem):
        item = raw
    else:
        client_id = raw.get("clientPunchId") if isinstance(raw, dict) else None
        client_id = client_id if isinstance(client_id, str) and len(client_id) <= 100 else None
        try:
            item = BatchItem.model_validate(raw)
        except ValidationError as exc:
            return BatchResult(client_punch_id=client_id, status=BatchStatus.rejected,
                               error=_validation_message(exc))
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
