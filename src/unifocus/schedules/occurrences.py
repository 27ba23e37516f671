"""Weekly shift patterns turned into concrete, DST-correct shift occurrences.

Pure logic: no database, no I/O. Every instant produced here is an aware UTC datetime, and
every minute figure is real elapsed time (a 22:00-06:00 shift is 420 minutes on a
spring-forward night and 540 on a fall-back night).

DST, wall-clock times that do not exist or happen twice (`local_to_utc`):
- a time in a spring-forward gap (02:00-03:00 in New York on 2026-03-08) is the instant of
  the transition, the first instant whose wall clock reads that time or later: a shift is
  shortened by the part of the gap it covers (02:30-04:00 is 03:00-04:00 EDT, 60 minutes;
  a 22:00-02:30 night ends at the transition). An occurrence's end is therefore never before
  its start (`Occurrence` refuses one that is);
- a time in a fall-back fold takes its FIRST occurrence (the pre-transition offset).
A shift lying wholly in a gap (02:00-03:00, 02:15-02:45 that night) has no real time: it
gives a zero-length interval, and `occurrences` leaves it out, so it is scheduled 0 minutes,
is never late, absent or overtime, and a clock_in near it is judged as if it did not exist.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

SECONDS_PER_DAY = 24 * 3600
SECONDS_PER_WEEK = 7 * SECONDS_PER_DAY


@dataclass(frozen=True)
class WeeklyShift:
    """One shift of a schedule's weekly pattern (wall-clock times in the employee's zone)."""

    id: UUID
    schedule_id: UUID
    day_of_week: int  # ISO: 1 = Monday .. 7 = Sunday
    start_time: time
    end_time: time
    # Hashed on every cached `occurrence_of` lookup (a dozen per punch): computed once.
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 1 <= self.day_of_week <= 7:
            raise ValueError(f"day_of_week must be 1..7 (ISO), got {self.day_of_week}")
        object.__setattr__(self, "_hash", hash((self.id, self.schedule_id, self.day_of_week, self.start_time,
                                                 self.end_time)))

    def __hash__(self) -> int:  # the fields `==` compares, hashed once
        return self._hash

    @property
    def overnight(self) -> bool:
        """`end_time <= start_time` means the shift ends on the next local day (contract)."""
        return self.end_time <= self.start_time


@dataclass(frozen=True)
class ScheduleSpan:
    """A schedule: its weekly pattern applies on every date of [start_date, end_date]."""

    id: UUID
    start_date: date
    end_date: date
    shifts: Sequence[WeeklyShift] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        # A tuple, so the span hashes and `shifts_by_weekday`, computed once, cannot go stale.
        object.__setattr__(self, "shifts", tuple(self.shifts))

    @functools.cached_property
    def shifts_by_weekday(self) -> tuple[tuple[WeeklyShift, ...], ...]:
        """The shifts of each ISO weekday (index 1-7; 0 unused). Spans are shared between
        punches (the engine caches them), so this is built once per span, not per punch."""
        days: list[list[WeeklyShift]] = [[] for _ in range(8)]
        for shift in self.shifts:
            days[shift.day_of_week].append(shift)
        return tuple(tuple(day) for day in days)


@dataclass(frozen=True)
class Occurrence:
    """One concrete shift: `shift_date` is the local date it starts (overnight included)."""

    shift_id: UUID
    shift_date: date
    start: datetime  # aware, UTC
    end: datetime  # aware, UTC
    # Stable identity of the occurrence, used in exception dedupe keys; derived, and read
    # several times per occurrence by the rules, so computed once.
    key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"occurrence ends ({self.end}) before it starts ({self.start})")
        object.__setattr__(self, "key", f"occ:{self.shift_id}:{self.shift_date.isoformat()}")

    @property
    def scheduled_minutes(self) -> int:
        """Real elapsed minutes between start and end (DST transitions included)."""
        return int((self.end - self.start).total_seconds() // 60)


def by_start(occ: Occurrence) -> tuple[datetime, UUID]:
    """Time order, ties by shift id (a UUID orders as its fixed-width hex string does)."""
    return occ.start, occ.shift_id


# Many employees share shift times, and every punch re-expands the days around it: the same
# (date, wall time, zone) conversions recur on every punch of a tenant. Pure, so cached.
@functools.lru_cache(maxsize=1 << 15)
def local_to_utc(day: date, wall: time, tz: ZoneInfo) -> datetime:
    """Convert a local wall-clock time to UTC.

    An ambiguous time (fall-back fold) takes its FIRST occurrence (PEP 495 fold=0, the
    pre-transition offset). A nonexistent time (spring-forward gap) is the instant of the
    transition, the first instant at which the wall clock reads that time or later: 02:30 on
    a US spring-forward day becomes 03:00 daylight time (07:00Z in New York), as do 02:00 and
    02:59. So the conversion never runs backwards: a later wall time on the same day is never
    an earlier instant.
    """
    naive = datetime.combine(day, wall.replace(tzinfo=None))
    first = naive.replace(tzinfo=tz, fold=0)
    second = naive.replace(tzinfo=tz, fold=1)
    before, after = first.utcoffset(), second.utcoffset()
    if before is None or after is None or before >= after:  # ordinary time, or a fold
        return first.astimezone(UTC)
    # A gap (PEP 495: fold=0 reads it with the offset before the transition, fold=1 with the
    # one after): the transition lies in (naive - after, naive - before].
    return _transition(second.astimezone(UTC), first.astimezone(UTC), tz)


def _transition(lo: datetime, hi: datetime, tz: ZoneInfo) -> datetime:
    """The instant in (lo, hi] at which `tz`'s UTC offset leaves the one it has at `lo`.

    Binary search over whole seconds (tz database transitions fall on whole seconds); a gap
    is at most a day wide, so under twenty steps, and the result is cached by the caller.
    """
    offset = lo.astimezone(tz).utcoffset()
    low, high = math.floor(lo.timestamp()), math.ceil(hi.timestamp())
    while high - low > 1:
        mid = (low + high) // 2
        if datetime.fromtimestamp(mid, tz).utcoffset() == offset:
            low = mid
        else:
            high = mid
    return datetime.fromtimestamp(high, UTC)


# Each day of an employee's schedule is expanded again by every punch whose window covers it
# (a window spans about nine days). Occurrences are immutable, so they are shared.
@functools.lru_cache(maxsize=1 << 14)
def occurrence_of(shift: WeeklyShift, day: date, tz: ZoneInfo) -> Occurrence:
    """The occurrence of `shift` starting on local date `day` (the weekday is not checked).

    Zero-length when the shift lies wholly in a DST gap; `occurrences` leaves those out."""
    end_day = day + timedelta(days=1) if shift.overnight else day
    return Occurrence(
        shift_id=shift.id,
        shift_date=day,
        start=local_to_utc(day, shift.start_time, tz),
        end=local_to_utc(end_day, shift.end_time, tz),
    )


def occurrences(
    schedules: Iterable[ScheduleSpan], tz: ZoneInfo, from_date: date, to_date: date
) -> list[Occurrence]:
    """All occurrences whose start date lies in [from_date, to_date] (both inclusive) and in
    their schedule's [start_date, end_date], sorted by (start, shift_id).

    Wall times are read in `tz` (the employee's zone, else the tenant's; the caller decides).
    DST: see `local_to_utc` (a gap time is the transition instant, an ambiguous time its first
    instant). An occurrence lying wholly in a spring-forward gap has no real time and is left
    out (module docstring). An overnight occurrence belongs to the date it starts, so a caller
    that needs everything overlapping a date range should widen `from_date` by one day.
    """
    found: list[Occurrence] = []
    for schedule in schedules:
        first = max(schedule.start_date, from_date)
        last = min(schedule.end_date, to_date)
        by_weekday = schedule.shifts_by_weekday
        weekday = first.isoweekday()
        for offset in range((last - first).days + 1):
            shifts = by_weekday[weekday]
            if shifts:
                day = first + timedelta(days=offset)
                for shift in shifts:
                    occ = occurrence_of(shift, day, tz)
                    if occ.end > occ.start:  # a shift wholly in a DST gap has no real time
                        found.append(occ)
            weekday = weekday % 7 + 1
    found.sort(key=by_start)
    return found


def _week_interval(shift: WeeklyShift) -> tuple[int, int]:
    """[start, end) in seconds from Monday 00:00 of the pattern week; end may pass the week."""
    start = (shift.day_of_week - 1) * SECONDS_PER_DAY + _seconds(shift.start_time)
    length = _seconds(shift.end_time) - _seconds(shift.start_time)
    if shift.overnight:
        length += SECONDS_PER_DAY
    return start, start + length


def _seconds(t: time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


def overlaps(shifts: Iterable[WeeklyShift], new: WeeklyShift) -> bool:
    """Whether `new` overlaps any of `shifts` in the weekly pattern.

    Compared as half-open intervals over a 7-day week in wall-clock time, so a Sunday
    overnight shift wraps onto Monday morning; touching (one ends exactly when the other
    starts) is not an overlap. A shift with the same id as `new` is skipped (re-validation).
    """
    week = SECONDS_PER_WEEK
    new_start, new_end = _week_interval(new)
    for shift in shifts:
        if shift.id == new.id:
            continue
        start, end = _week_interval(shift)
        # Shift the existing interval by -1, 0, +1 weeks to catch the Sunday->Monday wrap.
        for offset in (-week, 0, week):
            if start + offset < new_end and new_start < end + offset:
                return True
    return False
