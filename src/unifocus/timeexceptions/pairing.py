"""Punches -> work sessions, and punches -> the shift occurrence they belong to.

Shared by the exception rules and the timesheets so that both count the same work.

Pairing walks the non-voided punches in time order (ties: closers before openers, so a
clock_out and the next clock_in at the same instant pair naturally). A clock_in opens a
session attributed to an occurrence (`attribute`); the session's other punches inherit that
occurrence. Out-of-sequence punches never fail: a clock_out / break_end with nothing open is a
"stray" (a missed_punch); a break_start outside a session, or during a break, is ignored.
A clock_out during a break ends the break at the clock_out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

from unifocus.schedules.occurrences import Occurrence
from unifocus.timeexceptions.policy import Policy

PUNCH_TYPES = ("clock_in", "clock_out", "break_start", "break_end")
# Same-instant order: close what is open before opening anything new.
_TIE_RANK = {"break_end": 0, "clock_out": 1, "clock_in": 2, "break_start": 3}


@dataclass(frozen=True)
class PunchFact:
    id: UUID
    type: str
    timestamp: datetime  # aware
    voided: bool = False

    def __post_init__(self) -> None:
        if self.type not in PUNCH_TYPES:
            raise ValueError(f"unknown punch type {self.type!r}")
        if self.timestamp.tzinfo is None:
            raise ValueError("punch timestamp must be timezone-aware")


@dataclass
class Break:
    start: PunchFact
    end: datetime | None = None  # the break_end, or the clock_out that ended the break
    ended_by_clock_out: bool = False

    @property
    def seconds(self) -> float:
        return 0.0 if self.end is None else (self.end - self.start.timestamp).total_seconds()


@dataclass
class Session:
    """A clock_in and what followed it, until a clock_out or until it was left open."""

    clock_in: PunchFact
    occurrence: Occurrence | None
    clock_out: PunchFact | None = None
    breaks: list[Break] = field(default_factory=list)
    abandoned_by: PunchFact | None = None  # the next clock_in, which arrived while still open

    @property
    def open_break(self) -> Break | None:
        return self.breaks[-1] if self.breaks and self.breaks[-1].end is None else None

    @property
    def break_seconds(self) -> float:
        # An interval that was never closed counts nothing, its breaks included.
        return sum(b.seconds for b in self.breaks) if self.clock_out else 0.0

    @property
    def worked_seconds(self) -> float:
        if self.clock_out is None:
            return 0.0
        span = (self.clock_out.timestamp - self.clock_in.timestamp).total_seconds()
        return max(0.0, span - self.break_seconds)


@dataclass
class Pairing:
    sessions: list[Session] = field(default_factory=list)
    # clock_out / break_end with nothing open, with the occurrence they belong to
    strays: list[tuple[PunchFact, Occurrence | None]] = field(default_factory=list)
    # every non-voided punch -> its occurrence (what the punch's shiftId/shiftDate should say)
    occurrence_of: dict[UUID, Occurrence | None] = field(default_factory=dict)


def attribute(
    punch_ts: datetime, punch_type: str, occurrences: Iterable[Occurrence], policy: Policy
) -> Occurrence | None:
    """The occurrence a lone punch belongs to, or None.

    clock_in: candidates start within `earlyClockInWindowMinutes` after the punch (inclusive)
    or are in progress, i.e. [start - window, end); the nearest start wins (a clock_in at
    12:45 between a 09-13 and a 13-17 shift opens the second one).
    Other types: candidates cover [start - window, end + missedPunchAfterMinutes); the one
    nearest to the punch wins (0 while in progress, else the distance to its start or end),
    then the nearest start. `pair_punches` uses this only for clock_ins and punches outside
    any session; punches inside a session take the occurrence of the clock_in that opened it.
    Remaining ties: earlier start, then shift id, so the answer is deterministic.
    """
    window = timedelta(minutes=policy.early_clock_in_window_minutes)
    after = timedelta(minutes=policy.missed_punch_after_minutes)
    if punch_type == "clock_in":
        found = [o for o in occurrences if o.start - window <= punch_ts < o.end]
        return min(found, key=lambda o: (abs(punch_ts - o.start), o.start, o.shift_id), default=None)
    found = [o for o in occurrences if o.start - window <= punch_ts < o.end + after]

    def rank(o: Occurrence) -> tuple[timedelta, timedelta, datetime, UUID]:
        outside = max(o.start - punch_ts, punch_ts - o.end, timedelta(0))
        return outside, abs(punch_ts - o.start), o.start, o.shift_id

    return min(found, key=rank, default=None)


def sort_punches(punches: Iterable[PunchFact]) -> list[PunchFact]:
    """Non-voided punches in evaluation order (time, then closers first, then id)."""
    live = (p for p in punches if not p.voided)
    # Aware datetimes compare as instants; a UUID's int orders as its fixed-width hex does.
    return sorted(live, key=lambda p: (p.timestamp, _TIE_RANK[p.type], p.id.int))


def pair_punches(
    punches: Iterable[PunchFact], occurrences: Sequence[Occurrence], policy: Policy
) -> Pairing:
    """Walk the punches in order and build sessions; see the module docstring."""
    result = Pairing()
    current: Session | None = None
    for punch in sort_punches(punches):
        if punch.type == "clock_in":
            if current is not None:
                current.abandoned_by = punch
            current = Session(punch, attribute(punch.timestamp, "clock_in", occurrences, policy))
            result.sessions.append(current)
            result.occurrence_of[punch.id] = current.occurrence
        elif current is None:
            occ = attribute(punch.timestamp, punch.type, occurrences, policy)
            result.occurrence_of[punch.id] = occ
            if punch.type != "break_start":  # a break_start with no clock_in is ignored
                result.strays.append((punch, occ))
        else:
            result.occurrence_of[punch.id] = current.occurrence
            current = _session_punch(current, punch, result)
    return result


def _session_punch(session: Session, punch: PunchFact, result: Pairing) -> Session | None:
    """Apply a non-clock_in punch to the open session; returns the session if still open."""
    open_break = session.open_break
    if punch.type == "break_start":
        if open_break is None:  # a repeated break_start is ignored: the first one counts
            session.breaks.append(Break(punch))
    elif punch.type == "break_end":
        if open_break is None:
            result.strays.append((punch, session.occurrence))
        else:
            open_break.end = punch.timestamp
    else:  # clock_out
        if open_break is not None:
            open_break.end, open_break.ended_by_clock_out = punch.timestamp, True
        session.clock_out = punch
        return None
    return session
