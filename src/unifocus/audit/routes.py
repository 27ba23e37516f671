"""`GET /api/audit-logs` (admin): the tenant's audit entries, newest first."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query

from unifocus.audit import service
from unifocus.audit.schemas import AuditAction, AuditEntity, AuditLogEntry
from unifocus.auth.roles import Role
from unifocus.db.readpath import ReadTx, reader
from unifocus.openapi import errors
from unifocus.pagination import Page, PageParams
from unifocus.schemas import INSTANT_FORM, Instant, check_order

router = APIRouter(prefix="/api", tags=["audit"])


@router.get("/audit-logs", response_model=Page[AuditLogEntry], responses=errors())
async def list_audit_logs(
    page: PageParams = Depends(),
    entity: AuditEntity | None = Query(None, description="Only entries about this kind of entity."),
    action: AuditAction | None = Query(None, description="Only entries of this action."),
    user_id: UUID | None = Query(None, alias="userId", description="Only writes made by this user."),
    employee_id: UUID | None = Query(
        None, alias="employeeId", description="Only entries about this employee."
    ),
    from_: Instant | None = Query(
        None, alias="from", description=f"Entries at or after it; {INSTANT_FORM}."
    ),
    to: Instant | None = Query(
        None, description=f"Entries before it; {INSTANT_FORM}."
    ),
    r: ReadTx = Depends(reader(Role.admin)),
) -> dict[str, Any]:
    """The tenant's audit log (admin), newest first, keyset-paginated on (createdAt, id).
    `from` is inclusive, `to` exclusive. Each entry carries the actor's current email."""
    check_order(from_, to)
    filters = service.AuditFilters(entity, action, user_id, employee_id, from_, to)
    return await service.list_page(r.conn, r.caller, page, filters)
