"""Shared pydantic base: camelCase on the wire, snake_case in Python."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema
from pydantic.alias_generators import to_camel

from unifocus.errors import ValidationFailed


class ApiModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, from_attributes=True)


class InputModel(BaseModel):
    """Request bodies: unknown fields are refused, strings are bounded."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", str_max_length=1000
    )


def _drop_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def omittable(**kwargs: Any) -> Any:
    """A PATCH field that may be left out (then unchanged) but is never null: an explicit
    null is refused with 422 instead of reaching a NOT NULL column (a 500)."""
    return Field(None, json_schema_extra=_drop_default, **kwargs)


MIN_INSTANT = datetime(1900, 1, 1, tzinfo=UTC)


def _in_range(value: datetime) -> datetime:
    try:
        in_utc = value.astimezone(UTC)
    except OverflowError as exc:  # e.g. 0001-01-01T00:00:00+14:00 is before year 1 in UTC
        raise ValueError("the instant is out of range") from exc
    if in_utc < MIN_INSTANT:
        raise ValueError("the instant is before 1900-01-01T00:00:00Z")
    return value


# The wire forms of contract section 1, checked on the text before pydantic parses it: pydantic
# alone is lenient (`+0000`, no seconds, `2027-01-01T00:00:00Z` as a date, a number as Unix
# seconds, `true` or "5" as an integer), and a lenient form a client sends by mistake is stored
# as a value nobody wrote down. One precompiled `fullmatch` each: instants are on every punch.
# [0-9], not \d: \d also matches other scripts' digits.
# RFC 3339 section 5.6 date-time: separator `T`, `t` or (the section's note) one space; seconds
# required, fraction optional; the offset required, `Z`/`z` or `+HH:MM`/`-HH:MM`.
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_HHMM = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")

INSTANT_FORM = "RFC 3339 with an offset, e.g. 2026-03-08T09:04:00-05:00 or 2026-03-08T14:04:00.5Z"
DATE_FORM = "YYYY-MM-DD"
TIME_FORM = "HH:MM (24-hour)"


def _rfc3339_text(value: Any) -> Any:
    if isinstance(value, datetime):
        return value  # built in Python, not parsed from a request
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise ValueError(f"must be {INSTANT_FORM}")
    return value


def _date_text(value: Any) -> Any:
    if type(value) is date:
        return value  # built in Python (not a datetime, which is a date subclass)
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise ValueError(f"must be a date, {DATE_FORM}")
    return value


def _hhmm_text(value: Any) -> Any:
    if isinstance(value, time) and not (value.second or value.microsecond or value.tzinfo):
        return value  # built in Python
    if not isinstance(value, str) or not _HHMM.fullmatch(value):
        raise ValueError(f"must be a wall-clock time, {TIME_FORM}")
    return value


def json_integer(value: Any) -> Any:
    """A `field_validator(mode="before")` for integer fields of a body (a validator on the field,
    not an Annotated type: there its `ge`/`le` would no longer reach the OpenAPI schema as
    `minimum`/`maximum`). bool is an int subclass (`true` would be 1) and lax pydantic reads
    "5" as 5. `5.0` stays accepted as 5: JSON has one number type and the OpenAPI
    `type: integer` (JSON Schema) matches 5.0; a fraction (1.5) is refused by pydantic."""
    if isinstance(value, bool | str):
        raise ValueError("must be a JSON integer, e.g. 5 (not a string or a boolean)")
    return value


def utc_iso(value: datetime) -> str:
    """An instant as the contract returns it: in UTC, `...Z`. Converted, not only relabelled:
    a value PostgreSQL rendered into JSON carries the session's zone."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


# An RFC 3339 instant with an offset, from 1900 on and representable in UTC: anything else is
# a 422, not an OverflowError (a 500) in date arithmetic or in the database driver.
Instant = Annotated[AwareDatetime, BeforeValidator(_rfc3339_text), AfterValidator(_in_range)]
# A local date, exactly YYYY-MM-DD (still `format: date` in the OpenAPI document).
LocalDate = Annotated[date, BeforeValidator(_date_text)]
# A wall-clock time, exactly HH:MM: the OpenAPI `format: time` would promise RFC 3339's
# full-time (seconds and an offset), so the schema says what is taken instead.
WallTime = Annotated[time, BeforeValidator(_hhmm_text),
                     WithJsonSchema({"type": "string", "pattern": f"^{_HHMM.pattern}$", "examples": ["09:00"]})]

# Local dates the service computes with: outside them, the margins a timesheet reads around
# its range overflow datetime arithmetic, so no schedule may lie outside them either.
EARLIEST_DATE, LATEST_DATE = date(1900, 1, 1), date(9998, 12, 31)
DATE_BOUNDS = f"Dates must be between {EARLIEST_DATE} and {LATEST_DATE}."


def check_order(start: date | datetime | None, end: date | datetime | None) -> None:
    """`from` after `to` is a client's mistake, not an empty range: the same 422 on every list."""
    if start is not None and end is not None and start > end:
        raise ValidationFailed("The request is invalid; see errors.",
                               errors=[{"field": "from", "message": "from must not be after to"}])
