from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import Any
from uuid import UUID

from pydantic import Field, field_serializer

from unifocus.schemas import ApiModel, InputModel, utc_iso


class ExceptionType(str, Enum):
    late_arrival = "late_arrival"
    early_departure = "early_departure"
    unscheduled_punch = "unscheduled_punch"
    missed_punch = "missed_punch"
    absence = "absence"
    long_break = "long_break"
    overtime = "overtime"


class ExceptionStatus(str, Enum):
    pending = "pending"
    approved = "approved"
    rejected = "rejected"
    withdrawn = "withdrawn"


class TimeException(ApiModel):
    id: UUID
    employee_id: UUID
    type: ExceptionType
    status: ExceptionStatus
    shift_id: UUID | None = None
    shift_date: date | None = None
    punch_id: UUID | None = None
    details: dict[str, Any] = Field(description="Why: minutes late, the occurrence's start and end, ...")
    created_at: datetime
    resolved_by: UUID | None = None
    resolved_at: datetime | None = None
    note: str | None = None

    @field_serializer("created_at", "resolved_at")
    def _utc(self, value: datetime | None) -> str | None:
        return utc_iso(value) if value else None


class Resolution(str, Enum):
    approved = "approved"
    rejected = "rejected"


class ResolveRequest(InputModel):
    status: Resolution
    note: str | None = Field(None, max_length=1000)
