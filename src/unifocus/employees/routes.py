from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Depends, Query
from starlette.responses import Response

from unifocus.auth.roles import Role
from unifocus.db.readpath import ReadTx, reader
from unifocus.db.writepath import Result, WriteRequest, WriteTx, writer
from unifocus.employees import service
from unifocus.employees.schemas import Employee, EmployeeCreate, EmployeePatch
from unifocus.openapi import errors
from unifocus.pagination import Page, PageParams

router = APIRouter(prefix="/api", tags=["employees"])


@router.post("/employees", status_code=201, response_model=Employee, responses=errors(write=True))
async def create_employee(body: EmployeeCreate, w: WriteRequest = Depends(writer(Role.manager))) -> Response:
    """Create an employee (manager+). `externalId` is unique per tenant (409)."""

    async def run(tx: WriteTx) -> Result:
        emp = await service.create(tx, body)
        return Result(201, emp, f"/api/employees/{emp.id}")

    return await w.run(run)


@router.get("/employees", response_model=Page[Employee], responses=errors())
async def list_employees(
    page: PageParams = Depends(),
    active: bool | None = Query(None, description="Only active (true) or inactive (false) ones."),
    r: ReadTx = Depends(reader(Role.manager)),
) -> dict:
    return await service.list_page(r.conn, r.caller, page, active)


@router.get("/employees/{employee_id}", response_model=Employee, responses=errors(404))
async def get_employee(employee_id: UUID, r: ReadTx = Depends(reader(Role.manager))) -> Employee:
    return await service.get(r.conn, r.caller, employee_id)


@router.patch("/employees/{employee_id}", response_model=Employee, responses=errors(404, write=True))
async def patch_employee(
    employee_id: UUID, body: EmployeePatch, w: WriteRequest = Depends(writer(Role.manager))
) -> Response:
    async def run(tx: WriteTx) -> Result:
        return Result(200, await service.update(tx, employee_id, body))

    return await w.run(run)


@router.delete("/employees/{employee_id}", status_code=204, responses=errors(404, write=True))
async def delete_employee(employee_id: UUID, w: WriteRequest = Depends(writer(Role.manager))) -> Response:
    """Deactivate an employee: the record and its history stay (204)."""

    async def run(tx: WriteTx) -> Result:
        await service.deactivate(tx, employee_id)
        return Result(204)

    return await w.run(run)
