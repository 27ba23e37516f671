"""Exception rules (contract section 5) as a pure function of facts.

`evaluate(punches, occurrences, policy, now)` returns the complete set of exceptions that
SHOULD exist for one employee, given the non-voided punches and `now`. The caller inserts the
findings not yet stored (unique on employee, type, dedupe_key) and withdraws pending ones that
are no longer returned, so the result is deterministic and every `dedupe_key` is stable:

- `occ:<shift_id>:<shift_date>` when the finding belongs to an occurrence (late_arrival,
  early_departure, absence, overtime always; missed_punch and long_break when the punches
  involved belong to an occurrence);
- `punch:<punch_id>` otherwise: unscheduled_punch -> the clock_in; missed_punch -> the stray
  clock_out/break_end, or the clock_in (break_start) left open; long_break -> its break_start.

One finding per (type, key), as the contract's "at most once per occurrence or punch"; when
several causes share a key, the details of the first (punch-decided before time-based, then in
punch order) are kept. `Finding.time_based` is True when the finding exists only because time
has passed (absence; an occurrence or break still open past its deadline): raised by the
sweep job and by a void (whose zone's deadlines may have passed long ago), not by a punch
write. The others follow from the punches alone and belong in the punch's transaction.

Boundaries: grace rules are strict ("later than start + grace": exactly at grace is fine);
deadlines are reached at the instant (an occurrence ending 17:00 with a 60-minute
missedPunchAfter is absent / missed from 18:00 inclusive). Durations are real elapsed time,
floored to whole minutes; the amount late/early in details is rounded up, so a raised finding
never shows a figure inside the grace.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

from unifocus.schedules.occurrences import Occurrence, by_start
from unifocus.timeexceptions.pairing import Break, Pairing, PunchFact, Session, attribute, pair_punches
from unifocus.timeexceptions.policy import Policy

__all__ = ["Finding", "PunchFact", "attribute", "evaluate", "iso", "occurrence_overtime"]

EXCEPTION_TYPES = (
    "late_arrival",
    "early_departure",
    "unscheduled_punch",
    "missed_punch",
    "absence",
    "long_break",
    "overtime",
)


@dataclass(frozen=True)
class Finding:
    type: str
    dedupe_key: str
    shift_id: UUID | None
    shift_date: date | None
    punch_id: UUID | None
    details: dict[str, Any]
    time_based: bool = False  # True: exists only because of `now` (sweep job)
    # The punch that revealed it, when not its owner: the clock_in that abandoned a session
    # which matched no shift (an evaluation around that clock_in reconciles the finding).
    revealed_by: UUID | None = None


# Every finding of an occurrence carries its start and end, and each punch re-evaluates the
# occurrences around it: the same instants are rendered again and again. Pure, so cached.
@functools.lru_cache(maxsize=1 << 14)
def iso(ts: datetime) -> str:
    """RFC 3339 in UTC with `Z`, the contract's format for returned instants."""
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _minutes_up(delta: timedelta) -> int:
    return math.ceil(delta.total_seconds() / 60)


def _whole_minutes(seconds: float) -> int:
    return int(seconds // 60)


def occurrence_overtime(worked_minutes: int, occ: Occurrence, policy: Policy) -> int:
    """Overtime minutes of one occurrence: all of the excess over its scheduled minutes when
    that excess is more than the threshold, else 0 (the threshold is a tolerance, not a
    deduction). Non-zero exactly when the `overtime` exception is raised; timesheets use it."""
    excess = worked_minutes - occ.scheduled_minutes
    return excess if excess > policy.overtime_threshold_minutes else 0


class _Collector:
    def __init__(self) -> None:
        self._found: dict[tuple[str, str], Finding] = {}

    def add(
        self,
        kind: str,
        occ: Occurrence | None,
        punch: PunchFact | None,
        details: dict[str, Any],
        time_based: bool = False,
        revealed_by: UUID | None = None,
    ) -> None:
        """Owner is `occ` when given, else `punch` (one of the two is always given)."""
        if occ is not None:
            key = occ.key
            details = {"scheduledStart": iso(occ.start), "scheduledEnd": iso(occ.end), **details}
        else:
            assert punch is not None, "a finding belongs to an occurrence or a punch"
            key = f"punch:{punch.id}"
        finding = Finding(
            type=kind,
            dedupe_key=key,
            shift_id=occ.shift_id if occ else None,
            shift_date=occ.shift_date if occ else None,
            punch_id=punch.id if punch else None,
            details=details,
            time_based=time_based,
            revealed_by=revealed_by,
        )
        existing = self._found.get((kind, key))
        if existing is None or (existing.time_based and not time_based):
            self._found[(kind, key)] = finding

    def result(self) -> list[Finding]:
        return [self._found[k] for k in sorted(self._found)]


def evaluate(
    punches: Iterable[PunchFact], occurrences: Sequence[Occurrence], policy: Policy, now: datetime,
    pairing: Pairing | None = None, zone: tuple[datetime, datetime] | None = None,
) -> list[Finding]:
    """Every exception that should exist now for one employee, sorted by (type, dedupe_key).

    `occurrences` must cover the punches' period (widen by a day either side); voided punches
    are ignored. Pure and deterministic: the same inputs give equal findings.

    `zone` = (start, end): the caller keeps only findings of occurrences starting in
    [start, end) (and of punches in it), so the rules of an occurrence outside it, and of the
    sessions attributed to one, are not run: every finding they make is keyed by that
    occurrence. The findings that remain are those of the zone, and a few of punches without
    an occurrence outside it, which the caller drops as before.
    """
    occs = sorted(occurrences, key=by_start)
    if pairing is None:  # a caller that also needs the pairing passes the one it computed
        pairing = pair_punches(punches, occs, policy)

    def outside(occ: Occurrence | None) -> bool:
        return zone is not None and occ is not None and not zone[0] <= occ.start < zone[1]

    out = _Collector()
    for session in pairing.sessions:
        if outside(session.occurrence):
            continue
        _session_rules(session, policy, now, out)
    for punch, occ in pairing.strays:
        reason = f"{punch.type}_with_nothing_open"
        out.add("missed_punch", occ, punch, {"reason": reason, "punch": iso(punch.timestamp)})
    by_occ: dict[str, list[Session]] = {}
    for session in pairing.sessions:
        if session.occurrence is not None:
            by_occ.setdefault(session.occurrence.key, []).append(session)
    for occ in occs:
        if outside(occ):
            continue
        _occurrence_rules(occ, by_occ.get(occ.key, []), policy, now, out)
    return out.result()


def _session_rules(session: Session, policy: Policy, now: datetime, out: _Collector) -> None:
    occ, clock_in = session.occurrence, session.clock_in
    if occ is None:
        details = {
            "clockIn": iso(clock_in.timestamp),
            "earlyClockInWindowMinutes": policy.early_clock_in_window_minutes,
            "reason": "no occurrence starts within the early clock-in window or is in progress",
        }
        out.add("unscheduled_punch", None, clock_in, details)
    for brk in session.breaks:
        _break_rules(session, brk, policy, out)
    if session.abandoned_by is not None:
        details = {
            "reason": "clock_in_while_open",
            "clockIn": iso(clock_in.timestamp),
            "nextClockIn": iso(session.abandoned_by.timestamp),
        }
        out.add("missed_punch", occ, clock_in, details, revealed_by=session.abandoned_by.id)
    elif session.clock_out is None:
        _still_open_rules(session, policy, now, out)


def _break_rules(session: Session, brk: Break, policy: Policy, out: _Collector) -> None:
    occ = session.occurrence
    if brk.end is None:
        return
    if brk.ended_by_clock_out:
        reason = {"reason": "clock_out_during_break", "breakStart": iso(brk.start.timestamp),
                  "clockOut": iso(brk.end)}
        out.add("missed_punch", occ, brk.start, reason)
    if brk.seconds > policy.max_break_minutes * 60:
        # A part minute counts as a minute here, as in minutesLate: a 60.5-minute break against
        # 60 reads 61 and 1 over (floored, it read 60 and 1 over, which says no violation).
        minutes = _minutes_up(timedelta(seconds=brk.seconds))
        details: dict[str, Any] = {
            "breakMinutes": minutes,
            "maxBreakMinutes": policy.max_break_minutes,
            "minutesOver": minutes - policy.max_break_minutes,
            "breakStart": iso(brk.start.timestamp),
            "breakEnd": iso(brk.end),
        }
        out.add("long_break", occ, brk.start, details)


def _still_open_rules(session: Session, policy: Policy, now: datetime, out: _Collector) -> None:
    """Time-based missed_punch for a session with no clock_out yet. A session that matched no
    occurrence has no end to measure against, so only its open break can be overdue."""
    after = timedelta(minutes=policy.missed_punch_after_minutes)
    occ = session.occurrence
    if occ is not None and now >= occ.end + after:
        details = {
            "reason": "still_open_after_end",
            "clockIn": iso(session.clock_in.timestamp),
            "missedPunchAfterMinutes": policy.missed_punch_after_minutes,
            "deadline": iso(occ.end + after),
        }
        out.add("missed_punch", occ, session.clock_in, details, time_based=True)
    brk = session.open_break
    # A break has no scheduled end; it "should have ended" after maxBreakMinutes.
    if brk is not None:
        deadline = brk.start.timestamp + timedelta(minutes=policy.max_break_minutes) + after
        if now >= deadline:
            details = {
                "reason": "break_still_open",
                "breakStart": iso(brk.start.timestamp),
                "maxBreakMinutes": policy.max_break_minutes,
                "missedPunchAfterMinutes": policy.missed_punch_after_minutes,
                "deadline": iso(deadline),
            }
            out.add("missed_punch", occ, brk.start, details, time_based=True)


def _occurrence_rules(
    occ: Occurrence, sessions: list[Session], policy: Policy, now: datetime, out: _Collector
) -> None:
    if not sessions:
        deadline = occ.end + timedelta(minutes=policy.missed_punch_after_minutes)
        if now >= deadline:
            details = {
                "scheduledMinutes": occ.scheduled_minutes,
                "missedPunchAfterMinutes": policy.missed_punch_after_minutes,
                "deadline": iso(deadline),
            }
            out.add("absence", occ, None, details, time_based=True)
        return
    _late_rule(occ, sessions[0].clock_in, policy, out)
    _early_rule(occ, sessions, policy, out)
    worked = _whole_minutes(sum(s.worked_seconds for s in sessions))
    overtime = occurrence_overtime(worked, occ, policy)
    if overtime:
        details = {
            "workedMinutes": worked,
            "scheduledMinutes": occ.scheduled_minutes,
            "overtimeMinutes": overtime,
            "overtimeThresholdMinutes": policy.overtime_threshold_minutes,
        }
        outs = [s.clock_out for s in sessions if s.clock_out is not None]
        last_out = max(outs, key=lambda p: p.timestamp, default=None)
        out.add("overtime", occ, last_out, details)


def _late_rule(occ: Occurrence, clock_in: PunchFact, policy: Policy, out: _Collector) -> None:
    if clock_in.timestamp > occ.start + timedelta(minutes=policy.late_grace_minutes):
        details = {
            "minutesLate": _minutes_up(clock_in.timestamp - occ.start),
            "lateGraceMinutes": policy.late_grace_minutes,
            "clockIn": iso(clock_in.timestamp),
        }
        out.add("late_arrival", occ, clock_in, details)


def _early_rule(occ: Occurrence, sessions: list[Session], policy: Policy, out: _Collector) -> None:
    """Decided on the last clock_out, and only when the occurrence's last session is closed.

    A clock_out followed by a clock_in of the same occurrence was a pause (a pending
    early_departure is withdrawn by re-evaluation). While the last session has no clock_out,
    still open or abandoned by a later clock_in, nobody knows when the employee left:
    missed_punch flags it, and no early_departure is made from an earlier pause's clock_out,
    so the answer does not change when the next clock_in arrives."""
    last = sessions[-1]
    if last.clock_out is None:
        return
    outs = [s.clock_out for s in sessions if s.clock_out is not None]
    clock_out = max(outs, key=lambda p: p.timestamp)  # not empty: the last session has one
    if clock_out.timestamp < occ.end - timedelta(minutes=policy.early_departure_grace_minutes):
        details = {
            "minutesEarly": _minutes_up(occ.end - clock_out.timestamp),
            "earlyDepartureGraceMinutes": policy.early_departure_grace_minutes,
            "clockOut": iso(clock_out.timestamp),
        }
        out.add("early_departure", occ, clock_out, details)
