"""Read routes: a READ ONLY transaction with the tenant set and the caller loaded."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
from fastapi import Depends, Request

from unifocus.auth.context import Caller, bearer_identity, enter
from unifocus.auth.roles import Role
from unifocus.auth.tokens import Identity
from unifocus.db.pool import Database
from unifocus.pagination import check_cursor


@dataclass
class ReadTx:
    conn: asyncpg.Connection
    caller: Caller


def reader(min_role: Role) -> Callable[..., Any]:
    """The dependency of every read route: `r: ReadTx = Depends(reader(Role.employee))`."""

    async def dependency(
        request: Request, identity: Identity = Depends(bearer_identity)
    ) -> AsyncIterator[ReadTx]:
        db: Database = request.app.state.db
        request_id = str(getattr(request.state, "request_id", "-"))
        async with db.tx(readonly=True) as conn:
            caller = (await enter(conn, identity, request_id, min_role)).caller
            request.state.user_id = str(caller.user_id)
            check_cursor(request)  # a malformed cursor: 400, only now that the caller may read
            yield ReadTx(conn, caller)

    return dependency
