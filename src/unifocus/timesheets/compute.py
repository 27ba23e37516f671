"""Per-day timesheet figures from punches and shift occurrences (pure, no I/O).

Definitions (contract section 5, same pairing as the exception rules):
- worked: each clock_in..clock_out interval minus the breaks inside it; an interval that was
  never closed counts nothing; out-of-sequence punches are skipped, never an error; voided
  punches are ignored. Never negative.
- break: the breaks inside counted (closed) intervals, so worked + break = paired time.
- a day's work and breaks are those of the intervals attributed to an occurrence with that
  `shift_date` (an overnight shift's work all lands on the day it starts), else of the
  intervals whose clock_in falls on that local date in `tz`.
- scheduled: the real elapsed minutes of the day's occurrences (420 on a spring-forward night).
- overtime: per occurrence, all worked minutes beyond its scheduled minutes when the excess is
  more than `overtimeThresholdMinutes`, else 0 (`rules.occurrence_overtime`, so a day shows
  overtime exactly when an `overtime` exception exists). Work matching no occurrence is
  worked time but not overtime: it is flagged as `unscheduled_punch` instead.
Minutes are whole real minutes, floored once per day (per occurrence for overtime).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from unifocus.schedules.occurrences import Occurrence, by_start
from unifocus.timeexceptions.pairing import PunchFact, Session, pair_punches
from unifocus.timeexceptions.policy import DEFAULT_POLICY, Policy
from unifocus.timeexceptions.rules import occurrence_overtime


@dataclass(frozen=True)
class DayTotals:
    date: date
    scheduled_minutes: int
    worked_minutes: int
    break_minutes: int
    overtime_minutes: int


@dataclass
class _Day:
    scheduled_minutes: int = 0
    worked_seconds: float = 0.0
    break_seconds: float = 0.0
    overtime_minutes: int = 0


def session_date(session: Session, tz: ZoneInfo) -> date:
    """The date a session's work belongs to: its occurrence's, else its clock_in's local date."""
    if session.occurrence is not None:
        return session.occurrence.shift_date
    return session.clock_in.timestamp.astimezone(tz).date()


def day_totals(
    punches: Iterable[PunchFact],
    occurrences: Sequence[Occurrence],
    tz: ZoneInfo,
    from_date: date,
    to_date: date,
    policy: Policy = DEFAULT_POLICY,
) -> list[DayTotals]:
    """One DayTotals per local date of [from_date, to_date] (inclusive), in date order.

    Pass the occurrences (and punches) of a day more on each side, so that work near the
    edges is attributed as the exception rules attribute it; days outside the range are
    computed and dropped.
    """
    occs = sorted(occurrences, key=by_start)
    days: dict[date, _Day] = {}
    for occ in occs:
        days.setdefault(occ.shift_date, _Day()).scheduled_minutes += occ.scheduled_minutes
    per_occ: dict[str, float] = {}
    for session in pair_punches(punches, occs, policy).sessions:
        day = days.setdefault(session_date(session, tz), _Day())
        day.worked_seconds += session.worked_seconds
        day.break_seconds += session.break_seconds
        if session.occurrence is not None:
            key = session.occurrence.key
            per_occ[key] = per_occ.get(key, 0.0) + session.worked_seconds
    for occ in occs:
        worked = int(per_occ.get(occ.key, 0.0) // 60)
        days[occ.shift_date].overtime_minutes += occurrence_overtime(worked, occ, policy)
    return [_totals(d, days.get(d, _Day())) for d in _dates(from_date, to_date)]


def _totals(day: date, acc: _Day) -> DayTotals:
    return DayTotals(
        date=day,
        scheduled_minutes=acc.scheduled_minutes,
        worked_minutes=int(acc.worked_seconds // 60),
        break_minutes=int(acc.break_seconds // 60),
        overtime_minutes=acc.overtime_minutes,
    )


def _dates(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]
