from __future__ import annotations

from uuid import UUID

from pydantic import EmailStr, Field, StrictBool

from unifocus.auth.roles import Role
from unifocus.schemas import ApiModel, InputModel, omittable


class User(ApiModel):
    id: UUID
    email: str
    role: Role
    employee_id: UUID | None = None
    active: bool
    subject: str


class UserCreate(InputModel):
    email: EmailStr = Field(max_length=254)
    role: Role
    employee_id: UUID | None = None
    subject: str | None = Field(None, min_length=1, max_length=255,
                                description="The token `sub` of this user; defaults to the user's id.")


class UserPatch(InputModel):
    role: Role = omittable()
    active: StrictBool = omittable()  # true or false: not "true", 1 or "yes" (lax pydantic's)
    employee_id: UUID | None = None


class Me(ApiModel):
    user_id: UUID
    tenant_id: UUID
    email: str
    role: Role
    employee_id: UUID | None = None
