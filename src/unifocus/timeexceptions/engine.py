"""The exception engine on the database: load one employee's facts, evaluate the pure rules,
and reconcile the stored exceptions, and the punches' stored attributions, with what should
exist.

Evaluation reads a wide window of facts (so sessions crossing its edges pair correctly) and
reconciles only a narrower zone inside it (so edge effects never raise or withdraw anything).
Callers hold the employee's row lock (`lock_employee`), which serialises every evaluation of
one employee: punch writes, voids and the sweep never interleave.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import asyncpg
import orjson

from unifocus.audit.writer import AuditEntry
from unifocus.errors import NotFound
from unifocus.observability import hooks
from unifocus.schedules.occurrences import Occurrence, ScheduleSpan, WeeklyShift, occurrences
from unifocus.schemas import utc_iso
from unifocus.timeexceptions.pairing import Pairing, PunchFact, pair_punches
from unifocus.timeexceptions.policy import Policy
from unifocus.timeexceptions.rules import Finding, evaluate
from unifocus.timezones import zone

# Facts are read this far around the zone being reconciled.
READ_MARGIN = timedelta(hours=48)
# The zone reconciled around a punch (punches and occurrences this close to it).
PUNCH_ZONE = timedelta(hours=24)

EXCEPTION_COLS = (
    "tenant_id, id, employee_id, type, status, shift_id, shift_date, punch_id, dedupe_key, details, "
    "created_at, resolved_by, resolved_at, note"
)


@dataclass(frozen=True)
class EmployeeContext:
    tenant_id: UUID
    employee_id: UUID
    tz: ZoneInfo
    policy: Policy


async def lock_employee(conn: asyncpg.Connection, tenant_id: UUID, employee_id: UUID) -> EmployeeContext:
    """Lock the employee row (serialising its evaluations) and read its zone and policy."""
    row = await conn.fetchrow(
        "SELECT e.timezone AS etz, t.timezone AS ttz, t.policy FROM employees e "
        "JOIN tenants t ON t.tenant_id = e.tenant_id "
        "WHERE e.tenant_id = $1 AND e.id = $2 FOR UPDATE OF e",
        tenant_id, employee_id,
    )
    if row is None:
        raise NotFound("employeeId names no employee of this tenant.")
    policy = Policy.from_json(orjson.loads(row["policy"]) if row["policy"] else {})
    return EmployeeContext(tenant_id, employee_id, zone(row["etz"] or row["ttz"]), policy)


CONTEXT = "SELECT unifocus_punch_context($1, $2, $3, $4, $5, $6, $7, $8)"  # SQL in migration 0003


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _uuid(text: str | None) -> UUID | None:
    return UUID(text) if text else None


# A punch's attribution as stored (`shift_id`, `shift_date`), or (None, None) for none.
Attribution = tuple[UUID | None, date | None]
UNATTRIBUTED: Attribution = (None, None)


def attribution(occ: Occurrence | None) -> Attribution:
    return (occ.shift_id, occ.shift_date) if occ is not None else UNATTRIBUTED


def attribution_json(value: Attribution) -> dict[str, Any]:
    """An attribution as the API shows it on a punch (`shiftId`, `shiftDate`)."""
    shift_id, shift_date = value
    return {"shiftId": str(shift_id) if shift_id else None,
            "shiftDate": shift_date.isoformat() if shift_date else None}


@dataclass(frozen=True)
class Reattribution:
    """A stored punch of the zone whose stored attribution is not the pairing's."""

    punch_id: UUID
    before: Attribution  # as stored
    after: Attribution  # as the pairing attributes it now


def _exception_row(d: dict[str, Any]) -> dict[str, Any]:
    """An exceptions row read as JSON, typed like an asyncpg record."""
    return {
        **d,
        "id": UUID(d["id"]), "tenant_id": UUID(d["tenant_id"]), "employee_id": UUID(d["employee_id"]),
        "shift_id": _uuid(d["shift_id"]), "punch_id": _uuid(d["punch_id"]),
        "resolved_by": _uuid(d["resolved_by"]),
        "shift_date": date.fromisoformat(d["shift_date"]) if d["shift_date"] else None,
        "created_at": _instant(d["created_at"]),
        "resolved_at": _instant(d["resolved_at"]) if d["resolved_at"] else None,
    }


def _spans(rows: list[list[Any]]) -> tuple[ScheduleSpan, ...]:
    return _parsed_spans(tuple(tuple(row) for row in rows))


# An employee's schedule rows come back unchanged on every punch until the schedule changes
# (then the rows, and so the key, differ). The parsed spans are immutable, so they are shared.
# ~4 KB an entry at most, with each span's shifts grouped by weekday (`shifts_by_weekday`, a
# few hundred bytes more once a punch has read it): bounded at ~9 MB a worker.
@functools.lru_cache(maxsize=2048)
def _parsed_spans(rows: tuple[tuple[Any, ...], ...]) -> tuple[ScheduleSpan, ...]:
    spans: dict[str, tuple[date, date]] = {}
    shifts: dict[str, list[WeeklyShift]] = {}
    for schedule_id, start, end, shift_id, day, start_time, end_time in rows:
        spans.setdefault(schedule_id, (date.fromisoformat(start), date.fromisoformat(end)))
        shifts.setdefault(schedule_id, []).append(WeeklyShift(
            UUID(shift_id), UUID(schedule_id), day, time.fromisoformat(start_time), time.fromisoformat(end_time)))
    return tuple(ScheduleSpan(UUID(sid), first, last, tuple(shifts[sid])) for sid, (first, last) in spans.items())


@dataclass
class Evaluation:
    ctx: EmployeeContext
    zone_start: datetime
    zone_end: datetime
    punches: list[PunchFact]
    occurrences: list[Occurrence]
    findings: list[Finding]
    existing: list[dict[str, Any]]  # live exceptions that could belong to the zone
    now: datetime  # the transaction's timestamp: what now() stamps on the rows it writes
    pairing: Pairing
    # The stored punches' `[id, shift_id, shift_date]` as read ('attributions', migration
    # 0015; only `unifocus_punch_context` reads them, see `later_in_zone`); a punch not yet
    # stored (`extra`) has none, and is attributed by its insert.
    stored_attributions: list[list[Any]] = field(default_factory=list)

    def occurrence_of(self, punch_id: UUID) -> Occurrence | None:
        return self.pairing.occurrence_of.get(punch_id)

    def __post_init__(self) -> None:
        # Findings and exception rows name an occurrence by (shift, date) and a punch by id;
        # looked up for each, so indexed once.
        self._occurrence_by_key: dict[tuple[UUID | None, date | None], Occurrence] = {
            (o.shift_id, o.shift_date): o for o in self.occurrences}
        self._punch_ts = {p.id: p.timestamp for p in self.punches}

    def within(self, ts: datetime | None) -> bool:
        return ts is not None and self.zone_start <= ts < self.zone_end

    def occurrence_in_zone(self, shift_id: UUID | None, shift_date: date | None) -> bool:
        occ = self._occurrence_by_key.get((shift_id, shift_date))
        return occ is not None and self.within(occ.start)

    @functools.cached_property
    def stale(self) -> list[Any]:
        """Pending exceptions of the zone whose cause is gone (approved and rejected ones are
        never touched). Computed once: a punch's write asks before it reconciles."""
        wanted = {(f.type, f.dedupe_key) for f in self.findings if self.in_zone(f)}
        out = []
        for row in self.existing:
            if row["status"] != "pending" or (row["type"], row["dedupe_key"]) in wanted:
                continue
            # Only an exception of the zone, as only the zone's findings are `wanted`: one of
            # an occurrence starting in it (or gone from a date of it), or owned by a punch in
            # it (or revealed by one). A punch-owned one whose
            # punch is elsewhere in the read window is not this evaluation's to withdraw (its
            # finding was not looked for); one whose punch is not read at all (voided) neither.
            if row["shift_id"] is not None:
                in_zone = (self.occurrence_in_zone(row["shift_id"], row["shift_date"])
                           or self._gone_occurrence_in_zone(row["shift_id"], row["shift_date"]))
            else:
                # its punch in the zone, or (`in_zone`'s `revealed_by`) the clock_in it names;
                # only when its punch was read: else its session is not known here
                ts = self._punch_ts.get(row["punch_id"])
                revealed = row["details"].get("nextClockIn") if isinstance(row["details"], dict) else None
                in_zone = ts is not None and (self.within(ts) or self.within(_instant(revealed) if revealed else None))
            if in_zone:
                out.append(row)
        return out

    def _gone_occurrence_in_zone(self, shift_id: UUID, shift_date: date | None) -> bool:
        """Whether an exception's occurrence no longer exists (its shift or schedule deleted,
        a shift that the DST rules now leave out) on a local date of the zone: the
        occurrences are built for a wider range of dates, so one not built there is gone, and
        so is the exception's cause."""
        if shift_date is None or (shift_id, shift_date) in self._occurrence_by_key:
            return False
        tz = self.ctx.tz
        return self.zone_start.astimezone(tz).date() <= shift_date <= self.zone_end.astimezone(tz).date()

    @functools.cached_property
    def reattributed(self) -> list[Reattribution]:
        """The zone's stored punches whose stored `shift_id`/`shift_date` differ from the
        occurrence the pairing now attributes them to: a punch that arrived out of order, or a
        void, moved them into or out of a session. Compared here in Python, from the facts
        already read: nothing in the usual, in-order case (a punch's attribution depends only on
        the punches before it). In time order, then by id."""
        zone = {str(p.id): p for p in self.punches if self.within(p.timestamp)}
        out = []
        for pid, shift_id, day in self.stored_attributions:
            p = zone.get(pid)  # only the zone's rows are parsed: the window reads twice as many
            if p is None:
                continue
            before = (_uuid(shift_id), date.fromisoformat(day) if day else None)
            after = attribution(self.pairing.occurrence_of.get(p.id))
            if after != before:
                out.append((p.timestamp, p.id.int, Reattribution(p.id, before, after)))
        return [r for *_, r in sorted(out, key=lambda x: x[:2])]

    def later_in_zone(self, punch: PunchFact) -> bool:
        """Whether a stored punch of the zone is at or after `punch` (not yet stored): only
        then can `punch` move another's attribution, which depends on the punches before it.
        The two-statement write's read has no stored attributions, so it asks this instead."""
        # (`punch` is in the zone, so anything at or after it starts in it too.)
        return any(p.id != punch.id and punch.timestamp <= p.timestamp < self.zone_end for p in self.punches)

    def in_zone(self, finding: Finding) -> bool:
        if finding.shift_id is not None:
            return self.occurrence_in_zone(finding.shift_id, finding.shift_date)
        # A punch's finding, or one a punch of the zone revealed (a clock_in that abandoned a
        # session with no shift, however long before it opened: `opened_before`).
        return any(self.within(self._punch_ts.get(p)) for p in (finding.punch_id, finding.revealed_by) if p)


def context_args(zone_start: datetime, zone_end: datetime) -> tuple[datetime, datetime, date, date, date, date]:
    """The window arguments of `unifocus_punch_context` for a zone: the read window, the
    local dates that may hold its shifts, and the dates of the zone's exceptions. Dates are
    local to a zone only the database knows yet: a day either side of the UTC dates covers
    every offset; `evaluate_context` trims to the exact local range."""
    read_start, read_end = zone_start - READ_MARGIN, zone_end + READ_MARGIN
    return (read_start, read_end, read_start.date() - timedelta(days=2), read_end.date() + timedelta(days=1),
            zone_start.date() - timedelta(days=2), zone_end.date() + timedelta(days=1))


# The employee's last live clock_in or clock_out before `$3` when it is a clock_in that matched
# no shift, with its own exceptions; null otherwise (migration 0018).
OPENED_BEFORE = "SELECT unifocus_opened_before($1, $2, $3)"


_SESSION_ENDS = ("clock_in", "clock_out")  # what closes, or abandons, an open session


def opened_before_needed(data: dict[str, Any], zone_start: datetime, zone_end: datetime,
                         extra: PunchFact | None = None) -> bool:
    """Whether a clock_in left open before the read window could be revealed in the zone
    (contract section 5: missed_punch "when the next clock_in arrives", however long after).
    A session that matched no shift has no end for the sweep to measure, and the window reads
    48 h either side of the zone: only the window's first clock_in or clock_out can abandon one
    opened before it, and only when it is a clock_in in the zone. With `extra` (a punch being
    recorded), only when that punch is it: a stored one raised its finding at its own write.
    So not when the employee clocked in or out in the two days before a punch."""
    # The window's instants are the database's text in one zone (the pool pins UTC) and one
    # format, so text order is time order: only the first is parsed (this runs on every punch).
    stored = min(((ts, kind == "clock_in") for _, kind, ts in data["punches"] if kind in _SESSION_ENDS),
                 default=None)
    first = (_instant(stored[0]), stored[1]) if stored else None
    if extra is not None:
        if extra.type not in _SESSION_ENDS:
            return False
        # (At one instant a clock_out comes first, as the pairing orders them.)
        mine = (extra.timestamp, extra.type == "clock_in")
        if first is not None and first <= mine:
            return False  # a stored one comes first
        first = mine
    return first is not None and first[1] and zone_start <= first[0] < zone_end


async def add_opened_before(conn: asyncpg.Connection, data: dict[str, Any], tenant_id: UUID, employee_id: UUID,
                            zone_start: datetime, zone_end: datetime, extra: PunchFact | None = None,
                            force: bool = False) -> None:
    """Put the clock_in left open before the window into a window read (`data`), for
    `evaluate_context`, when `opened_before_needed` (or `force`): one more round trip, rarely.
    Read before the window's start (`context_args`), so never one of the window's own punches."""
    if force or opened_before_needed(data, zone_start, zone_end, extra):
        raw = await conn.fetchval(OPENED_BEFORE, tenant_id, employee_id, zone_start - READ_MARGIN)
        data["opened_before"] = orjson.loads(raw) if raw else None


async def evaluate_zone(
    conn: asyncpg.Connection, tenant_id: UUID, employee_id: UUID, zone_start: datetime, zone_end: datetime,
    now: datetime | None = None, extra: PunchFact | None = None, read_opened_before: bool = False,
) -> Evaluation:
    """Lock the employee and evaluate the rules over the facts around [zone_start, zone_end),
    in one round trip for the reads (two when `opened_before_needed`, or `read_opened_before`).
    `extra` is a punch not yet inserted (the one being recorded), evaluated as if it were
    stored. `now` defaults to the transaction's time."""
    raw = await conn.fetchval(CONTEXT, tenant_id, employee_id, *context_args(zone_start, zone_end))
    if raw is None:
        raise NotFound("employeeId names no employee of this tenant.")
    data = orjson.loads(raw)
    await add_opened_before(conn, data, tenant_id, employee_id, zone_start, zone_end, extra, read_opened_before)
    return evaluate_context(data, tenant_id, employee_id, zone_start, zone_end, now, extra)


def evaluate_context(
    data: dict[str, Any], tenant_id: UUID, employee_id: UUID, zone_start: datetime, zone_end: datetime,
    now: datetime | None = None, extra: PunchFact | None = None,
) -> Evaluation:
    """The rules over a context read by `unifocus_punch_context` (under the employee lock)."""
    read_start, read_end = zone_start - READ_MARGIN, zone_end + READ_MARGIN
    policy = Policy.from_json(data["policy"] or {})
    ctx = EmployeeContext(tenant_id, employee_id, zone(data["timezone"]), policy)
    db_now = _instant(data["now"])
    punches = [PunchFact(UUID(pid), kind, _instant(ts)) for pid, kind, ts in data["punches"]]
    opened = data.get("opened_before")  # see `add_opened_before`
    if opened:
        pid, kind, ts = opened["punch"]
        punches.insert(0, PunchFact(UUID(pid), kind, _instant(ts)))
    if extra is not None:
        punches.append(extra)
    first = read_start.astimezone(ctx.tz).date() - timedelta(days=1)
    occs = occurrences(_spans(data["shifts"]), ctx.tz, first, read_end.astimezone(ctx.tz).date())
    pairing = pair_punches(punches, occs, policy)
    # Only the zone's findings are reconciled (`Evaluation.in_zone`): the rules of occurrences
    # outside it are skipped (a punch's window holds ~8 occurrences, its zone ~2).
    findings = evaluate(punches, occs, policy, now or db_now, pairing=pairing, zone=(zone_start, zone_end))
    existing = [_exception_row(d) for d in data["exceptions"]]
    if opened:
        read = {row["id"] for row in existing}
        existing += [row for row in map(_exception_row, opened["exceptions"]) if row["id"] not in read]
    return Evaluation(ctx, zone_start, zone_end, punches, occs, findings, existing, db_now, pairing,
                      data.get("attributions", []))


def exception_json(row: Any) -> dict[str, Any]:
    details = row["details"]
    return {
        "id": str(row["id"]), "employeeId": str(row["employee_id"]), "type": row["type"],
        "status": row["status"], "shiftId": str(row["shift_id"]) if row["shift_id"] else None,
        "shiftDate": row["shift_date"].isoformat() if row["shift_date"] else None,
        "punchId": str(row["punch_id"]) if row["punch_id"] else None,
        "details": orjson.loads(details) if isinstance(details, str) else details,
        "createdAt": utc_iso(row["created_at"]),
        "resolvedBy": str(row["resolved_by"]) if row["resolved_by"] else None,
        "resolvedAt": utc_iso(row["resolved_at"]) if row["resolved_at"] else None,
        "note": row["note"],
    }


def missing(ev: Evaluation, *, include_time_based: bool) -> list[Finding]:
    """The zone's findings not stored yet."""
    have = {(r["type"], r["dedupe_key"]) for r in ev.existing}
    wanted = {(f.type, f.dedupe_key): f for f in ev.findings if ev.in_zone(f)}
    return [f for key, f in wanted.items() if key not in have and (include_time_based or not f.time_based)]


# How reconcile's insert of new exceptions is run: at once (`conn.execute`), or handed to the
# write's last statement (`WriteTx.defer`); the rows are known either way (`planned_rows`).
Insert = Callable[..., Awaitable[Any]]


async def reconcile(
    conn: asyncpg.Connection, ev: Evaluation, audit: list[AuditEntry], *, include_time_based: bool,
    insert: Insert | None = None, raised: Callable[[str], None] = hooks.exception_raised,
) -> list[Any]:
    """Re-attribute the zone's punches whose stored attribution is not the pairing's
    (`Evaluation.reattributed`), withdraw pending exceptions whose cause is gone, insert the
    findings not yet stored (`planned_rows`, with `insert`, default `conn.execute`). Approved
    and rejected exceptions are never touched. Returns the rows created; `raised` counts each
    (by type). The re-attributions and withdrawals run at once: a two-statement write, which
    can only defer, must not get here with any (`NeedsTransaction`)."""
    await reattribute(conn, ev, audit)
    for row in ev.stale:
        await _withdraw(conn, row, audit)
    created = planned_rows(ev, missing(ev, include_time_based=include_time_based))
    if created:
        await (insert or conn.execute)(INSERT_ROWS, *insert_rows_args(ev.ctx, created))
    for row in created:
        raised(row["type"])
        audit.append(AuditEntry("Exception", "created", row["id"], None, exception_json(row),
                                employee_id=ev.ctx.employee_id, punch_id=row["punch_id"], exception_id=row["id"]))
    return created


def planned_rows(ev: Evaluation, findings: list[Finding]) -> list[dict[str, Any]]:
    """The rows an insert of these findings stores, known before it runs: the id is chosen
    here and `created_at` is the transaction's now(), as the column default would stamp it.
    `INSERT_ROWS` needs no RETURNING, so a write may also fold it into its last statement."""
    rows = [{
        "tenant_id": ev.ctx.tenant_id, "id": uuid4(), "employee_id": ev.ctx.employee_id, "type": f.type,
        "status": "pending", "shift_id": f.shift_id, "shift_date": f.shift_date, "punch_id": f.punch_id,
        "dedupe_key": f.dedupe_key, "details": f.details, "created_at": ev.now, "resolved_by": None,
        "resolved_at": None, "note": None,
    } for f in findings]
    return sorted(rows, key=lambda r: (r["type"], r["dedupe_key"]))


# The insert of `planned_rows` ($1 tenant, $2 employee, $3.. arrays), without RETURNING.
INSERT_ROWS = (
    "INSERT INTO exceptions (tenant_id, id, employee_id, type, shift_id, shift_date, punch_id, dedupe_key, details, "
    "created_at) SELECT $1::uuid, x.id, $2::uuid, x.type, x.shift_id, x.shift_date, x.punch_id, x.dedupe_key, "
    "x.details, x.created_at FROM unnest($3::uuid[], $4::text[], $5::uuid[], $6::date[], $7::uuid[], $8::text[], "
    "$9::jsonb[], $10::timestamptz[]) AS x(id, type, shift_id, shift_date, punch_id, dedupe_key, details, created_at)"
)


def insert_rows_args(ctx: EmployeeContext, rows: list[dict[str, Any]]) -> tuple[Any, ...]:
    return (ctx.tenant_id, ctx.employee_id, [r["id"] for r in rows], [r["type"] for r in rows],
            [r["shift_id"] for r in rows], [r["shift_date"] for r in rows], [r["punch_id"] for r in rows],
            [r["dedupe_key"] for r in rows], [orjson.dumps(r["details"]).decode() for r in rows],
            [r["created_at"] for r in rows])


# One statement for all of an evaluation's re-attributions ($1 tenant, $2 employee, arrays).
# Under the employee lock the rows are as the evaluation read them: live, with the stored
# attribution it compared.
UPDATE_ATTRIBUTIONS = (
    "UPDATE punches p SET shift_id = x.shift_id, shift_date = x.shift_date "
    "FROM unnest($3::uuid[], $4::uuid[], $5::date[]) AS x(id, shift_id, shift_date) "
    "WHERE p.tenant_id = $1 AND p.id = x.id AND p.employee_id = $2 AND NOT p.voided"
)


async def reattribute(conn: asyncpg.Connection, ev: Evaluation, audit: list[AuditEntry]) -> None:
    """Store the pairing's attribution on the zone's punches whose stored one differs (one
    UPDATE), each audited as the punch `updated`: its `shiftId`/`shiftDate` before and after."""
    changes = ev.reattributed
    if not changes:
        return
    status = await conn.execute(UPDATE_ATTRIBUTIONS, ev.ctx.tenant_id, ev.ctx.employee_id,
                                [c.punch_id for c in changes], [c.after[0] for c in changes],
                                [c.after[1] for c in changes])
    if status != f"UPDATE {len(changes)}":  # never, under the employee lock: then no entry is untrue
        raise RuntimeError(f"re-attributed {status!r} of {len(changes)} punches")
    for c in changes:
        audit.append(AuditEntry("Punch", "updated", c.punch_id, attribution_json(c.before),
                                attribution_json(c.after), employee_id=ev.ctx.employee_id, punch_id=c.punch_id))


async def withdraw_owned_by(conn: asyncpg.Connection, tenant_id: UUID, punch_id: UUID,
                            audit: list[AuditEntry]) -> None:
    """Withdraw the pending exceptions a voided punch owned on its own (no shift: an
    unscheduled clock_in, a stray punch's missed_punch): their cause is gone, and the zone's
    re-evaluation cannot see them, since it reads the exceptions of live punches only."""
    rows = await conn.fetch(
        f"SELECT {EXCEPTION_COLS} FROM exceptions WHERE tenant_id = $1 AND punch_id = $2 "  # noqa: S608
        "AND shift_id IS NULL AND status = 'pending'", tenant_id, punch_id)
    for row in rows:
        await _withdraw(conn, row, audit)


async def withdraw_of_shifts(conn: asyncpg.Connection, tenant_id: UUID, employee_id: UUID,
                             shift_ids: list[UUID], audit: list[AuditEntry]) -> None:
    """Withdraw the pending exceptions of shifts being deleted (a schedule's or one shift):
    their occurrences no longer exist. An evaluation of their dates would find them stale
    too (`Evaluation._gone_occurrence_in_zone`), but nothing may evaluate those dates again:
    last month's, say."""
    rows = await conn.fetch(
        f"SELECT {EXCEPTION_COLS} FROM exceptions WHERE tenant_id = $1 AND employee_id = $2 "  # noqa: S608
        "AND shift_id = ANY($3::uuid[]) AND status = 'pending' ORDER BY created_at, id",
        tenant_id, employee_id, shift_ids)
    for row in rows:
        await _withdraw(conn, row, audit)


async def _withdraw(conn: asyncpg.Connection, row: Any, audit: list[AuditEntry]) -> None:
    after = await conn.fetchrow(
        f"UPDATE exceptions SET status = 'withdrawn', resolved_at = now(), note = 'cause removed' "  # noqa: S608
        f"WHERE tenant_id = $1 AND id = $2 AND status = 'pending' RETURNING {EXCEPTION_COLS}",
        row["tenant_id"], row["id"],
    )
    if after is not None:
        audit.append(AuditEntry("Exception", "withdrawn", row["id"], exception_json(row), exception_json(after),
                                employee_id=row["employee_id"], punch_id=row["punch_id"], exception_id=row["id"]))
