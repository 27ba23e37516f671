from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import Any
from uuid import UUID

from pydantic import Field, field_serializer

from unifocus.schemas import INSTANT_FORM, MIN_INSTANT, ApiModel, InputModel, Instant, utc_iso
from unifocus.timeexceptions.schemas import TimeException

MAX_BATCH = 500

# A punch's instant, in a single punch and in a batch item alike.
PUNCH_INSTANT = f"{INSTANT_FORM}; from {utc_iso(MIN_INSTANT)} to 5 minutes in the future."


class PunchType(str, Enum):
    clock_in = "clock_in"
    clock_out = "clock_out"
    break_start = "break_start"
    break_end = "break_end"


class PunchSource(str, Enum):
    api = "api"
    device = "device"
    manual = "manual"


class Punch(ApiModel):
    id: UUID
    employee_id: UUID
    type: PunchType
    timestamp: datetime
    received_at: datetime
    device: str | None = None
    client_punch_id: str | None = None
    source: PunchSource
    shift_id: UUID | None = None
    shift_date: date | None = None
    voided: bool
    void_reason: str | None = None

    @field_serializer("timestamp", "received_at")
    def _utc(self, value: datetime) -> str:
        return utc_iso(value)


class PunchCreated(Punch):
    exceptions: list[TimeException] = Field(default_factory=list,
                                            description="The exceptions this punch raised.")


class PunchCreate(InputModel):
    employee_id: UUID
    type: PunchType
    timestamp: Instant = Field(description=PUNCH_INSTANT)
    device: str | None = Field(None, min_length=1, max_length=100)
    client_punch_id: str | None = Field(None, min_length=1, max_length=100)
    source: PunchSource | None = Field(
        None, description="Defaults to `device` when `device` is given, else `api`. `manual` needs manager+."
    )


class BatchItem(InputModel):
    client_punch_id: str = Field(min_length=1, max_length=100)
    employee_id: UUID
    type: PunchType
    timestamp: Instant = Field(description=PUNCH_INSTANT)
    device: str | None = Field(None, min_length=1, max_length=100)


class BatchRequest(InputModel):
    # Any JSON value per item: one that is not even an object (null, a number) is answered
    # `rejected` by `batch` like any malformed item, and does not fail the batch.
    punches: list[BatchItem | Any] = Field(
        max_length=MAX_BATCH,
        description=f"At most {MAX_BATCH} items shaped as `BatchItem`. Each is validated and stored on its "
        "own: a malformed item is answered `rejected` in its result, it does not fail the batch.",
    )


class BatchStatus(str, Enum):
    created = "created"
    duplicate = "duplicate"
    rejected = "rejected"


class BatchResult(ApiModel):
    client_punch_id: str | None = None
    status: BatchStatus
    punch: PunchCreated | Punch | None = Field(None, description=(
        "`created`: the new punch with `exceptions`, the exceptions it raised. `duplicate`: the punch "
        "as stored earlier, without `exceptions` (as POST /api/punches answers a device's repeat; "
        "GET /api/exceptions?employeeId= lists them). `rejected`: null, and `error` says why."))
    error: str | None = None


class BatchResponse(ApiModel):
    results: list[BatchResult]
