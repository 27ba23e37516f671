from __future__ import annotations

from datetime import date, time
from uuid import UUID

from pydantic import Field, field_serializer, model_validator

from unifocus.schemas import ApiModel, InputModel

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
    start_time: time = Field(description="Local wall-clock time, HH:MM.")
    end_time: time = Field(description="HH:MM; `endTime <= startTime` means overnight.")

    @model_validator(mode="after")
    def _whole_minutes(self) -> ShiftCreate:
        for t in (self.start_time, self.end_time):
            if t.second or t.microsecond or t.tzinfo is not None:
                raise ValueError("times are HH:MM wall-clock times")
        return self


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
    start_date: date
    end_date: date = Field(description=f"Inclusive; `endDate >= startDate`, at most {MAX_SCHEDULE_DAYS} days.")
    shifts: list[ShiftCreate] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _range(self) -> ScheduleCreate:
        if self.end_date < self.start_date:
            raise ValueError("endDate must be on or after startDate")
        if (self.end_date - self.start_date).days >= MAX_SCHEDULE_DAYS:
            raise ValueError(f"a schedule spans at most {MAX_SCHEDULE_DAYS} days")
        return self
