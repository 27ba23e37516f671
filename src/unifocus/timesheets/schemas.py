"""Timesheet answers: one day per local date of the range, and the range's totals."""

from __future__ import annotations

import datetime as dt
from typing import Any
from uuid import UUID

from pydantic import Field

from unifocus.schemas import ApiModel


class TimesheetException(ApiModel):
    """An exception of the day (withdrawn ones are left out)."""

    id: UUID
    type: str
    status: str = Field(description="pending, approved or rejected.")
    shift_id: UUID | None = None
    shift_date: dt.date | None = None
    punch_id: UUID | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class TimesheetTotals(ApiModel):
    scheduled_minutes: int = Field(
        description="Real elapsed minutes of the shift occurrences starting on the date(s)."
    )
    worked_minutes: int = Field(description="Closed clock_in..clock_out intervals minus their breaks.")
    break_minutes: int = Field(description="Breaks inside closed intervals.")
    overtime_minutes: int = Field(
        description="Per occurrence, all worked minutes beyond scheduled when the excess is more than "
        "the tenant's overtimeThresholdMinutes (exactly when an overtime exception exists)."
    )


class TimesheetDay(ApiModel):
    date: dt.date = Field(description="Local date in the employee's time zone (else the tenant's).")
    scheduled_minutes: int
    worked_minutes: int
    break_minutes: int
    overtime_minutes: int
    exceptions: list[TimesheetException] = Field(
        default_factory=list,
        description="Exceptions of the occurrences of this date, and punch-bound exceptions whose punch "
        "falls on this local date.",
    )


class Timesheet(ApiModel):
    employee_id: UUID
    from_date: dt.date = Field(alias="from", description="First local date (inclusive).")
    to_date: dt.date = Field(alias="to", description="Last local date (inclusive).")
    days: list[TimesheetDay] = Field(description="One entry per local date of [from, to], in date order.")
    totals: TimesheetTotals = Field(description="The sum of the days.")
