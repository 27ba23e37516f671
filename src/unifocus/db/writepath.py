"""The write path: the only way the API changes data (ARCHITECTURE.md, "The request path").

One PostgreSQL transaction holds, in order: the tenant setting, the caller's role check, the
idempotency claim, the feature's writes, the audit entries and the stored response. It
commits all of it or none of it. Routes declare `WriteRequest` as a dependency and hand
their work to `WriteRequest.run`; read routes get READ ONLY transactions, so a route that
tries to write any other way fails.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson
from fastapi import Header, Request
from pydantic import BaseModel
from starlette.responses import Response

from unifocus.audit.writer import INSERT_ENTRIES, AuditEntry, entry_args
from unifocus.auth.context import Caller, Claim, Entered, Prefetch, bearer_identity, enter
from unifocus.auth.roles import Role
from unifocus.auth.tokens import Identity
from unifocus.db.pool import UNAVAILABLE, Database, discard
from unifocus.errors import (
    AppError,
    BadRequest,
    IdempotencyInProgress,
    IdempotencyKeyReused,
    ServiceUnavailable,
    problem_body,
)
from unifocus.idempotency import store
from unifocus.idempotency.keys import HEADER, fingerprint, parse_key
from unifocus.observability import hooks
from unifocus.settings import Settings

log = logging.getLogger("unifocus.writepath")

JSON = "application/json"
AUDIT_PARAMS = 11  # INSERT_ENTRIES's parameters
_PARAM = re.compile(r"\$(\d+)")


def renumber(sql: str, offset: int) -> str:
    """`sql` with its parameters $1..$n renamed $(1+offset)..$(n+offset), to be composed into
    a larger statement. Only for this module's constant SQL (no dollar-quoted strings)."""
    return _PARAM.sub(lambda m: f"${int(m.group(1)) + offset}", sql) if offset else sql


@functools.lru_cache(maxsize=64)  # a handful of shapes: the SQL text is built once each
def compose_finish(deferred: tuple[tuple[str, int], ...], audited: bool, keyed: bool) -> str:
    """The last statement of a write: the deferred writes (each `(sql, parameter count)`),
    then the audit entries (INSERT_ENTRIES), then the stored response (store.STORE), as one
    statement of data-modifying CTEs: one round trip, and the chain lock (taken by the audit
    insert) held only from here to COMMIT. Parameters: the deferred writes' in order, then
    the audit's 11, then the store's 8."""
    parts: list[str] = []
    offset = 0
    for i, (sql, count) in enumerate(deferred):
        parts.append(f"d{i} AS ({renumber(sql, offset)})")
        offset += count
    steps: list[str] = []
    if audited:
        steps.append(renumber(INSERT_ENTRIES, offset))
        offset += AUDIT_PARAMS
    if keyed:
        steps.append(renumber(store.STORE, offset))
    if not steps:
        steps.append("SELECT 1")
    parts += [f"s{i} AS ({sql})" for i, sql in enumerate(steps[:-1])]
    head = ("WITH " + ", ".join(parts) + " ") if parts else ""
    return head + steps[-1]


@dataclass
class Result:
    """What a write handler answers: status, body and, for creations, the new Location."""

    status: int
    body: BaseModel | dict[str, Any] | list[Any] | None = None
    location: str | None = None

    def encode(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, BaseModel):
            return self.body.model_dump_json(by_alias=True).encode()
        return orjson.dumps(self.body)


@dataclass
class WriteTx:
    """What a handler gets: the connection (in the open transaction), the caller, the
    route's prefetched context (see `Prefetch`), and the audit entries it must add for every
    entity it changes."""

    conn: asyncpg.Connection
    caller: Caller
    settings: Settings
    prefetched: Any = None
    entries: list[AuditEntry] = field(default_factory=list)
    deferred: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    # True in the two-statement write (db/optimistic.py): no transaction is open, so the
    # handler may only defer its writes; it raises `NeedsTransaction` for anything else.
    optimistic: bool = False
    seen_version: str | None = None  # the facts' version the handler read (optimistic only)
    # What to count once the write is committed (an optimistic attempt may be abandoned).
    committed_hooks: list[Callable[[], None]] = field(default_factory=list)

    def audit(self, entry: AuditEntry) -> None:
        self.entries.append(entry)

    def after_commit(self, hook: Callable[[], None]) -> None:
        self.committed_hooks.append(hook)

    def run_committed_hooks(self) -> None:
        for hook in self.committed_hooks:
            hook()

    def defer(self, sql: str, *args: Any) -> None:
        """Run this write (an INSERT whose result the handler already knows: no RETURNING) in
        the statement that appends the audit entries, instead of a round trip of its own. It
        still runs in this transaction, before COMMIT, and its failure fails the request."""
        self.deferred.append((sql, args))


Handler = Callable[[WriteTx], Awaitable[Result]]


class NeedsTransaction(Exception):
    """Raised by a handler in an optimistic write (`WriteTx.optimistic`) that needs to write
    something it cannot defer: the request is run again in a transaction. `reason` is the
    outcome `unifocus_punch_writes_total` counts."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# `WriteTx.prefetched` when the first statement made no reads for this request.
NOT_READ: Any = object()


def respond(status: int, body: bytes, headers: dict[str, str], replayed: bool = False) -> Response:
    out = dict(headers)
    if replayed:
        out["Idempotent-Replayed"] = "true"
    return Response(content=body, status_code=status, headers=out)


def stored_headers(result: Result, body: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    if body:
        headers["content-type"] = JSON
    if result.location:
        headers["location"] = result.location
    return headers


def key_in_flight() -> IdempotencyInProgress:
    """The answer when a key's claim could not be taken in time: its original still holds it."""
    hooks.idempotency_lookup("in_progress")
    return IdempotencyInProgress("A request with this Idempotency-Key is still in progress; retry shortly.",
                                 headers={"Retry-After": "1"})


def lock_refusal(exc: asyncpg.PostgresError) -> ServiceUnavailable:
    """The answer when a write waited too long for a row or chain lock, or deadlocked."""
    if isinstance(exc, asyncpg.exceptions.DeadlockDetectedError):
        return ServiceUnavailable("The write conflicted with another; retry.", retry_after=1)
    return ServiceUnavailable("The write waited too long for a lock; retry.", retry_after=1)


# The key's table: every claim (unifocus_claim, unifocus_write_punch, unifocus_write_punches)
# is an `INSERT INTO idempotency_records`, and nothing else on the write path locks its rows
# (the cleanup job's DELETE of expired records does: a claim waiting on it is 409, harmless).
_KEY_TABLE = re.compile(r"\bidempotency_records\b")


def waited_for_key(exc: asyncpg.PostgresError) -> bool:
    """Whether a lock timeout was the key's claim waiting for its original in flight. The
    error's context lists what waited, innermost first, a frame a line (a statement's SQL
    text may run on over more lines). Only the first line is read, and only for a name:
    its words are in the server's `lc_messages` language, but a relation's name and a
    statement's SQL text are the same in every language. The key is busy iff that line
    names `idempotency_records`, as seen on PostgreSQL 15:

    - `while inserting index tuple (0,1) in relation "idempotency_records"` (German `beim
      Einfügen von Indextupel (0,1) in Relation »idempotency_records«`): the claim's insert
      waited for the transaction that holds the key's row, the usual case;
    - `SQL statement "INSERT INTO idempotency_records ...` (German `SQL-Anweisung »INSERT
      INTO idempotency_records ...`): the claim's insert waited on a lock that adds no line
      of its own (a row lock queued behind another waiter).

    Anything else is a lock held too long, not the key (503): the employee row a punch locks
    after its claim (`while locking tuple (0,3) in relation "employees"`), an audit chain,
    or the tenant row that the claim's foreign-key check locks while the tenant's settings
    change (`while locking tuple (0,4) in relation "tenants"`, then the check's `SELECT 1
    FROM ONLY "public"."tenants" ...`: the claim's insert comes only on a later line)."""
    context = getattr(exc, "context", None) or ""
    first = next((line for line in context.splitlines() if line.strip()), "")
    return _KEY_TABLE.search(first) is not None


def lock_answer(exc: asyncpg.PostgresError) -> AppError:
    """The answer to a lock timeout or a deadlock: 409 in progress when the key's own claim
    waited (`waited_for_key`), else 503 with Retry-After (`lock_refusal`). Nothing is stored
    for the key either way: its claim is rolled back with the rest."""
    if isinstance(exc, asyncpg.exceptions.LockNotAvailableError) and waited_for_key(exc):
        return key_in_flight()
    return lock_refusal(exc)


def count_failed_audit(wtx: WriteTx, exc: BaseException) -> None:
    """A statement carrying audit entries failed: counted, unless the database was unreachable
    (that is a 503 and counted as such) or a row of the change itself broke a unique index
    (the write's conflict, answered by the route; the audit sink did not fail)."""
    if wtx.entries and not isinstance(exc, (*UNAVAILABLE, asyncpg.exceptions.UniqueViolationError)):
        hooks.audit_failed()


class WriteRequest:
    """FastAPI dependency object for write routes (see `writer`)."""

    write_path = True  # the marker the route-coverage test looks for

    def __init__(self, request: Request, identity: Identity, key: str | None, min_role: Role, body: bytes):
        self.request = request
        self.identity = identity
        self.key = key
        self.min_role = min_role
        self.body = body
        self.db: Database = request.app.state.db
        self.settings: Settings = request.app.state.settings
        # Set once the caller's authentication is counted (a write that falls back from the
        # two-statement path to the transaction reads the caller twice, counts it once).
        self.auth_counted = False

    @property
    def request_id(self) -> str:
        return str(getattr(self.request.state, "request_id", "-"))

    def _scope(self, caller: Caller) -> store.Scope:
        assert self.key is not None
        return store.Scope(caller.tenant_id, caller.user_id, self.request.method, self.request.url.path, self.key)

    def fingerprint(self) -> bytes:
        r = self.request
        return fingerprint(r.method, r.url.path, r.url.query, self.body)

    def claim(self, fp: bytes) -> Claim | None:
        """The idempotency claim of a keyed write (None without a key)."""
        if self.key is None:
            return None
        return Claim(self.request.method, self.request.url.path, self.key, fp, self.ttl_seconds())

    def ttl_seconds(self) -> float:
        return self.settings.idempotency_ttl_hours * 3600

    def lock_ms(self) -> int:
        """How long a keyed write waits on a lock: the key's original in flight, a row."""
        return int(self.settings.idempotency_wait_seconds * 1000)

    async def run(self, handler: Handler, prefetch: Prefetch | None = None) -> Response:
        ttl = self.ttl_seconds()
        lock_ms = self.lock_ms() if self.key else None
        fp = self.fingerprint() if self.key else b""
        claim = self.claim(fp)
        kept: tuple[Caller, AppError] | None = None
        async with self.db.connection() as conn:
            tx = conn.transaction()
            await tx.start()
            committed = cancelled = False
            try:
                entered = await self.identify(conn, lock_ms, claim, prefetch)
                caller = entered.caller
                if entered.claimed is False:
                    early = self.answer_duplicate(entered.stored, fp)
                    if early is not None:
                        return early
                elif entered.claimed:
                    hooks.idempotency_lookup("miss")
                # A duplicate run again (replay disabled) has no prefetch: the first statement
                # reads only for the key's owner. Handlers then read step by step.
                prefetched = NOT_READ if entered.claimed is False else entered.context
                wtx = WriteTx(conn, caller, self.settings, prefetched)
                try:
                    result = await handler(wtx)
                except AppError as exc:
                    if not exc.kept or self.key is None:
                        raise
                    await tx.rollback()
                    committed = True  # nothing left to roll back
                    kept = (caller, exc)
                else:
                    body = result.encode()
                    headers = stored_headers(result, body)
                    await self._finish(conn, wtx, result.status, headers, body)
                    await tx.commit()
                    committed = True
                    hooks.audit_written(len(wtx.entries))
                    wtx.run_committed_hooks()
                    return respond(result.status, body, headers)
            except (asyncpg.exceptions.LockNotAvailableError, asyncpg.exceptions.DeadlockDetectedError) as exc:
                # lock_timeout outside the claim (a row or chain lock held too long), or a deadlock
                raise lock_refusal(exc) from exc
            except UNAVAILABLE:
                discard(conn)  # hung or broken: no rollback round trip, 503 within the bound
                raise
            except asyncio.CancelledError:
                # A statement may still run on it: a ROLLBACK would first wait for the server to
                # acknowledge the cancel, on a hung one up to db_timeout_seconds (pool.py
                # ABANDON). None is sent: the pool's connection() terminates it, and the server
                # ends the transaction itself when the connection goes.
                cancelled = True
                raise
            finally:
                if not committed and not cancelled:
                    try:
                        await tx.rollback()
                    except (*UNAVAILABLE, asyncpg.exceptions.InterfaceError):
                        pass
        # A kept domain answer is stored once this connection is back in the pool: holding it
        # while waiting for a second one starves the pool (503 at one connection per worker).
        assert kept is not None
        return await self._store_domain_error(kept[0], fp, ttl, kept[1])

    async def identify(
        self, conn: asyncpg.Connection, lock_ms: int | None, claim: Claim | None, prefetch: Prefetch | None
    ) -> Entered:
        """Tenant, caller, (for a keyed write) the claim and the route's prefetch, in one
        round trip. The caller is recorded on the request, and counted once per request (a
        two-statement write that falls back identifies again)."""
        try:
            entered = await enter(conn, self.identity, self.request_id, self.min_role, lock_ms, claim, prefetch,
                                  count=not self.auth_counted)
        except asyncpg.exceptions.LockNotAvailableError as exc:
            # the original holds the key's row (409), or a row this statement locks after the
            # claim, such as a punch's employee, is held too long (503)
            raise lock_answer(exc) from exc
        except UNAVAILABLE:
            raise
        except asyncpg.PostgresError:
            if claim is not None:
                hooks.idempotency_lookup("error")
            raise
        self.auth_counted = True
        self.request.state.user_id = str(entered.caller.user_id)
        return entered

    def answer_duplicate(self, row: Any, fp: bytes) -> Response | None:
        """The answer for a duplicate of a stored request (None: run it anyway, only when
        replay is disabled, a deliberately broken deployment)."""
        if row["o_status"] is None:
            # Cannot normally happen: a claim is only visible once its response is stored.
            hooks.idempotency_lookup("in_progress")
            raise IdempotencyInProgress("A request with this key is in progress.", headers={"Retry-After": "1"})
        if bytes(row["o_fingerprint"]) != fp:
            hooks.idempotency_lookup("mismatch")
            raise IdempotencyKeyReused(
                "This Idempotency-Key was used with another request (method, path, query or body)."
            )
        hooks.idempotency_lookup("hit")
        if not self.settings.idempotency_replay_enabled:
            return None
        headers = orjson.loads(row["o_headers"]) if row["o_headers"] else {}
        return respond(row["o_status"], bytes(row["o_body"] or b""), headers, replayed=True)

    async def _finish(
        self, conn: asyncpg.Connection, wtx: WriteTx, status: int, headers: dict[str, str], body: bytes
    ) -> None:
        """The deferred writes, the audit entries, then the stored response, in one
        statement (`compose_finish`): last, so the chain lock is held briefly."""
        caller = wtx.caller
        args: list[Any] = []
        for _, deferred_args in wtx.deferred:
            args += deferred_args
        if wtx.entries:
            args += entry_args(caller.tenant_id, caller.user_id, caller.request_id, wtx.entries,
                               self.settings.audit_chains)
        if self.key is not None:
            args += store.store_args(self._scope(caller), status, headers, body)
        if not args:
            return
        sql = compose_finish(tuple((q, len(a)) for q, a in wtx.deferred), bool(wtx.entries), self.key is not None)
        try:
            await conn.execute(sql, *args)
        except Exception as exc:
            count_failed_audit(wtx, exc)
            raise

    async def _store_domain_error(self, caller: Caller, fp: bytes, ttl: float, exc: AppError) -> Response:
        """A domain answer (404, 409, ...) is kept for the key, but none of the handler's
        writes are: they were rolled back; the answer is stored in a transaction of its own."""
        body = problem_body(exc.status, exc.slug, exc.title, exc.detail, self.request.url.path, exc.errors)
        headers = {"content-type": "application/problem+json", **exc.headers}
        scope = self._scope(caller)
        async with self.db.tenant_tx(caller.tenant_id, readonly=False) as conn:
            if await store.store_new(conn, scope, fp, ttl, exc.status, headers, body):
                return respond(exc.status, body, headers)
            stored = await store.fetch(conn, scope)
        if stored is None or stored.status is None or stored.fingerprint != fp:
            return respond(exc.status, body, headers)
        return respond(stored.status, stored.body, stored.headers, replayed=True)


# 257: a quoted key of 255 characters is 257 on the wire.
KEY_SCHEMA = {"minLength": 1, "maxLength": 257, "pattern": "^[\\x20-\\x7E]+$"}
KEY_DESCRIPTION = (
    "1-255 printable ASCII characters, bare or quoted (`\"abc\"` is `abc`): a value that starts "
    "with a quote is a structured-field string and must be a well-formed one; any other is a bare "
    "key, quotes included (`a\"b`). A comma is part of the key: `k1, k2`, which is also what a "
    "proxy may make of two headers, is taken as the one key `k1, k2` (it cannot be told from a "
    "key that contains `, `); two separate headers are 400. A repeat of the same request within the "
    "retention window (24 h) replays the original response with `Idempotent-Replayed: true`; "
    "the same key with another request is 422."
)


def writer(min_role: Role) -> Callable[..., Awaitable[WriteRequest]]:
    """The dependency of every write route: `w: WriteRequest = Depends(writer(Role.manager))`.
    One dependency, not three: each sub-dependency costs FastAPI time on every write."""

    async def dependency(
        request: Request,
        # Documentation only: the key is read from the raw headers (`parse_key`), so a bad one
        # is the contract's 400, not the 422 a validated parameter would give. Typed `str` so
        # the schema says a string (an absent header is simply not sent), with its bounds.
        idempotency_key: str = Header(default=None, alias=HEADER, description=KEY_DESCRIPTION,
                                      json_schema_extra=KEY_SCHEMA),
    ) -> WriteRequest:
        identity = await bearer_identity(request)
        key = parse_key(request)  # the raw header list: repeated or quoted forms are checked
        if key is None and request.app.state.settings.idempotency_required:
            # A refusal of the request, so the caller's own refusal (403) comes first.
            await check_caller(request, identity, min_role)
            raise BadRequest("This deployment requires an Idempotency-Key header on every write.")
        return WriteRequest(request, identity, key, min_role, await request.body())

    dependency.write_path = True  # type: ignore[attr-defined]
    dependency.min_role = min_role  # type: ignore[attr-defined]  # read by `caller_first`
    return dependency


def route_min_role(route: Any) -> Role | None:
    """The minimum role of a write route, from its own `writer(...)` dependency (None for a
    route that has none: reads check the caller before any parameter is validated)."""
    pending = list(getattr(getattr(route, "dependant", None), "dependencies", ()))
    while pending:
        dependant = pending.pop()
        if getattr(dependant.call, "write_path", False) is True:
            role = getattr(dependant.call, "min_role", None)
            if isinstance(role, Role):
                return role
        pending.extend(dependant.dependencies)
    return None


async def caller_first(request: Request) -> None:
    """Run before a write route's request is refused as invalid (400/422): the caller's own
    refusal, if any, comes first, as it does on reads. Without a usable token: 401; an unknown
    user 401, a deactivated one 403, a role below the route's 403 (`enter`'s rules, the same
    lookup). So a caller who may not use the route learns nothing of its schema, and gets the
    answer a valid body would get. Only invalid requests pay for this round trip: a valid
    write reads the caller in its own first statement, as before."""
    min_role = route_min_role(request.scope.get("route"))
    if min_role is None:
        return
    await check_caller(request, await bearer_identity(request), min_role)


async def check_caller(request: Request, identity: Identity, min_role: Role) -> None:
    """The caller's refusal, if any (`enter`'s rules: an unknown user 401, a deactivated one or
    a role below `min_role` 403), in a round trip of its own: for a request about to be
    refused as invalid (a missing required key here, a 400/422 through `caller_first`). A
    failed lookup (not an AppError; an unreachable database is one, 503) is logged and
    ignored, here only: it is a courtesy to the order of refusals, and must not turn the
    client's 400/422 into a 500."""
    db: Database = request.app.state.db
    request_id = str(getattr(request.state, "request_id", "-"))
    try:
        async with db.tx(readonly=True) as conn:
            caller = (await enter(conn, identity, request_id, min_role)).caller
    except AppError:
        raise
    except Exception:
        log.warning("caller lookup before a refusal failed", exc_info=True)
        return
    request.state.user_id = str(caller.user_id)
