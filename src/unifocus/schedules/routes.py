from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Depends, Query
from starlette.responses import Response

from unifocus.auth.roles import Role
from unifocus.db.readpath import ReadTx, reader
from unifocus.db.writepath import Result, WriteRequest, WriteTx, writer
from unifocus.openapi import errors
from unifocus.pagination import Page, PageParams
from unifocus.schedules import service
from unifocus.schedules.schemas import Schedule, ScheduleCreate, Shift, ShiftCreate
from unifocus.schemas import DATE_FORM, LocalDate, check_order

router = APIRouter(prefix="/api", tags=["schedules"])


@router.post("/schedules", status_code=201, response_model=Schedule, responses=errors(404, write=True))
async def create_schedule(body: ScheduleCreate, w: WriteRequest = Depends(writer(Role.manager))) -> Response:
    """Create a schedule with its weekly shifts (manager+). Dates are local and inclusive.
    An employee has at most one schedule on a date (409); shifts may not overlap (409)."""

    async def run(tx: WriteTx) -> Result:
        schedule = await service.create(tx, body)
        return Result(201, schedule, f"/api/schedules/{schedule.id}")

    return await w.run(run)


@router.get("/schedules", response_model=Page[Schedule], responses=errors())
async def list_schedules(
    page: PageParams = Depends(),
    employee_id: UUID | None = Query(None, alias="employeeId"),
    from_date: LocalDate | None = Query(None, alias="from", description=f"Local date ({DATE_FORM}), inclusive."),
    to_date: LocalDate | None = Query(None, alias="to", description=f"Local date ({DATE_FORM}), inclusive."),
    r: ReadTx = Depends(reader(Role.employee)),
) -> dict:
    """Schedules overlapping [from, to]. Employees see only their own. `from` after `to`: 422."""
    check_order(from_date, to_date)
    return await service.list_page(r.conn, r.caller, page, employee_id, from_date, to_date)


@router.get("/schedules/{schedule_id}", response_model=Schedule, responses=errors(404))
async def get_schedule(schedule_id: UUID, r: ReadTx = Depends(reader(Role.employee))) -> Schedule:
    return await service.get(r.conn, r.caller, schedule_id)


@router.delete("/schedules/{schedule_id}", status_code=204, responses=errors(404, write=True))
async def delete_schedule(schedule_id: UUID, w: WriteRequest = Depends(writer(Role.manager))) -> Response:
    async def run(tx: WriteTx) -> Result:
        await service.delete(tx, schedule_id)
        return Result(204)

    return await w.run(run)


@router.post("/schedules/{schedule_id}/shifts", status_code=201, response_model=Shift,
             responses=errors(404, write=True))
async def add_shift(schedule_id: UUID, body: ShiftCreate, w: WriteRequest = Depends(writer(Role.manager))) -> Response:
    """Add a weekly shift. Overlapping another shift of the schedule: 409."""

    async def run(tx: WriteTx) -> Result:
        shift = await service.add_shift(tx, schedule_id, body)
        return Result(201, shift, f"/api/schedules/{schedule_id}/shifts/{shift.id}")

    return await w.run(run)


@router.get("/schedules/{schedule_id}/shifts", response_model=Page[Shift], responses=errors(404))
async def list_shifts(schedule_id: UUID, page: PageParams = Depends(),
                      r: ReadTx = Depends(reader(Role.employee))) -> dict:
    """The schedule's live weekly shifts, newest first (`GET /api/schedules/{id}` embeds them
    all in week order). Employees see only their own schedules' (404 otherwise)."""
    return await service.shift_page(r.conn, r.caller, schedule_id, page)


@router.get("/schedules/{schedule_id}/shifts/{shift_id}", response_model=Shift, responses=errors(404))
async def get_shift(schedule_id: UUID, shift_id: UUID, r: ReadTx = Depends(reader(Role.employee))) -> Shift:
    """One shift: what the `Location` of a created shift names. A deleted shift, or one of
    another schedule, is 404."""
    return await service.get_shift(r.conn, r.caller, schedule_id, shift_id)


@router.delete("/schedules/{schedule_id}/shifts/{shift_id}", status_code=204, responses=errors(404, write=True))
async def delete_shift(schedule_id: UUID, shift_id: UUID, w: WriteRequest = Depends(writer(Role.manager))) -> Response:
    async def run(tx: WriteTx) -> Result:
        await service.delete_shift(tx, schedule_id, shift_id)
        return Result(204)

    return await w.run(run)
