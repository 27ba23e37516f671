"""The audit log on the wire (contract section 7)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field

from unifocus.schemas import ApiModel


class AuditEntity(StrEnum):
    Tenant = "Tenant"
    User = "User"
    Employee = "Employee"
    Schedule = "Schedule"
    Shift = "Shift"
    Punch = "Punch"
    Exception = "Exception"


class AuditAction(StrEnum):
    created = "created"
    updated = "updated"
    deleted = "deleted"
    voided = "voided"
    approved = "approved"
    rejected = "rejected"
    withdrawn = "withdrawn"


class AuditChanges(BaseModel):
    before: Any = Field(None, description="The entity before the write (null on creation).")
    after: Any = Field(None, description="The entity after the write.")


class AuditLogEntry(ApiModel):
    id: UUID
    tenant_id: UUID
    user_id: UUID | None = Field(None, description="The user who made the write (null for system jobs).")
    user_email: str | None = Field(None, description="That user's current email.")
    action: AuditAction
    entity: AuditEntity
    entity_id: UUID
    changes: AuditChanges
    employee_id: UUID | None = None
    punch_id: UUID | None = None
    exception_id: UUID | None = None
    request_id: str | None = Field(None, description="The X-Request-ID of the write.")
    created_at: datetime
