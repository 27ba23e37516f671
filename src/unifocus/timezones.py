"""IANA time zone names, checked against the zone database."""

from __future__ import annotations

from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def check_timezone(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        if not value or ".." in value or value.startswith("/"):
            raise ValueError
        zone(value)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError(f"'{value[:64]}' is not an IANA time zone") from exc
    return value
