"""Shared pydantic base: camelCase on the wire, snake_case in Python."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel


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


_RFC3339_START = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def _rfc3339_text(value: Any) -> Any:
    """Only a date-and-time text: pydantic alone would also take a number (or a string of
    digits) as Unix seconds, and a clock that sends `1700000000` would have its punch stored
    at an instant nobody wrote down. The rest (offset required, valid fields) is pydantic's."""
    if isinstance(value, datetime):
        return value  # built in Python, not parsed from a request
    if not isinstance(value, str) or not _RFC3339_START.match(value):
        raise ValueError("must be an RFC 3339 date and time with an offset, e.g. 2026-03-08T09:04:00-05:00")
    return value


def utc_iso(value: datetime) -> str:
    """An instant as the contract returns it: in UTC, `...Z`. Converted, not only relabelled:
    a value PostgreSQL rendered into JSON carries the session's zone."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


# An RFC 3339 instant with an offset, from 1900 on and representable in UTC: anything else is
# a 422, not an OverflowError (a 500) in date arithmetic or in the database driver.
Instant = Annotated[AwareDatetime, BeforeValidator(_rfc3339_text), AfterValidator(_in_range)]
