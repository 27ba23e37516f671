"""Punches: facts from clocks. Out-of-sequence punches are accepted and flagged by the
exception engine in the punch's own transaction; only malformed input is refused."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast
from uuid import UUID, uuid4

import asyncpg
import orjson

from unifocus.audit.writer import AuditEntry, entry_args
from unifocus.auth.context import NO_EMPLOYEE, Caller, Claim, Prefetch, employee_filter, guard
from unifocus.db.writepath import NeedsTransaction, Result, WriteTx
from unifocus.errors import Conflict, Forbidden, NotFound, Unprocessable
from unifocus.observability import hooks
from unifocus.pagination import EMPTY_PAGE, PageParams, page_of
from unifocus.punches.schemas import Punch, PunchCreate, PunchSource, utc_iso
from unifocus.timeexceptions import engine
from unifocus.timeexceptions.pairing import PunchFact

PUNCH_COLS = (
    "tenant_id, id, employee_id, type, ts, received_at, device, client_punch_id, source, "
    "shift_id, shift_date, voided, void_reason"
)
FUTURE_TOLERANCE = timedelta(minutes=5)


def to_punch(row: Any) -> Punch:
    return Punch(
        id=row["id"], employee_id=row["employee_id"], type=row["type"], timestamp=row["ts"],
        received_at=row["received_at"], device=row["device"], client_punch_id=row["client_punch_id"],
        source=row["source"], shift_id=row["shift_id"], shift_date=row["shift_date"],
        voided=row["voided"], void_reason=row["void_reason"],
    )


def _json(p: Punch) -> dict[str, Any]:
    return dict(p.model_dump(mode="json", by_alias=True))


def check_may_punch_for(caller: Caller, employee_id: UUID) -> None:
    if not caller.sees_employee(employee_id):
        raise Forbidden("Employees may punch only for their own employee record.")


async def find_by_client_id(tx: WriteTx, device: str | None, client_punch_id: str, employee_id: UUID) -> Punch | None:
    """A device's repeat: the punch stored for this device, clientPunchId and employee (the
    key of migration 0013; the same id naming another employee is another punch)."""
    row = await tx.conn.fetchrow(
        f"SELECT {PUNCH_COLS} FROM punches WHERE tenant_id = $1 AND coalesce(device, '') = $2 "  # noqa: S608
        "AND client_punch_id = $3 AND employee_id = $4",
        tx.caller.tenant_id, device or "", client_punch_id, employee_id,
    )
    return to_punch(guard(tx.caller, row)) if row else None


def _checked_instant(body: PunchCreate) -> datetime:
    """The punch's instant in UTC; 422 when it is more than 5 minutes in the future."""
    ts = body.timestamp.astimezone(UTC)
    if ts > datetime.now(UTC) + FUTURE_TOLERANCE:
        raise Unprocessable("The punch is more than 5 minutes in the future.",
                            errors=[{"field": "timestamp", "message": "more than 5 minutes in the future"}])
    return ts


async def record(tx: WriteTx, body: PunchCreate, source: PunchSource) -> dict[str, Any]:
    """Insert one punch, attribute it to an occurrence, and raise what it causes, reading and
    writing statement by statement (batch items, each in its own savepoint; a duplicate run
    again). Answers the created punch as the API shows it (`PunchCreated`, by alias)."""
    ts = _checked_instant(body)
    punch_id = uuid4()
    ev = await engine.evaluate_zone(tx.conn, tx.caller.tenant_id, body.employee_id, ts - engine.PUNCH_ZONE,
                                    ts + engine.PUNCH_ZONE, extra=PunchFact(punch_id, body.type.value, ts))
    return await _write_evaluated(tx, ev, body, source, punch_id, ts, deferred=False)


ENTER_PUNCH = ("SELECT * FROM unifocus_enter_punch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, "
               "$15, $16, $17)")

READ_PUNCH = ("SELECT unifocus_read_punch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, "
              "$15, $16, $17)")
WRITE_PUNCH = "SELECT unifocus_write_punch(" + ", ".join(f"${i}" for i in range(1, 40)) + ")"

INSERT_PUNCH = (
    "INSERT INTO punches (tenant_id, id, employee_id, type, ts, received_at, device, client_punch_id, source, "
    "shift_id, shift_date, created_by) VALUES ($1::uuid, $2::uuid, $3::uuid, $4::text, $5::timestamptz, "
    "$6::timestamptz, $7::text, $8::text, $9::text, $10::uuid, $11::date, $12::uuid)"
)


def prefetch(body: PunchCreate) -> Prefetch:
    """What a single punch reads, made in the write's first round trip (`unifocus_enter_punch`,
    migration 0005): the employee lock and the engine's facts around the punch, and the stored
    punch of a device's repeated `clientPunchId`."""
    return Prefetch(ENTER_PUNCH, _prefetch_args(body))


def read_ahead(body: PunchCreate) -> Prefetch:
    """`prefetch` for the two-statement write (`db/optimistic.py`): the same reads with no
    lock and no claim, and the facts' version (`unifocus_read_punch`, migration 0010)."""
    return Prefetch(READ_PUNCH, _prefetch_args(body), composite=True)


# The window read around a punch reaches days either side of it (`engine.context_args`); near the
# end of Python's calendar that arithmetic would overflow before the punch's own checks answer
# (a 500 for a client error). A punch past _LATEST is in the future, refused as such by
# `_checked_instant` before anything is written, so the facts read for it are never used.
# (The schema's `Instant` refuses anything before 1900, so the other end has room.)
_LATEST = datetime(9999, 12, 24, tzinfo=UTC)


def _prefetch_args(body: PunchCreate) -> tuple[Any, ...]:
    ts = min(body.timestamp.astimezone(UTC), _LATEST)
    window = engine.context_args(ts - engine.PUNCH_ZONE, ts + engine.PUNCH_ZONE)
    return (body.employee_id, *window, body.device, body.client_punch_id)


def write_statement(tx: WriteTx, claim: Claim | None, lock_timeout: str | None, result: Result,
                    headers: dict[str, str], body: bytes) -> tuple[str, tuple[Any, ...]] | None:
    """The two-statement write's second statement for a punch `record_prefetched` deferred:
    `unifocus_write_punch` with the punch, its exceptions, the audit entries and the answer
    to store (None for any other shape of deferred writes)."""
    (punch_sql, punch), *more = tx.deferred
    if punch_sql != INSERT_PUNCH or tx.seen_version is None or len(more) > 1 or any(
            sql != engine.INSERT_ROWS for sql, _ in more):
        return None
    rows = more[0][1][2:] if more else ([],) * 8  # INSERT_ROWS's arrays
    caller = tx.caller
    audit = entry_args(caller.tenant_id, caller.user_id, caller.request_id, tx.entries, tx.settings.audit_chains)
    keyed = (claim.method, claim.path, claim.key, claim.fingerprint, claim.ttl_seconds) if claim else (None,) * 5
    return WRITE_PUNCH, (caller.tenant_id, caller.user_id, lock_timeout, punch[2], tx.seen_version, *keyed,
                         punch[1], *punch[3:11], *rows, audit[1], audit[3], *audit[4:],
                         result.status, orjson.dumps(headers).decode(), body)


def _stored_punch(d: dict[str, Any]) -> dict[str, Any]:
    """A punches row read as JSON, typed like an asyncpg record."""
    return {**d, "tenant_id": UUID(d["tenant_id"]), "id": UUID(d["id"]), "employee_id": UUID(d["employee_id"]),
            "ts": datetime.fromisoformat(d["ts"]), "received_at": datetime.fromisoformat(d["received_at"])}


async def record_prefetched(tx: WriteTx, body: PunchCreate, source: PunchSource) -> Result:
    """`record` for a single punch whose reads came with the write's first round trip
    (`prefetch`): the same checks in the same order, the same rows and audit entries, but the
    punch and the exceptions it raises are written by the write's last statement (their ids
    and timestamps are chosen here; `received_at` is the transaction's now(), as the column
    default would stamp it). Answers 200 with the stored punch for a device's repeat, else 201
    with the created punch."""
    data = orjson.loads(tx.prefetched) if tx.prefetched is not None else {}
    existing = data.get("existing")
    if existing:
        stored = to_punch(guard(tx.caller, _stored_punch(existing)))
        return Result(200, stored, f"/api/punches/{stored.id}")
    ts = _checked_instant(body)
    if "timezone" not in data:
        raise NotFound("employeeId names no employee of this tenant.")
    punch_id = uuid4()
    new = PunchFact(punch_id, body.type.value, ts)
    zone = (ts - engine.PUNCH_ZONE, ts + engine.PUNCH_ZONE)
    # The first clock_in after two quiet days may reveal a session left open before the read
    # window: one more read then (it sets the tenant itself, so no transaction is needed).
    await engine.add_opened_before(tx.conn, data, tx.caller.tenant_id, body.employee_id, *zone, new)
    ev = engine.evaluate_context(data, tx.caller.tenant_id, body.employee_id, *zone, extra=new)
    if tx.optimistic:
        if ev.later_in_zone(new):
            # A stored punch of the zone after this one (this one arrived out of order) may
            # now belong to another occurrence: only the classic read answers the stored
            # attributions (migration 0015), and an UPDATE changes them.
            raise NeedsTransaction("out_of_order")
        if ev.stale:
            raise NeedsTransaction("withdrawals")  # each an UPDATE ... RETURNING of its own
        tx.seen_version = data.get("version")
    created = await _write_evaluated(tx, ev, body, source, punch_id, ts, deferred=True)
    return Result(201, created, f"/api/punches/{punch_id}")


async def _write_evaluated(
    tx: WriteTx, ev: engine.Evaluation, body: PunchCreate, source: PunchSource, punch_id: UUID, ts: datetime,
    *, deferred: bool,
) -> dict[str, Any]:
    """The punch `ev` was evaluated with, the re-attributions of other punches, the
    withdrawals and the exceptions it causes, and their audit entries. Ids and timestamps are
    chosen here (`received_at` and `createdAt` are the transaction's now(), as the column
    defaults would stamp them), so the inserts need no RETURNING: `deferred` hands them to the
    write's last statement (`WriteTx.defer`), else they run now. Re-attributions and
    withdrawals always run now (`engine.reconcile`). Answers the created punch with its
    exceptions, as the API shows it."""
    caller = tx.caller

    async def insert(sql: str, *args: Any) -> None:
        if deferred:
            tx.defer(sql, *args)
        else:
            await tx.conn.execute(sql, *args)

    received_at = ev.now.astimezone(UTC)
    shift_id, shift_date = engine.attribution(ev.occurrence_of(punch_id))
    await insert(INSERT_PUNCH, caller.tenant_id, punch_id, body.employee_id, body.type.value, ts, received_at,
                 body.device, body.client_punch_id, source.value, shift_id, shift_date, caller.user_id)
    punch = punch_json(punch_id, body, source, ts, received_at, shift_id, shift_date)
    tx.audit(AuditEntry("Punch", "created", punch_id, None, punch, employee_id=body.employee_id, punch_id=punch_id))
    # Deferred writes are counted once written (an optimistic attempt may be abandoned).
    count: Callable[[Callable[[], None]], None] = tx.after_commit if deferred else _now
    rows = await engine.reconcile(tx.conn, ev, tx.entries, include_time_based=False, insert=insert,
                                  raised=lambda kind: count(lambda: hooks.exception_raised(kind)))
    count(lambda: hooks.punches_created(source.value))
    return {**punch, "exceptions": [engine.exception_json(r) for r in rows]}


def _now(hook: Callable[[], None]) -> None:
    hook()


async def record_step_by_step(tx: WriteTx, body: PunchCreate, source: PunchSource) -> Result:
    """A single punch without the prefetched reads (see `NOT_READ`): a device's repeat, then
    `record`, each reading for itself."""
    if body.client_punch_id:
        existing = await find_by_client_id(tx, body.device, body.client_punch_id, body.employee_id)
        if existing is not None:
            return Result(200, existing, f"/api/punches/{existing.id}")
    punch = await record(tx, body, source)
    return Result(201, punch, f"/api/punches/{punch['id']}")


def punch_json(
    punch_id: UUID, body: PunchCreate, source: PunchSource, ts: datetime, received_at: datetime,
    shift_id: UUID | None, shift_date: date | None,
) -> dict[str, Any]:
    """A new punch as the API shows it: `Punch` serialised (by alias), built directly because
    this is the hot path (a test holds it equal to the model's own serialisation)."""
    return {
        "id": str(punch_id), "employeeId": str(body.employee_id), "type": body.type.value,
        "timestamp": utc_iso(ts), "receivedAt": utc_iso(received_at), "device": body.device,
        "clientPunchId": body.client_punch_id, "source": source.value,
        "shiftId": str(shift_id) if shift_id else None, "shiftDate": shift_date.isoformat() if shift_date else None,
        "voided": False, "voidReason": None,
    }


async def void(tx: WriteTx, punch_id: UUID, reason: str) -> Punch:
    """Mark a punch voided (the row stays) and re-evaluate its occurrence: the punches it
    shared a session with may be re-attributed (`engine.reconcile`); its own attribution
    stays as it was when voided."""
    current = await get(tx.conn, tx.caller, punch_id)
    # The employee lock before the punch's row lock: the order every evaluation takes.
    await engine.lock_employee(tx.conn, tx.caller.tenant_id, current.employee_id)
    row = await tx.conn.fetchrow(
        f"UPDATE punches SET voided = true, void_reason = $3, voided_at = now(), voided_by = $4 "  # noqa: S608
        f"WHERE tenant_id = $1 AND id = $2 AND NOT voided RETURNING {PUNCH_COLS}",
        tx.caller.tenant_id, punch_id, reason, tx.caller.user_id,
    )
    if row is None:
        raise Conflict("This punch is already voided.")
    after = to_punch(row)
    tx.audit(AuditEntry("Punch", "voided", punch_id, _json(current), _json(after),
                        employee_id=after.employee_id, punch_id=punch_id))
    ts = current.timestamp.astimezone(UTC)
    # A voided clock_in may have been what revealed a session left open before it (its
    # missed_punch then has no cause): read that session whatever the window holds.
    ev = await engine.evaluate_zone(tx.conn, tx.caller.tenant_id, current.employee_id, ts - engine.PUNCH_ZONE,
                                    ts + engine.PUNCH_ZONE, read_opened_before=current.type.value == "clock_in")
    # Time-based findings too: what the void leaves (an absence, a session now left open) is
    # due already if its deadline has passed, and the sweep looks back only a few days.
    await engine.reconcile(tx.conn, ev, tx.entries, include_time_based=True)
    await engine.withdraw_owned_by(tx.conn, tx.caller.tenant_id, punch_id, tx.entries)
    return after


async def get(conn: asyncpg.Connection, caller: Caller, punch_id: UUID) -> Punch:
    row = await conn.fetchrow(
        f"SELECT {PUNCH_COLS} FROM punches WHERE tenant_id = $1 AND id = $2", caller.tenant_id, punch_id  # noqa: S608
    )
    if row is None or not caller.sees_employee(row["employee_id"]):
        raise NotFound("No punch with this id.")
    return to_punch(guard(caller, row))


async def list_page(
    conn: asyncpg.Connection, caller: Caller, page: PageParams,
    employee_id: UUID | None, start: datetime | None, end: datetime | None,
) -> dict[str, Any]:
    scoped = employee_filter(caller, employee_id, "punches")
    if scoped is NO_EMPLOYEE:
        return EMPTY_PAGE
    employee_id = cast(UUID | None, scoped)
    rows = await conn.fetch(
        f"SELECT {PUNCH_COLS} FROM punches WHERE tenant_id = $1 "  # noqa: S608
        "AND ($2::uuid IS NULL OR employee_id = $2) AND ($3::timestamptz IS NULL OR ts >= $3) "
        "AND ($4::timestamptz IS NULL OR ts < $4) "
        "AND ($5::timestamptz IS NULL OR (ts, id) < ($5, $6)) ORDER BY ts DESC, id DESC LIMIT $7",
        caller.tenant_id, employee_id, start, end, *page.keyset(),
    )
    return page_of([guard(caller, r) for r in rows], page.limit, to_punch, key="ts")
