"""Timesheets (read-only): facts from the database, figures from `compute.day_totals`.

One employee's timesheet and the tenant's CSV export share everything below the loading:
`compute_days` is the only place figures are made, and both paths read the same windows of
facts, so an employee's export rows are, by construction, their timesheet's days.

Windows read around [from, to] (local dates, inclusive):
- punches: from `from - 3 days - earlyClockInWindowMinutes` to `to + 4 days`, as UTC
  midnights. Three days cover the widest zone offsets (+-14 h) and still leave two local days
  of margin each side, so a session crossing an edge of the range pairs as it would with all
  the data (an overnight shift on `to` keeps its clock_out, a night shift on `from - 1` keeps
  its clock_in and so does not leak its morning work onto `from`); the early clock-in window
  is added because a clock_in that early may open an occurrence of `from`. Voided punches are
  not read: they never count.
- occurrences: start dates `from - 2` .. `to + 1 + ceil(earlyClockInWindowMinutes / 1 day)`
  (at least `to + 2`): a clock_in on `to` opens an occurrence starting up to the window later,
  and the pairing must see it to keep that work off `to`. An occurrence lasts at most a day
  (+1 h on a fall-back night), so one that started before `from - 2` cannot be in progress on
  `from`.
- exceptions: non-withdrawn, with a `shift_date` in the range, or punch-bound (no
  `shift_date`) whose punch's local date is in the range.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg
import orjson

from unifocus.auth.context import NO_EMPLOYEE, Caller, employee_filter, guard
from unifocus.errors import NotFound, ValidationFailed
from unifocus.schedules.occurrences import ScheduleSpan, WeeklyShift, occurrences
from unifocus.schemas import DATE_BOUNDS, EARLIEST_DATE, LATEST_DATE, check_order
from unifocus.timeexceptions.pairing import PunchFact
from unifocus.timeexceptions.policy import Policy
from unifocus.timesheets.compute import DayTotals, day_totals
from unifocus.timesheets.csv_export import SafeText, safe_text
from unifocus.timesheets.schemas import Timesheet, TimesheetDay, TimesheetException, TimesheetTotals
from unifocus.timezones import zone

MAX_DAYS = 366
MAX_EXPORT_DAYS = 93
PUNCH_MARGIN_BEFORE = timedelta(days=3)
PUNCH_MARGIN_AFTER = timedelta(days=4)
OCCURRENCE_MARGIN = timedelta(days=2)
DAY_MINUTES = 24 * 60
EMPTY = SafeText("")

# Two spellings of each fact query: one employee, or the whole tenant. Separate statements
# (not `$2 IS NULL OR employee_id = $2`) so each keeps a plan that fits its shape.
_EMPLOYEE_SQL = (
    "SELECT e.tenant_id, e.id, e.timezone, t.timezone AS tenant_timezone, t.policy "
    "FROM employees e JOIN tenants t ON t.tenant_id = e.tenant_id WHERE e.tenant_id = $1 AND e.id = $2"
)
_TENANT_SQL = "SELECT tenant_id, timezone, policy FROM tenants WHERE tenant_id = $1"
# The export's employees: the active ones, and those deactivated since among $2, the ones with
# live punches read for the period (`export_days` keeps them only if they worked in it), so a
# leaver's last days stay in payroll and a past period exports the same after they leave.
_EXPORT_EMPLOYEES_SQL = (
    "SELECT tenant_id, id, external_id, last_name, first_name, timezone, active FROM employees "
    "WHERE tenant_id = $1 AND (active OR id = ANY($2::uuid[])) ORDER BY last_name, first_name, id"
)
_SCHEDULES_SQL = (
    "SELECT s.tenant_id, s.employee_id, s.id AS schedule_id, s.start_date, s.end_date, "
    "sh.id AS shift_id, sh.day_of_week, sh.start_time, sh.end_time "
    "FROM schedules s JOIN shifts sh ON sh.tenant_id = s.tenant_id AND sh.schedule_id = s.id "
    "AND sh.deleted_at IS NULL "
    "WHERE s.tenant_id = $1 AND s.deleted_at IS NULL AND s.start_date <= $3 AND s.end_date >= $2 {scope} "
    "ORDER BY s.id, sh.day_of_week, sh.start_time, sh.id"
)
# One row per employee with the punches as arrays: half the decoding work of one row per punch
# (a 56,000-punch export: ~0.25 s instead of ~0.5 s of client CPU on the bench machine).
_PUNCHES_SQL = (
    "SELECT tenant_id, employee_id, array_agg(id) AS ids, array_agg(type) AS types, array_agg(ts) AS tss "
    "FROM punches WHERE tenant_id = $1 AND ts >= $2 AND ts < $3 AND NOT voided {scope} "
    "GROUP BY tenant_id, employee_id"
)
# The punch of a punch-bound exception is looked up by primary key (a scalar subquery, which
# the planner cannot turn into a join), so the export never hashes the tenant's whole punch
# table to place a handful of exceptions.
_EXCEPTIONS_SQL = (
    "SELECT * FROM (SELECT x.tenant_id, x.employee_id, x.id, x.type, x.status, x.shift_id, x.shift_date, "
    "x.punch_id, x.details, x.created_at, CASE WHEN x.shift_date IS NULL THEN (SELECT p.ts FROM punches p "
    "WHERE p.tenant_id = x.tenant_id AND p.id = x.punch_id) END AS punch_ts "
    "FROM exceptions x WHERE x.tenant_id = $1 AND x.status <> 'withdrawn' "
    "AND (x.shift_date BETWEEN $2 AND $3 OR (x.shift_date IS NULL AND x.punch_id IS NOT NULL)) {scope}) e "
    "WHERE e.shift_date IS NOT NULL OR (e.punch_ts >= $4 AND e.punch_ts < $5)"
)


@dataclass(frozen=True)
class ExceptionFact:
    id: UUID
    type: str
    status: str
    shift_id: UUID | None
    shift_date: date | None
    punch_id: UUID | None
    details: dict[str, Any]
    created_at: datetime
    punch_ts: datetime | None

    def local_date(self, tz: ZoneInfo) -> date | None:
        """The date the exception belongs to: its occurrence's, else its punch's local date."""
        if self.shift_date is not None:
            return self.shift_date
        if self.punch_ts is not None:
            return self.punch_ts.astimezone(tz).date()
        return None


@dataclass
class EmployeeFacts:
    tz: ZoneInfo
    schedules: list[ScheduleSpan] = field(default_factory=list)
    punches: list[PunchFact] = field(default_factory=list)
    exceptions: list[ExceptionFact] = field(default_factory=list)


@dataclass(frozen=True)
class DayResult:
    totals: DayTotals
    exceptions: list[ExceptionFact]


# --- pure part ------------------------------------------------------------------------------


def check_range(from_date: date, to_date: date, max_days: int) -> None:
    """The range's refusals have the shape of every other list's (`check_order`): 422
    `validation-failed`, naming the field at fault."""
    # Outside these dates the margins around the range overflow datetime arithmetic.
    for name, value in (("from", from_date), ("to", to_date)):
        if not EARLIEST_DATE <= value <= LATEST_DATE:
            raise ValidationFailed(DATE_BOUNDS, errors=[{"field": name, "message": "out of range"}])
    check_order(from_date, to_date)
    if (to_date - from_date).days + 1 > max_days:
        raise ValidationFailed(
            f"The range may span at most {max_days} days.",
            errors=[{"field": "to", "message": f"at most {max_days} days from `from`, inclusive"}],
        )


def punch_window(from_date: date, to_date: date, policy: Policy) -> tuple[datetime, datetime]:
    """[start, end) of the punches read for [from_date, to_date]; see the module docstring."""
    early = timedelta(minutes=policy.early_clock_in_window_minutes)
    start = datetime.combine(from_date, time(0), tzinfo=UTC) - PUNCH_MARGIN_BEFORE - early
    return start, datetime.combine(to_date, time(0), tzinfo=UTC) + PUNCH_MARGIN_AFTER


def occurrence_dates(from_date: date, to_date: date, policy: Policy) -> tuple[date, date]:
    """The start dates of the occurrences read for [from_date, to_date]."""
    early_days = -(-policy.early_clock_in_window_minutes // DAY_MINUTES)
    return from_date - OCCURRENCE_MARGIN, to_date + timedelta(days=1 + max(1, early_days))


def compute_days(facts: EmployeeFacts, policy: Policy, from_date: date, to_date: date) -> list[DayResult]:
    """The figures and exceptions of each local date of [from_date, to_date], in order."""
    occs = occurrences(facts.schedules, facts.tz, *occurrence_dates(from_date, to_date, policy))
    totals = day_totals(facts.punches, occs, facts.tz, from_date, to_date, policy)
    by_date: dict[date, list[ExceptionFact]] = {}
    for exc in sorted(facts.exceptions, key=lambda x: (x.created_at, str(x.id))):
        day = exc.local_date(facts.tz)
        if day is not None and from_date <= day <= to_date:
            by_date.setdefault(day, []).append(exc)
    return [DayResult(t, by_date.get(t.date, [])) for t in totals]


def policy_of(raw: Any) -> Policy:
    """The tenant's policy column (jsonb: asyncpg hands it over as text), as the engine reads it."""
    data = orjson.loads(raw) if isinstance(raw, str | bytes) else raw
    return Policy.from_json(data or {})


def _spans(rows: Sequence[Any]) -> dict[UUID, list[ScheduleSpan]]:
    """Schedule+shift rows (one per shift) -> ScheduleSpans per employee."""
    heads: dict[UUID, Any] = {}
    shifts: dict[UUID, list[WeeklyShift]] = {}
    for r in rows:
        sid = r["schedule_id"]
        heads.setdefault(sid, r)
        shifts.setdefault(sid, []).append(
            WeeklyShift(r["shift_id"], sid, r["day_of_week"], r["start_time"], r["end_time"])
        )
    out: dict[UUID, list[ScheduleSpan]] = {}
    for sid, head in heads.items():
        span = ScheduleSpan(sid, head["start_date"], head["end_date"], tuple(shifts[sid]))
        out.setdefault(head["employee_id"], []).append(span)
    return out


def _exception_fact(r: Any) -> ExceptionFact:
    details = r["details"]
    if isinstance(details, str | bytes):
        details = orjson.loads(details)
    return ExceptionFact(r["id"], r["type"], r["status"], r["shift_id"], r["shift_date"], r["punch_id"],
                         details or {}, r["created_at"], r["punch_ts"])


def _totals(days: Sequence[DayResult]) -> TimesheetTotals:
    return TimesheetTotals(
        scheduled_minutes=sum(d.totals.scheduled_minutes for d in days),
        worked_minutes=sum(d.totals.worked_minutes for d in days),
        break_minutes=sum(d.totals.break_minutes for d in days),
        overtime_minutes=sum(d.totals.overtime_minutes for d in days),
    )


def _exception_out(x: ExceptionFact) -> TimesheetException:
    return TimesheetException(id=x.id, type=x.type, status=x.status, shift_id=x.shift_id,
                              shift_date=x.shift_date, punch_id=x.punch_id, details=x.details)


def to_timesheet(employee_id: UUID, from_date: date, to_date: date, days: Sequence[DayResult]) -> Timesheet:
    # `from` / `to` are field aliases (a keyword cannot be a field name): validate by alias.
    return Timesheet.model_validate({
        "employeeId": employee_id,
        "from": from_date,
        "to": to_date,
        "days": [
            TimesheetDay(
                date=d.totals.date,
                scheduled_minutes=d.totals.scheduled_minutes,
                worked_minutes=d.totals.worked_minutes,
                break_minutes=d.totals.break_minutes,
                overtime_minutes=d.totals.overtime_minutes,
                exceptions=[_exception_out(x) for x in d.exceptions],
            )
            for d in days
        ],
        "totals": _totals(days),
    })


# --- database part --------------------------------------------------------------------------


async def _load_facts(
    conn: asyncpg.Connection, caller: Caller, employee_id: UUID | None,
    from_date: date, to_date: date, policy: Policy,
) -> tuple[dict[UUID, list[ScheduleSpan]], dict[UUID, list[PunchFact]], dict[UUID, list[ExceptionFact]]]:
    """Schedules, punches and exceptions of one employee (or, with None, of the whole tenant)
    in three set-based queries; every row passes the tenant guard."""
    one = employee_id is not None
    extra: tuple[Any, ...] = (employee_id,) if one else ()
    tid = caller.tenant_id
    start, end = punch_window(from_date, to_date, policy)

    schedule_rows = await conn.fetch(
        _SCHEDULES_SQL.format(scope="AND s.employee_id = $4" if one else ""),
        tid, *occurrence_dates(from_date, to_date, policy), *extra,
    )
    punch_rows = await conn.fetch(
        _PUNCHES_SQL.format(scope="AND employee_id = $4" if one else ""), tid, start, end, *extra,
    )
    exception_rows = await conn.fetch(
        _EXCEPTIONS_SQL.format(scope="AND x.employee_id = $6" if one else ""),
        tid, from_date, to_date, start, end, *extra,
    )

    punches: dict[UUID, list[PunchFact]] = {}
    for r in punch_rows:
        guard(caller, r)
        punches[r["employee_id"]] = [PunchFact(*p) for p in zip(r["ids"], r["types"], r["tss"], strict=True)]
    exceptions: dict[UUID, list[ExceptionFact]] = {}
    for r in exception_rows:
        guard(caller, r)
        exceptions.setdefault(r["employee_id"], []).append(_exception_fact(r))
    return _spans([guard(caller, r) for r in schedule_rows]), punches, exceptions


def _subject(caller: Caller, employee_id: UUID | None) -> UUID:
    """Whose timesheet: staff name anyone of the tenant; employees only themselves."""
    scoped = employee_filter(caller, employee_id, "timesheet")
    if scoped is NO_EMPLOYEE:
        raise NotFound("No employee record is linked to this user.")
    if scoped is None:
        raise ValidationFailed("employeeId is required for managers and admins.",
                               errors=[{"field": "employeeId", "message": "required"}])
    return cast(UUID, scoped)


async def employee_timesheet(
    conn: asyncpg.Connection, caller: Caller, employee_id: UUID | None, from_date: date, to_date: date
) -> Timesheet:
    check_range(from_date, to_date, MAX_DAYS)
    subject = _subject(caller, employee_id)
    emp = await conn.fetchrow(_EMPLOYEE_SQL, caller.tenant_id, subject)
    if emp is None:
        raise NotFound("No employee with this id.")
    guard(caller, emp)
    policy = policy_of(emp["policy"])
    spans, punches, exceptions = await _load_facts(conn, caller, subject, from_date, to_date, policy)
    facts = EmployeeFacts(
        zone(emp["timezone"] or emp["tenant_timezone"]),
        spans.get(subject, []), punches.get(subject, []), exceptions.get(subject, []),
    )
    days = compute_days(facts, policy, from_date, to_date)
    return to_timesheet(subject, from_date, to_date, days)


@dataclass(frozen=True)
class ExportEmployee:
    id: UUID
    external_id: str | None
    last_name: str
    first_name: str


async def export_days(
    conn: asyncpg.Connection, caller: Caller, from_date: date, to_date: date
) -> list[tuple[ExportEmployee, list[DayResult]]]:
    """Every active employee's days, and those of employees deactivated since who worked in
    the period; employees by (last name, first name, id). Five queries for the whole tenant,
    whatever its size; the figures are made in Python."""
    check_range(from_date, to_date, MAX_EXPORT_DAYS)
    tenant = await conn.fetchrow(_TENANT_SQL, caller.tenant_id)
    if tenant is None:  # the caller was just loaded from this tenant: cannot happen
        raise NotFound("No such tenant.")
    guard(caller, tenant)
    policy, tenant_tz = policy_of(tenant["policy"]), tenant["timezone"]
    spans, punches, exceptions = await _load_facts(conn, caller, None, from_date, to_date, policy)
    employees = [guard(caller, r) for r in await conn.fetch(_EXPORT_EMPLOYEES_SQL, caller.tenant_id, list(punches))]
    out: list[tuple[ExportEmployee, list[DayResult]]] = []
    for e in employees:
        eid = e["id"]
        facts = EmployeeFacts(zone(e["timezone"] or tenant_tz), spans.get(eid, []),
                              punches.get(eid, []), exceptions.get(eid, []))
        who = ExportEmployee(eid, e["external_id"], e["last_name"], e["first_name"])
        days = compute_days(facts, policy, from_date, to_date)
        if e["active"] or any(d.totals.worked_minutes for d in days):
            out.append((who, days))
    return out


def iter_rows(data: Sequence[tuple[ExportEmployee, list[DayResult]]]) -> Iterator[list[object]]:
    """Export rows (without the header), in the documented column order. Text cells are
    neutralised against CSV injection here, once per employee; numbers and dates need not be."""
    day_text: dict[date, SafeText] = {}
    for who, days in data:
        ident = [safe_text(who.id), safe_text(who.external_id), safe_text(who.last_name),
                 safe_text(who.first_name)]
        for d in days:
            t = d.totals
            when = day_text.get(t.date)
            if when is None:
                when = day_text[t.date] = SafeText(t.date.isoformat())
            types = safe_text(";".join(sorted({x.type for x in d.exceptions}))) if d.exceptions else EMPTY
            yield [*ident, when, t.scheduled_minutes, t.worked_minutes, t.break_minutes, t.overtime_minutes,
                   len(d.exceptions), types]
