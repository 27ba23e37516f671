"""Keyset pagination: opaque cursors over (created_at, id), newest first."""

from __future__ import annotations

import base64
import functools
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar
from uuid import UUID

import orjson
from fastapi import Query, Request
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from unifocus.errors import BadRequest

T = TypeVar("T")
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_CURSOR_LENGTH = 200


class Page(BaseModel, Generic[T]):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)
    items: list[T]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")


def encode_cursor(created_at: datetime, row_id: UUID) -> str:
    raw = orjson.dumps([created_at.isoformat(), str(row_id)])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> tuple[datetime, UUID] | None:
    if cursor is None:
        return None
    try:
        if len(cursor) > MAX_CURSOR_LENGTH:
            raise ValueError("too long")
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        ts, rid = orjson.loads(raw)
        if not isinstance(ts, str) or not isinstance(rid, str):
            raise TypeError("a cursor is [instant, id]")
        at = datetime.fromisoformat(ts)
        if at.tzinfo is None:
            raise ValueError("a cursor's instant needs an offset")
        return at.astimezone(UTC), UUID(rid)
    except (ValueError, TypeError, OverflowError, orjson.JSONDecodeError) as exc:
        # Forged cursors (wrong types, naive or out-of-range instants) are the client's error.
        raise BadRequest("The cursor is not valid.") from exc


_STATE = "page_params"
_MAY_READ = "cursor_may_be_checked"  # set by `check_cursor`: the caller may read this list


class PageParams:
    """`?limit=&cursor=` for every list route. The cursor is decoded as soon as both this and
    the read dependency have run, whichever a route declares first: declared first, it is
    decoded by the read dependency once the caller may read (`check_cursor`); declared after
    it, here, as the caller already may. So a malformed cursor is 400, never before the
    caller's own 401/403, and even on a list that answers without reading it (an employee
    user linked to no record). Its length is checked there too, so a cursor too long is the
    same 400 as any other malformed one (not a 422)."""

    def __init__(
        self,
        request: Request,
        limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Page size (1-500)."),
        # The length is documented, not validated here: decode_cursor refuses it with the rest.
        cursor: str | None = Query(None, description="Opaque cursor from `nextCursor`.",
                                   json_schema_extra={"maxLength": MAX_CURSOR_LENGTH}),
    ) -> None:
        self.limit, self.cursor = limit, cursor
        if cursor is not None:
            setattr(request.state, _STATE, self)
            if getattr(request.state, _MAY_READ, False):
                self.check()  # the read dependency ran first: the caller may read

    @classmethod
    def of(cls, limit: int, cursor: str | None = None) -> PageParams:
        """A page asked for by code rather than a request (a benchmark): decoded on use."""
        page = cls.__new__(cls)
        page.limit, page.cursor = limit, cursor
        return page

    @functools.cached_property
    def after(self) -> tuple[datetime, UUID] | None:
        """The cursor's (timestamp, id), None on the first page; 400 if malformed."""
        return decode_cursor(self.cursor)

    def check(self) -> None:
        """400 if the cursor is malformed."""
        _ = self.after

    def keyset(self) -> tuple[datetime | None, UUID | None, int]:
        """The query's last three parameters: the cursor's (timestamp, id), or NULLs for the
        first page, and LIMIT limit + 1 (the extra row says there is a next page)."""
        ts, row_id = self.after if self.after else (None, None)
        return ts, row_id, self.limit + 1


def check_cursor(request: Request) -> None:
    """Refuse a malformed cursor (400) of this request's list route, if it has one: called
    by the read dependency once the caller is known to be allowed, so that a list which
    answers without reading (e.g. an employee user linked to no record) refuses it too. A
    `PageParams` made after this (declared after the read dependency) checks its own."""
    setattr(request.state, _MAY_READ, True)
    page = getattr(request.state, _STATE, None)
    if isinstance(page, PageParams):
        page.check()


EMPTY_PAGE: dict[str, Any] = {"items": [], "next_cursor": None}


def page_of(rows: list[Any], limit: int, convert: Any, key: str = "created_at") -> dict[str, Any]:
    """`rows` were fetched with LIMIT limit+1, newest first by (`key`, id); the extra row
    means there is a next page."""
    more = len(rows) > limit
    rows = rows[:limit]
    nxt = encode_cursor(rows[-1][key], rows[-1]["id"]) if more and rows else None
    return {"items": [convert(r) for r in rows], "next_cursor": nxt}
