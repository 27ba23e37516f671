from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Depends, Query
from starlette.responses import Response

from unifocus.auth.roles import Role
from unifocus.db.readpath import ReadTx, reader
from unifocus.db.writepath import Result, WriteRequest, WriteTx, writer
from unifocus.openapi import errors
from unifocus.pagination import Page, PageParams
from unifocus.schemas import INSTANT_FORM, Instant, check_order
from unifocus.timeexceptions import service
from unifocus.timeexceptions.schemas import ExceptionStatus, ExceptionType, ResolveRequest, TimeException

router = APIRouter(prefix="/api", tags=["exceptions"])


@router.get("/exceptions", response_model=Page[TimeException], responses=errors())
async def list_exceptions(
    page: PageParams = Depends(),
    status: ExceptionStatus | None = Query(None),
    kind: ExceptionType | None = Query(None, alias="type"),
    employee_id: UUID | None = Query(None, alias="employeeId"),
    start: Instant | None = Query(None, alias="from", description=f"Raised at or after; {INSTANT_FORM}."),
    end: Instant | None = Query(None, alias="to", description=f"Raised before; {INSTANT_FORM}."),
    r: ReadTx = Depends(reader(Role.employee)),
) -> dict:
    """Exceptions, newest first. Employees see only their own. `from` after `to`: 422."""
    check_order(start, end)
    return await service.list_page(r.conn, r.caller, page, status, kind, employee_id, start, end)


@router.get("/exceptions/{exception_id}", response_model=TimeException, responses=errors(404))
async def get_exception(exception_id: UUID, r: ReadTx = Depends(reader(Role.employee))) -> TimeException:
    return service.to_exception(await service.get(r.conn, r.caller, exception_id))


@router.put("/exceptions/{exception_id}/resolve", response_model=TimeException, responses=errors(404, write=True))
async def resolve_exception(
    exception_id: UUID, body: ResolveRequest, w: WriteRequest = Depends(writer(Role.manager))
) -> Response:
    """Approve or reject a pending exception with a note (manager+). Resolving one that is
    not pending (already resolved, or withdrawn): 409."""

    async def run(tx: WriteTx) -> Result:
        return Result(200, await service.resolve(tx, exception_id, body))

    return await w.run(run)
