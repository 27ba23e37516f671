"""Roles: admin > manager > employee. The role always comes from the database."""

from __future__ import annotations

from enum import Enum


class Role(str, Enum):
    employee = "employee"
    manager = "manager"
    admin = "admin"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def at_least(self, other: Role) -> bool:
        return self.rank >= other.rank


_RANK = {Role.employee: 0, Role.manager: 1, Role.admin: 2}
