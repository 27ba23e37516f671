from __future__ import annotations

from fastapi import APIRouter, Depends
from starlette.responses import Response

from unifocus.auth.roles import Role
from unifocus.db.readpath import ReadTx, reader
from unifocus.db.writepath import Result, WriteRequest, WriteTx, writer
from unifocus.openapi import errors
from unifocus.tenants import service
from unifocus.tenants.schemas import Tenant, TenantPatch

router = APIRouter(prefix="/api", tags=["tenant"])


@router.get("/tenant", response_model=Tenant, responses=errors())
async def get_tenant(r: ReadTx = Depends(reader(Role.employee))) -> Tenant:
    """The caller's tenant: name, time zone and exception policy."""
    return await service.load(r.conn, r.caller)


@router.patch("/tenant", response_model=Tenant, responses=errors(write=True))
async def patch_tenant(body: TenantPatch, w: WriteRequest = Depends(writer(Role.admin))) -> Response:
    """Change the tenant's name, time zone or exception policy (admin). Policy fields not sent
    keep their values."""

    async def run(tx: WriteTx) -> Result:
        return Result(200, await service.update(tx, body))

    return await w.run(run)
