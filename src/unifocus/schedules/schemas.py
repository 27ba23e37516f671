from __future__ import annotations

from datetime import date, time
from uuid import UUID

from pydantic import Field, field_serializer, field_validator, model_validator

from unifocus.schemas import (
    DATE_BOUNDS,
    DATE_FORM,
    EARLIEST_DATE,
    LATEST_DATE,
    TIME_FORM,
    ApiModel,
    InputModel,
    LocalDate,
    WallTime,
    json_integer,
)

MAX_SCHEDULE_DAYS = 366


class Shift(ApiModel):
    id: UUID
    schedule_id: UUID
    day_of_week: int = Field(description="ISO weekday: 1 = Monday .. 7 = Sunday.")
    start_time: time
    end_time: time = Field(description="`endTime <= startTime` means the shift ends the next day.")

    @field_serializer("start_time", "end_time")
    def _hhmm(self, value: time) -> str:
        return value.strftime("%H:%M")


class ShiftCreate(InputModel):
    day_of_week: int = Field(ge=1, le=7, description="ISO weekday: 1 = Monday .. 7 = Sunday.")
    start_time: WallTime = Field(description=f"Local wall-clock time, {TIME_FORM}.")
    end_time: WallTime = Field(description=f"{TIME_FORM}; `endTime <= startTime` means overnight.")

    _integer = field_validator("day_of_week", mode="before")(json_integer)


class Schedule(ApiModel):
    id: UUID
    employee_id: UUID
    name: str | None = None
    start_date: date
    end_date: date
    shifts: list[Shift] = Field(default_factory=list)


class ScheduleCreate(InputModel):
    employee_id: UUID
    name: str | None = Field(None, max_length=200)
    start_date: LocalDate = Field(description=f"Local date, {DATE_FORM}, {EARLIEST_DATE} to {LATEST_DATE}.")
    end_date: LocalDate = Field(
        description=f"{DATE_FORM}, inclusive; `endDate >= startDate`, at most {MAX_SCHEDULE_DAYS} days."
    )
    shifts: list[ShiftCreate] = Field(default_factory=list, max_length=50)

    @field_validator("start_date", "end_date")
    @classmethod
    def _bounded(cls, value: date) -> date:
        # The timesheets' bounds: a schedule outside them would have no readable timesheet.
        if not EARLIEST_DATE <= value <= LATEST_DATE:
            raise ValueError(DATE_BOUNDS)
        return value

    @model_validator(mode="after")
    def _range(self) -> ScheduleCreate:
        if self.end_date < self.start_date:
            raise ValueError("endDate must be on or after startDate")
        if (self.end_date - self.start_date).days >= MAX_SCHEDULE_DAYS:
            raise ValueError(f"a schedule spans at most {MAX_SCHEDULE_DAYS} days")
        return self
