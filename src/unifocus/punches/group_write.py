"""Several single punches' second statements as one (group commit, migration 0012).

Each item is the statement `service.write_statement` built for one request (`unifocus_write_punch`
and its arguments); `unifocus_write_punches` takes the same values as arrays, one entry
per item, with each item's exception and audit rows flattened and tagged with the item's
(1-based) index. The group's audit entries all go on the first item's chain.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from unifocus.db.optimistic import Statement
from unifocus.punches.service import WRITE_PUNCH

WRITE_PUNCHES = "SELECT unifocus_write_punches(" + ", ".join(f"${i}" for i in range(1, 42)) + ")"

# Positions in unifocus_write_punch's arguments (service.write_statement).
_TENANT, _USER, _LOCK, _EMPLOYEE, _SEEN = 0, 1, 2, 3, 4
_KEYED = slice(5, 10)  # method, path, key, fingerprint, ttl
_PUNCH = slice(10, 19)  # id, type, ts, received_at, device, client punch id, source, shift id, shift date
_EXCEPTIONS = slice(19, 27)  # 8 arrays, one entry per exception
_CHAIN, _REQUEST_ID = 27, 28
_AUDIT = slice(29, 36)  # 7 arrays, one entry per audit entry
_ANSWER = slice(36, 39)  # status, headers, body


def lane(statement: Statement) -> tuple[Any, Any]:
    """Writes that may share a statement: one tenant (the statement sets it), one lock timeout."""
    args = statement[1]
    return args[_TENANT], args[_LOCK]


def group_args(items: list[tuple[Any, ...]]) -> tuple[Any, ...]:
    """The arguments of `unifocus_write_punches` for `items` (one lane's)."""
    first = items[0]
    scalars = [[item[_USER], item[_EMPLOYEE], item[_SEEN], *item[_KEYED], *item[_PUNCH], *item[_ANSWER]]
               for item in items]
    columns = [list(column) for column in zip(*scalars, strict=True)]
    users, employees, seen, *rest = columns
    keyed, punch, answer = rest[:5], rest[5:14], rest[14:]
    x_items: list[int] = []
    x_columns: list[list[Any]] = [[] for _ in range(8)]
    a_items: list[int] = []
    a_request_ids: list[str] = []
    a_columns: list[list[Any]] = [[] for _ in range(7)]
    for n, item in enumerate(items, start=1):
        exceptions = item[_EXCEPTIONS]
        x_items.extend([n] * len(exceptions[0]))
        for column, values in zip(x_columns, exceptions, strict=True):
            column.extend(values)
        audit = item[_AUDIT]
        a_items.extend([n] * len(audit[0]))
        a_request_ids.extend([item[_REQUEST_ID]] * len(audit[0]))
        for column, values in zip(a_columns, audit, strict=True):
            column.extend(values)
    return (first[_TENANT], first[_LOCK], first[_CHAIN], users, employees, seen, *keyed, *punch, *answer,
            x_items, *x_columns, a_items, a_request_ids, *a_columns)


async def write_many(conn: asyncpg.Connection, statements: list[Statement]) -> list[str]:
    """One outcome per statement, in order: written, key_taken or stale."""
    assert all(sql == WRITE_PUNCH for sql, _ in statements)  # the arguments' positions are its
    return list(await conn.fetchval(WRITE_PUNCHES, *group_args([args for _, args in statements])))
