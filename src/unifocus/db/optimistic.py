"""The two-statement write: read in one autocommit statement, write in another, or fall back.

The classic write (`WriteRequest.run`) is a transaction of four round trips: BEGIN, the first
statement (caller, claim, locks, reads), the last (writes, audit, stored answer), COMMIT.
Its claim and locks are held while the worker runs the handler. Here there is no BEGIN or
COMMIT and nothing is held across Python:

1. **Read** (`read`, a `Prefetch` with `enter`'s arguments): the caller as the database has it
   (role, active), a repeated key's stored answer (replayed at once, as the classic write
   would), and the handler's facts with a version. Nothing is claimed or locked.
2. The handler runs on those facts with `WriteTx.optimistic` set: it may only defer writes.
3. **Write** (`write` builds it): one statement, so one transaction, that claims the key, checks
   the version, and makes every deferred write, the audit entries and the stored answer. It
   returns true when all is written; false when the key is taken (nothing written); or fails
   with SQLSTATE UF001 when the facts changed (all rolled back).

Whenever the answer is not a plain success, the request falls back to the classic write,
which re-reads everything under its locks: a taken key (a duplicate in flight: the classic
claim waits for it and replays its answer), stale facts, a domain error (so that it is stored
for the key exactly as the classic write stores it), a handler that needs the transaction, a
unique violation. Every guarantee is the classic write's: exactly one write per key (the
claim is the same primary key), audit entries in the same statement as the change, the role
read from the database on this request, the tenant set inside each statement.
`unifocus_punch_writes_total{outcome}` counts how each attempt ended.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import asyncpg
from starlette.responses import Response

from unifocus.auth.context import Claim, Prefetch
from unifocus.db.groupcommit import Many
from unifocus.db.writepath import (
    Handler,
    NeedsTransaction,
    Result,
    WriteRequest,
    WriteTx,
    count_failed_audit,
    lock_answer,
    respond,
    stored_headers,
)
from unifocus.errors import AppError
from unifocus.observability import hooks

STALE = "UF001"  # unifocus_write_punch: the facts changed since they were read

Statement = tuple[str, tuple[Any, ...]]  # (sql, args)
# The write statement for a handler's outcome: (wtx, claim, lock_timeout, result, headers,
# body) -> (sql, args), or None when this outcome has no one-statement form.
WriteStatement = Callable[[WriteTx, Claim | None, str | None, Result, dict[str, str], bytes], Statement | None]


@dataclass(frozen=True)
class Grouped:
    """How write statements of several requests may go as one (group commit,
    `db/groupcommit.py`): `lane` says which statements may share, `many` sends several."""

    lane: Callable[[Statement], Hashable]
    many: Many


async def _alone(conn: asyncpg.Connection, statement: Statement) -> str:
    """The write statement sent alone: "written", or "key_taken" when it answers false (stale
    facts raise SQLSTATE UF001)."""
    sql, args = statement
    return "written" if await conn.fetchval(sql, *args) else "key_taken"


async def run(w: WriteRequest, handler: Handler, read: Prefetch, write: WriteStatement,
              classic: Prefetch, grouped: Grouped | None = None) -> Response:
    """Answer the request with the two-statement write, or with the classic one (`classic`
    is its prefetch) when that cannot be used; see the module's docstring."""
    fp = w.fingerprint() if w.key else b""
    claim = w.claim(fp)
    async with w.db.connection() as conn:
        answered = await _attempt(w, conn, handler, read, write, claim, fp, grouped)
    if isinstance(answered, Response):
        return answered
    hooks.punch_write(answered)
    return await w.run(handler, classic)


async def _attempt(w: WriteRequest, conn: asyncpg.Connection, handler: Handler, read: Prefetch,
                   write: WriteStatement, claim: Claim | None, fp: bytes, grouped: Grouped | None) -> Response | str:
    """The answer, or why the classic write must give it."""
    entered = await w.identify(conn, None, claim, read)
    caller = entered.caller
    if entered.claimed is False:
        early = w.answer_duplicate(entered.stored, fp)
        if early is None:
            return "key_taken"  # replay disabled: the classic write runs the duplicate again
        hooks.punch_write("replayed")
        return early
    wtx = WriteTx(conn, caller, w.settings, entered.context, optimistic=True)
    try:
        result = await handler(wtx)
    except NeedsTransaction as needs:
        return needs.reason  # withdrawals, or an out-of-order punch's re-attribution
    except AppError:
        return "domain_error"  # answered (and kept for the key) by the classic write
    body = result.encode()
    headers = stored_headers(result, body)
    lock_timeout = f"{w.lock_ms()}ms" if w.key else None
    statement = write(wtx, claim, lock_timeout, result, headers, body) if wtx.deferred else None
    if statement is None:
        return "no_write"
    try:
        if grouped is None:
            outcome = await _alone(conn, statement)
        else:
            outcome = await w.db.group_commit.write(grouped.lane(statement), conn, statement, _alone, grouped.many)
    except (asyncpg.exceptions.LockNotAvailableError, asyncpg.exceptions.DeadlockDetectedError) as exc:
        # lock_timeout on the key: the original is still in flight (the error's context names
        # the statement that waited). Else a row or chain lock held too long, or a deadlock.
        raise lock_answer(exc) from exc
    except asyncpg.exceptions.UniqueViolationError:
        return "conflict"  # e.g. the same device punch stored meanwhile: the classic write finds it
    except asyncpg.PostgresError as exc:
        if exc.sqlstate == STALE:
            return "stale"
        count_failed_audit(wtx, exc)
        raise
    if outcome != "written":
        return outcome  # key_taken, stale or group_failed (the whole group rolled back)
    if w.key:
        hooks.idempotency_lookup("miss")
    hooks.audit_written(len(wtx.entries))
    wtx.run_committed_hooks()
    hooks.punch_write("written")
    return respond(result.status, body, headers)
