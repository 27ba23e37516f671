from __future__ import annotations

from uuid import UUID

from pydantic import Field, field_validator

from unifocus.schemas import ApiModel, InputModel, json_integer, omittable
from unifocus.timezones import check_timezone

Minutes = Field(ge=0, le=1440)


class Policy(ApiModel):
    """Exception rule parameters (contract section 5), minutes."""

    late_grace_minutes: int = Field(5, ge=0, le=1440)
    early_departure_grace_minutes: int = Field(5, ge=0, le=1440)
    early_clock_in_window_minutes: int = Field(60, ge=0, le=1440)
    missed_punch_after_minutes: int = Field(60, ge=0, le=1440)
    max_break_minutes: int = Field(60, ge=0, le=1440)
    overtime_threshold_minutes: int = Field(15, ge=0, le=1440)


class PolicyPatch(InputModel):
    """Each parameter left out stays as it is; none is nullable (a null was once taken as
    "left out", so a client meaning "back to the default" got no change and no error)."""

    late_grace_minutes: int = omittable(ge=0, le=1440)
    early_departure_grace_minutes: int = omittable(ge=0, le=1440)
    early_clock_in_window_minutes: int = omittable(ge=0, le=1440)
    missed_punch_after_minutes: int = omittable(ge=0, le=1440)
    max_break_minutes: int = omittable(ge=0, le=1440)
    overtime_threshold_minutes: int = omittable(ge=0, le=1440)

    _integers = field_validator("*", mode="before")(json_integer)


class Tenant(ApiModel):
    id: UUID
    name: str
    timezone: str
    policy: Policy


class TenantPatch(InputModel):
    name: str = omittable(min_length=1, max_length=200)
    timezone: str = omittable(max_length=64)
    policy: PolicyPatch = omittable()

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        return check_timezone(value)
