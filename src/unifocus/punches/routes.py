from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, Query
from starlette.responses import Response

from unifocus.auth.roles import Role
from unifocus.db import optimistic
from unifocus.db.readpath import ReadTx, reader
from unifocus.db.writepath import NOT_READ, Result, WriteRequest, WriteTx, writer
from unifocus.errors import Forbidden, refuse_methods
from unifocus.openapi import errors
from unifocus.pagination import Page, PageParams
from unifocus.punches import batch, group_write, service
from unifocus.punches.schemas import (
    BatchRequest,
    BatchResponse,
    Punch,
    PunchCreate,
    PunchCreated,
    PunchSource,
)
from unifocus.schemas import INSTANT_FORM, Instant, check_order

router = APIRouter(prefix="/api", tags=["punches"])

# unique (tenant, device, clientPunchId, employee): migration 0013
DEVICE_PUNCH_INDEX = "punches_tenant_device_client_employee"

# A single punch's write may share a statement with other requests' (group commit).
GROUPED = optimistic.Grouped(group_write.lane, group_write.write_many)


def _source(body: PunchCreate, tx: WriteTx) -> PunchSource:
    if body.source is PunchSource.manual and not tx.caller.is_staff():
        raise Forbidden("Manual punches need the manager role.")
    return body.source or (PunchSource.device if body.device else PunchSource.api)


# The 200 of a device's repeat is an answer of its own in the schema: a generated client must
# accept it (the punch as stored, without `exceptions`: they were the first answer's).
_DEVICE_REPEAT: dict[int | str, dict[str, Any]] = {200: {
    "model": Punch,
    "description": "A repeated `device` + `clientPunchId` for the same employee: the punch as stored, "
                   "unchanged (no new write, no `exceptions`); `Location` names it.",
}}


@router.post("/punches", status_code=201, response_model=PunchCreated,
             responses={**_DEVICE_REPEAT, **errors(404, write=True)})
async def create_punch(body: PunchCreate, w: WriteRequest = Depends(writer(Role.employee))) -> Response:
    """Record a punch. Out-of-sequence punches are accepted and flagged; the answer lists the
    exceptions the punch raised. Employees punch only for themselves (403). A repeated
    `device` + `clientPunchId` for the same employee answers 200 with the stored punch; the
    same pair naming another employee is another punch. More than 5 minutes in the future:
    422."""
    return await create(body, w)


async def create(body: PunchCreate, w: WriteRequest) -> Response:
    """The route's work, shared with `fast_route` (which answers well-formed punches without
    FastAPI's per-request plumbing)."""

    async def run(tx: WriteTx) -> Result:
        source = _source(body, tx)
        service.check_may_punch_for(tx.caller, body.employee_id)
        if tx.prefetched is NOT_READ:
            return await service.record_step_by_step(tx, body, source)
        return await service.record_prefetched(tx, body, source)

    async def write() -> Response:
        if w.settings.optimistic_punch_write:
            return await optimistic.run(w, run, service.read_ahead(body), service.write_statement,
                                        service.prefetch(body), GROUPED)
        return await w.run(run, service.prefetch(body))

    try:
        return await write()
    except asyncpg.exceptions.UniqueViolationError as exc:
        if exc.constraint_name != DEVICE_PUNCH_INDEX:
            raise
        # The same device punch (device + clientPunchId + employee) stored by a concurrent
        # request between this one's read of the repeat and its insert. Nothing of this attempt
        # was committed; run again, and the repeat is found (200).
        return await write()


@router.post("/punches/batch", response_model=BatchResponse, responses=errors(write=True))
async def create_batch(body: BatchRequest, w: WriteRequest = Depends(writer(Role.employee))) -> Response:
    """An offline device's punches (at most 500), each stored on its own: one result per item,
    in order: `created`, `duplicate` (same device + clientPunchId already stored for the
    item's employee) or
    `rejected` (malformed item, or an employee not found in this tenant)."""

    async def run(tx: WriteTx) -> Result:
        results = await batch.record_batch(tx, body.punches)
        return Result(200, BatchResponse(results=results))

    return await w.run(run)


# Before the `{punch_id}` routes, which would take "batch" for an id.
refuse_methods(router, "/punches/batch", ["GET", "HEAD", "DELETE"])


@router.get("/punches", response_model=Page[Punch], responses=errors())
async def list_punches(
    page: PageParams = Depends(),
    employee_id: UUID | None = Query(None, alias="employeeId"),
    start: Instant | None = Query(None, alias="from", description=f"Inclusive; {INSTANT_FORM}."),
    end: Instant | None = Query(None, alias="to", description=f"Exclusive; {INSTANT_FORM}."),
    r: ReadTx = Depends(reader(Role.employee)),
) -> dict:
    """Punches, newest first by timestamp. Employees see only their own. `from` after `to`: 422."""
    check_order(start, end)
    return await service.list_page(r.conn, r.caller, page, employee_id, start, end)


@router.get("/punches/{punch_id}", response_model=Punch, responses=errors(404))
async def get_punch(punch_id: UUID, r: ReadTx = Depends(reader(Role.employee))) -> Punch:
    return await service.get(r.conn, r.caller, punch_id)


@router.delete("/punches/{punch_id}", status_code=204, responses=errors(404, write=True))
async def void_punch(
    punch_id: UUID,
    reason: str = Query(..., min_length=1, max_length=500, description="Why the punch is voided (required)."),
    w: WriteRequest = Depends(writer(Role.manager)),
) -> Response:
    """Void a punch (manager+): the row stays, marked and audited with the reason; its
    occurrence is re-evaluated and pending exceptions whose cause is gone are withdrawn."""

    async def run(tx: WriteTx) -> Result:
        await service.void(tx, punch_id, reason)
        return Result(204)

    return await w.run(run)

