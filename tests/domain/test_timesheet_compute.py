"""Timesheet day totals: pairing, breaks, overnight/DST attribution, overtime consistency."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unifocus.schedules.occurrences import Occurrence, ScheduleSpan, WeeklyShift, occurrences
from unifocus.timeexceptions.policy import DEFAULT_POLICY
from unifocus.timeexceptions.rules import PunchFact, evaluate
from unifocus.timesheets.compute import DayTotals, day_totals

UTCZ = ZoneInfo("UTC")
NY = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")
MONDAY = date(2026, 6, 1)
IN, OUT, BS, BE = "clock_in", "clock_out", "break_start", "break_end"


def weekly(dow: int, start: str, end: str) -> WeeklyShift:
    return WeeklyShift(uuid.uuid4(), uuid.uuid4(), dow, time.fromisoformat(start), time.fromisoformat(end))


def occs_of(tz: ZoneInfo, first: date, last: date, *shifts: WeeklyShift) -> list[Occurrence]:
    return occurrences([ScheduleSpan(uuid.uuid4(), first, last, list(shifts))], tz, first, last)


def local(tz: ZoneInfo, day: date, hhmm: str) -> datetime:
    return datetime.combine(day, time.fromisoformat(hhmm), tzinfo=tz).astimezone(UTC)


def punch(kind: str, ts: datetime, voided: bool = False) -> PunchFact:
    return PunchFact(uuid.uuid4(), kind, ts, voided)


def utc_day(day: date, *spec: tuple[str, str]) -> list[PunchFact]:
    return [punch(k, local(UTCZ, day, hhmm)) for k, hhmm in spec]


OCC = occs_of(UTCZ, MONDAY, MONDAY, weekly(1, "09:00", "17:00"))


def test_ordinary_day_with_a_break() -> None:
    punches = utc_day(MONDAY, (IN, "09:00"), (BS, "12:00"), (BE, "12:30"), (OUT, "17:00"))
    (day,) = day_totals(punches, OCC, UTCZ, MONDAY, MONDAY)
    assert day == DayTotals(MONDAY, 480, 450, 30, 0)


def test_one_row_per_local_date_inclusive_in_order() -> None:
    days = day_totals([], OCC, UTCZ, date(2026, 5, 30), date(2026, 6, 2))
    assert [d.date for d in days] == [date(2026, 5, 30), date(2026, 5, 31), MONDAY, date(2026, 6, 2)]
    assert [d.scheduled_minutes for d in days] == [0, 0, 480, 0]
    assert all(d.worked_minutes == d.break_minutes == d.overtime_minutes == 0 for d in days)


@pytest.mark.parametrize(
    ("tz", "night_of", "minutes"),
    [(NY, date(2026, 3, 7), 420), (NY, date(2026, 10, 31), 540),
     (LONDON, date(2026, 3, 28), 420), (LONDON, date(2026, 10, 24), 540)],
)
def test_overnight_dst_shift_lands_on_its_start_date(tz: ZoneInfo, night_of: date, minutes: int) -> None:
    occs = occs_of(tz, night_of, night_of, weekly(night_of.isoweekday(), "22:00", "06:00"))
    morning = night_of + timedelta(days=1)
    punches = [punch(IN, local(tz, night_of, "22:00")), punch(OUT, local(tz, morning, "06:00"))]
    night, next_day = day_totals(punches, occs, tz, night_of, morning)
    assert night == DayTotals(night_of, minutes, minutes, 0, 0)
    assert next_day == DayTotals(morning, 0, 0, 0, 0)


def test_shifts_in_the_spring_forward_gap_never_make_negative_or_phantom_minutes() -> None:
    spring = date(2026, 3, 8)  # New York: 02:00 EST -> 03:00 EDT
    in_gap = weekly(7, "02:30", "03:00")  # no real time that night
    (day,) = day_totals([], occs_of(NY, spring, spring, in_gap), NY, spring, spring)
    assert day == DayTotals(spring, 0, 0, 0, 0)
    # a shift starting in the gap starts at the switch: worked to its end is no overtime
    starts_in_gap = weekly(7, "02:30", "04:00")
    punches = [punch(IN, local(NY, spring, "03:00")), punch(OUT, local(NY, spring, "04:00"))]
    occs = occs_of(NY, spring, spring, in_gap, starts_in_gap)
    (day,) = day_totals(punches, occs, NY, spring, spring)
    assert day == DayTotals(spring, 60, 60, 0, 0)


def test_unscheduled_work_lands_on_the_local_date_of_its_clock_in() -> None:
    # 02:00Z on June 2 is 22:00 on June 1 in New York.
    punches = [punch(IN, datetime(2026, 6, 2, 2, 0, tzinfo=UTC)),
               punch(OUT, datetime(2026, 6, 2, 4, 0, tzinfo=UTC))]
    in_ny = day_totals(punches, [], NY, MONDAY, date(2026, 6, 2))
    in_utc = day_totals(punches, [], UTCZ, MONDAY, date(2026, 6, 2))
    assert [d.worked_minutes for d in in_ny] == [120, 0]
    assert [d.worked_minutes for d in in_utc] == [0, 120]
    assert all(d.overtime_minutes == 0 for d in in_ny)  # unscheduled is not overtime


# 17:15:59: 8 h 15 min 59 s worked, floored to 495 minutes, so 15 over the shift: not more
# than the 15-minute threshold (rounding to the nearest minute would make it 16).
@pytest.mark.parametrize(("clock_out", "overtime"),
                         [("17:15", 0), ("17:15:59", 0), ("17:16", 16), ("18:00", 60)])
def test_overtime_follows_the_rule_threshold(clock_out: str, overtime: int) -> None:
    punches = utc_day(MONDAY, (IN, "09:00"), (OUT, clock_out))
    (day,) = day_totals(punches, OCC, UTCZ, MONDAY, MONDAY)
    assert day.overtime_minutes == overtime
    findings = evaluate(punches, OCC, DEFAULT_POLICY, local(UTCZ, MONDAY, "23:00"))
    assert ("overtime" in {f.type for f in findings}) is (overtime > 0)


def test_split_occurrence_sessions_add_up_for_overtime() -> None:
    punches = utc_day(MONDAY, (IN, "08:30"), (OUT, "12:00"), (IN, "12:30"), (OUT, "17:30"))
    (day,) = day_totals(punches, OCC, UTCZ, MONDAY, MONDAY)
    assert (day.worked_minutes, day.break_minutes, day.overtime_minutes) == (510, 0, 30)


def test_open_intervals_and_out_of_sequence_punches_count_nothing() -> None:
    punches = utc_day(
        MONDAY,
        (OUT, "08:00"),  # stray
        (IN, "09:00"), (BS, "10:00"), (IN, "11:00"),  # first interval abandoned
        (BE, "11:30"),  # stray break_end inside the second interval
        (OUT, "13:00"),
        (IN, "14:00"),  # left open
    )
    (day,) = day_totals(punches, OCC, UTCZ, MONDAY, MONDAY)
    assert (day.worked_minutes, day.break_minutes) == (120, 0)


def test_clock_out_during_a_break_ends_the_break() -> None:
    punches = utc_day(MONDAY, (IN, "09:00"), (BS, "16:00"), (OUT, "17:00"))
    (day,) = day_totals(punches, OCC, UTCZ, MONDAY, MONDAY)
    assert (day.worked_minutes, day.break_minutes) == (420, 60)


def test_voided_punches_are_ignored() -> None:
    punches = utc_day(MONDAY, (IN, "09:00"), (OUT, "17:00"))
    punches.append(punch(OUT, local(UTCZ, MONDAY, "12:00"), voided=True))
    (day,) = day_totals(punches, OCC, UTCZ, MONDAY, MONDAY)
    assert day.worked_minutes == 480


def test_days_outside_the_range_are_dropped_but_attribute_edges() -> None:
    # The Sunday-night shift's work belongs to Sunday even though it is clocked out Monday.
    sunday = date(2026, 5, 31)
    occs = occs_of(UTCZ, sunday, MONDAY, weekly(7, "22:00", "06:00"))
    punches = utc_day(sunday, (IN, "22:00")) + utc_day(MONDAY, (OUT, "06:00"))
    (monday_only,) = day_totals(punches, occs, UTCZ, MONDAY, MONDAY)
    assert monday_only.worked_minutes == 0


# --- property: worked = paired intervals minus breaks, by an independent reference ---------

_RANK = {BE: 0, OUT: 1, IN: 2, BS: 3}  # same-instant order from the spec: closers first


def reference(punches: list[PunchFact], tz: ZoneInfo) -> tuple[dict[date, int], dict[date, int]]:
    """Straightforward pairing: (worked, break) seconds per local clock_in date."""
    worked: dict[date, int] = defaultdict(int)
    breaks: dict[date, int] = defaultdict(int)
    live = sorted((p for p in punches if not p.voided), key=lambda p: (p.timestamp, _RANK[p.type], str(p.id)))
    opened: datetime | None = None
    on_break: datetime | None = None
    taken = 0
    for p in live:
        ts = p.timestamp
        if p.type == IN:
            opened, on_break, taken = ts, None, 0
        elif opened is None:
            continue
        elif p.type == BS and on_break is None:
            on_break = ts
        elif p.type == BE and on_break is not None:
            taken += int((ts - on_break).total_seconds())
            on_break = None
        elif p.type == OUT:
            if on_break is not None:
                taken += int((ts - on_break).total_seconds())
            day = opened.astimezone(tz).date()
            worked[day] += int((ts - opened).total_seconds()) - taken
            breaks[day] += taken
            opened, on_break = None, None
    return worked, breaks


BASE = datetime(2026, 3, 7, 12, 0, tzinfo=UTC)  # around the New York spring-forward
punch_lists = st.lists(
    st.builds(
        lambda kind, minute, voided: punch(kind, BASE + timedelta(minutes=minute), voided),
        st.sampled_from([IN, OUT, BS, BE]), st.integers(0, 3 * 1440), st.booleans(),
    ),
    max_size=16,
)
FIRST, LAST = date(2026, 3, 6), date(2026, 3, 11)


@settings(max_examples=400, deadline=None)
@given(punch_lists, st.sampled_from([UTCZ, NY, LONDON]))
def test_unscheduled_totals_match_the_reference(punches: list[PunchFact], tz: ZoneInfo) -> None:
    days = day_totals(punches, [], tz, FIRST, LAST)
    worked, breaks = reference(punches, tz)
    for d in days:
        assert d.worked_minutes >= 0 and d.break_minutes >= 0
        assert d.worked_minutes == worked.get(d.date, 0) // 60
        assert d.break_minutes == breaks.get(d.date, 0) // 60
        assert d.overtime_minutes == 0


@settings(max_examples=300, deadline=None)
@given(punch_lists)
def test_attribution_moves_work_between_days_but_never_changes_the_total(punches: list[PunchFact]) -> None:
    nights = [weekly(d, "22:00", "06:00") for d in range(1, 8)]
    shifts = nights + [weekly(d, "09:00", "17:00") for d in range(1, 8)]
    occs = occs_of(NY, FIRST, LAST, *shifts)
    days = day_totals(punches, occs, NY, FIRST, LAST)
    worked, _ = reference(punches, NY)
    # minute-resolution punches: no rounding, so the totals are equal
    assert sum(d.worked_minutes for d in days) == sum(worked.values()) // 60
    assert all(0 <= d.overtime_minutes <= d.worked_minutes for d in days)
    assert sum(d.scheduled_minutes for d in days) == sum(o.scheduled_minutes for o in occs)
