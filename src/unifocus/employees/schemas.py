from __future__ import annotations

from uuid import UUID

from pydantic import EmailStr, Field, StrictBool, field_validator

from unifocus.schemas import ApiModel, InputModel, omittable
from unifocus.timezones import check_timezone


class Employee(ApiModel):
    id: UUID
    first_name: str
    last_name: str
    external_id: str | None = None
    email: str | None = None
    timezone: str | None = None
    active: bool


class EmployeeCreate(InputModel):
    first_name: str = Field(min_length=1, max_length=100)
    last_name: str = Field(min_length=1, max_length=100)
    external_id: str | None = Field(None, min_length=1, max_length=100)
    email: EmailStr | None = Field(None, max_length=254)
    timezone: str | None = Field(None, max_length=64, description="IANA zone; else the tenant's.")

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        return check_timezone(value)


class EmployeePatch(InputModel):
    first_name: str = omittable(min_length=1, max_length=100)
    last_name: str = omittable(min_length=1, max_length=100)
    external_id: str | None = Field(None, min_length=1, max_length=100)
    email: EmailStr | None = Field(None, max_length=254)
    timezone: str | None = Field(None, max_length=64)
    active: StrictBool = omittable()  # true or false: not "true", 1 or "yes" (lax pydantic's)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        return check_timezone(value)
