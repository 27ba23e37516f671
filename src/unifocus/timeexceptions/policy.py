"""The tenant's exception-rule parameters (contract section 5), with the contract defaults."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

# camelCase JSON key -> dataclass field; the JSON shape is the contract's, the fields are ours.
_JSON_KEYS: dict[str, str] = {
    "lateGraceMinutes": "late_grace_minutes",
    "earlyDepartureGraceMinutes": "early_departure_grace_minutes",
    "earlyClockInWindowMinutes": "early_clock_in_window_minutes",
    "missedPunchAfterMinutes": "missed_punch_after_minutes",
    "maxBreakMinutes": "max_break_minutes",
    "overtimeThresholdMinutes": "overtime_threshold_minutes",
}
_MAX_MINUTES = 7 * 24 * 60  # a week: anything larger is a typo, not a policy


@dataclass(frozen=True)
class Policy:
    late_grace_minutes: int = 5
    early_departure_grace_minutes: int = 5
    early_clock_in_window_minutes: int = 60
    missed_punch_after_minutes: int = 60
    max_break_minutes: int = 60
    overtime_threshold_minutes: int = 15

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            # bool is an int subclass; `true` minutes is a client error, not 1.
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{_camel(f.name)} must be an integer number of minutes")
            if not 0 <= value <= _MAX_MINUTES:
                raise ValueError(f"{_camel(f.name)} must be between 0 and {_MAX_MINUTES}")

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Policy:
        """Build from camelCase JSON; missing keys take the contract defaults.

        Unknown keys raise ValueError (a misspelt key silently ignored would leave a tenant
        on a default they believe they changed). `None` means all defaults.
        """
        if data is None:
            return cls()
        if type(data) is dict:
            # Every punch evaluates its tenant's policy, which rarely changes: the checked
            # Policy is shared. The key holds each value's type, so `true` or `1.0` never finds
            # the Policy of `1` (they are equal and hash alike, and both must stay errors).
            try:
                return _shared(tuple((k, type(v), v) for k, v in data.items()))
            except TypeError:  # an unhashable value (a list, say): checked uncached, and refused
                pass
        return cls._checked(data)

    @classmethod
    def _checked(cls, data: Mapping[str, Any]) -> Policy:
        unknown = sorted(set(data) - set(_JSON_KEYS))
        if unknown:
            raise ValueError(f"unknown policy keys: {', '.join(unknown)}")
        return cls(**{_JSON_KEYS[k]: v for k, v in data.items()})

    def to_json(self) -> dict[str, int]:
        """camelCase JSON with every parameter present."""
        return {key: getattr(self, name) for key, name in _JSON_KEYS.items()}

    def merged(self, patch: Mapping[str, Any]) -> Policy:
        """This policy with the camelCase keys of `patch` replaced (for PATCH /api/tenant)."""
        return Policy.from_json({**self.to_json(), **patch})


# A tenant has one policy at a time: a few hundred tenants' policies per worker. A rejected
# policy raises, and lru_cache keeps no entry for a call that raised.
@functools.lru_cache(maxsize=1024)
def _shared(items: tuple[tuple[str, type, Any], ...]) -> Policy:
    return Policy._checked({k: v for k, _, v in items})


def _camel(name: str) -> str:
    return next(key for key, field_name in _JSON_KEYS.items() if field_name == name)


DEFAULT_POLICY = Policy()
