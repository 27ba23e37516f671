from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Depends
from starlette.responses import Response

from unifocus.auth.roles import Role
from unifocus.db.readpath import ReadTx, reader
from unifocus.db.writepath import Result, WriteRequest, WriteTx, writer
from unifocus.openapi import errors
from unifocus.pagination import Page, PageParams
from unifocus.users import service
from unifocus.users.schemas import Me, User, UserCreate, UserPatch

router = APIRouter(prefix="/api", tags=["users"])


@router.get("/me", response_model=Me, responses=errors())
async def me(r: ReadTx = Depends(reader(Role.employee))) -> Me:
    """The caller, as the database knows them (role and employee link)."""
    c = r.caller
    return Me(user_id=c.user_id, tenant_id=c.tenant_id, email=c.email, role=c.role, employee_id=c.employee_id)


@router.post("/users", status_code=201, response_model=User, responses=errors(404, write=True))
async def create_user(body: UserCreate, w: WriteRequest = Depends(writer(Role.admin))) -> Response:
    """Create a user (admin). Email is unique per tenant (409)."""

    async def run(tx: WriteTx) -> Result:
        user = await service.create(tx, body)
        return Result(201, user, f"/api/users/{user.id}")

    return await w.run(run)


@router.get("/users", response_model=Page[User], responses=errors())
async def list_users(page: PageParams = Depends(), r: ReadTx = Depends(reader(Role.admin))) -> dict:
    """The tenant's users, newest first (admin)."""
    return await service.list_page(r.conn, r.caller, page)


@router.get("/users/{user_id}", response_model=User, responses=errors(404))
async def get_user(user_id: UUID, r: ReadTx = Depends(reader(Role.admin))) -> User:
    return await service.get(r.conn, r.caller, user_id)


@router.patch("/users/{user_id}", response_model=User, responses=errors(404, write=True))
async def patch_user(user_id: UUID, body: UserPatch, w: WriteRequest = Depends(writer(Role.admin))) -> Response:
    """Change a user's role, active flag or employee link (admin). The last active admin
    cannot be demoted or deactivated (409)."""

    async def run(tx: WriteTx) -> Result:
        return Result(200, await service.update(tx, user_id, body))

    return await w.run(run)
