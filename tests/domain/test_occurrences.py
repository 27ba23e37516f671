"""Weekly pattern -> occurrences (DST, overnight, zones) and the weekly overlap check."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from unifocus.schedules.occurrences import (
    Occurrence,
    ScheduleSpan,
    WeeklyShift,
    local_to_utc,
    occurrences,
    overlaps,
)

NY = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")
SCHEDULE = uuid.uuid4()


def shift(dow: int, start: str, end: str) -> WeeklyShift:
    return WeeklyShift(uuid.uuid4(), SCHEDULE, dow, time.fromisoformat(start), time.fromisoformat(end))


def span(
    *shifts: WeeklyShift, start: date = date(2026, 1, 1), end: date = date(2026, 12, 31)
) -> ScheduleSpan:
    return ScheduleSpan(SCHEDULE, start, end, list(shifts))


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_weekly_pattern_expands_over_the_schedule_dates_inclusive() -> None:
    monday = shift(1, "09:00", "17:00")
    got = occurrences([span(monday, start=date(2026, 3, 2), end=date(2026, 3, 16))], NY,
                      date(2026, 2, 1), date(2026, 4, 1))
    assert [o.shift_date for o in got] == [date(2026, 3, 2), date(2026, 3, 9), date(2026, 3, 16)]
    assert got[0].start == utc("2026-03-02T14:00:00")  # EST
    assert got[1].start == utc("2026-03-09T13:00:00")  # EDT after the spring-forward
    assert all(o.scheduled_minutes == 480 for o in got)


def test_query_range_clips_by_start_date() -> None:
    monday = shift(1, "22:00", "06:00")
    got = occurrences([span(monday)], NY, date(2026, 3, 3), date(2026, 3, 9))
    assert [o.shift_date for o in got] == [date(2026, 3, 9)]


def test_overnight_shift_ends_next_day_and_belongs_to_its_start_date() -> None:
    tuesday = shift(2, "22:00", "06:00")
    (occ,) = occurrences([span(tuesday)], ZoneInfo("UTC"), date(2026, 6, 1), date(2026, 6, 7))
    start, end = utc("2026-06-02T22:00:00"), utc("2026-06-03T06:00:00")
    expected = Occurrence(tuesday.id, date(2026, 6, 2), start, end)
    assert occ == expected
    assert occ.scheduled_minutes == 480
    assert occ.key == f"occ:{tuesday.id}:2026-06-02"


@pytest.mark.parametrize(
    ("tz", "night_of", "minutes"),
    [
        (NY, date(2026, 3, 7), 420),  # 2026-03-08 02:00 EST -> 03:00 EDT
        (NY, date(2026, 10, 31), 540),  # 2026-11-01 02:00 EDT -> 01:00 EST
        (NY, date(2026, 3, 14), 480),  # an ordinary night
        (LONDON, date(2026, 3, 28), 420),  # 2026-03-29 01:00 GMT -> 02:00 BST
        (LONDON, date(2026, 10, 24), 540),  # 2026-10-25 02:00 BST -> 01:00 GMT
        (LONDON, date(2026, 7, 4), 480),
    ],
)
def test_overnight_dst_nights_are_real_elapsed_minutes(tz: ZoneInfo, night_of: date, minutes: int) -> None:
    every_night = [shift(d, "22:00", "06:00") for d in range(1, 8)]
    got = occurrences([span(*every_night)], tz, night_of, night_of)
    assert len(got) == 1
    assert got[0].shift_date == night_of
    assert got[0].scheduled_minutes == minutes


def test_nonexistent_local_time_is_the_instant_of_the_transition() -> None:
    # 02:00-03:00 does not exist in New York on 2026-03-08: every time in it is the switch,
    # 03:00 EDT (07:00Z), the first instant the wall clock reads that time or later.
    spring = date(2026, 3, 8)
    for wall in (time(2, 0), time(2, 30), time(2, 59, 59), time(3, 0)):
        assert local_to_utc(spring, wall, NY) == utc("2026-03-08T07:00:00")
    assert local_to_utc(spring, time(1, 59), NY) == utc("2026-03-08T06:59:00")
    # London skips 01:00-02:00 GMT on 2026-03-29; Lord Howe skips only 30 minutes.
    assert local_to_utc(date(2026, 3, 29), time(1, 30), LONDON) == utc("2026-03-29T01:00:00")
    lord_howe = ZoneInfo("Australia/Lord_Howe")  # 2026-10-04 02:00 +10:30 -> 02:30 +11:00
    assert local_to_utc(date(2026, 10, 4), time(2, 15), lord_howe) == utc("2026-10-03T15:30:00")


def test_a_shift_starting_in_the_gap_is_shortened_by_it() -> None:
    sunday = shift(7, "02:30", "04:00")
    (occ,) = occurrences([span(sunday)], NY, date(2026, 3, 8), date(2026, 3, 8))
    assert (occ.start, occ.end) == (utc("2026-03-08T07:00:00"), utc("2026-03-08T08:00:00"))
    assert occ.scheduled_minutes == 60  # 03:00-04:00 EDT


def test_an_overnight_shift_ending_in_the_gap_ends_at_the_transition() -> None:
    saturday = shift(6, "22:00", "02:30")
    (occ,) = occurrences([span(saturday)], NY, date(2026, 3, 7), date(2026, 3, 7))
    assert occ.shift_date == date(2026, 3, 7)
    assert (occ.start, occ.end) == (utc("2026-03-08T03:00:00"), utc("2026-03-08T07:00:00"))
    assert occ.scheduled_minutes == 240


@pytest.mark.parametrize(("start", "end"), [("02:30", "03:00"), ("02:00", "03:00"), ("02:15", "02:45")])
def test_a_shift_wholly_in_the_gap_is_not_an_occurrence(start: str, end: str) -> None:
    # No real time: it is not scheduled at all (not a -30 or 0 minute occurrence); the same
    # shift on the next Sunday is an ordinary one.
    sunday = shift(7, start, end)
    got = occurrences([span(sunday)], NY, date(2026, 3, 1), date(2026, 3, 15))
    assert [o.shift_date for o in got] == [date(2026, 3, 1), date(2026, 3, 15)]
    assert all(o.scheduled_minutes > 0 for o in got)


def test_an_occurrence_never_ends_before_it_starts() -> None:
    with pytest.raises(ValueError):
        Occurrence(uuid.uuid4(), date(2026, 3, 8), utc("2026-03-08T07:30:00"), utc("2026-03-08T07:00:00"))


@pytest.mark.parametrize(
    ("tz", "switch_day"),
    [(NY, date(2026, 3, 8)), (NY, date(2026, 11, 1)), (LONDON, date(2026, 3, 29)),
     (LONDON, date(2026, 10, 25)), (ZoneInfo("Australia/Lord_Howe"), date(2026, 10, 4))],
)
def test_no_shift_near_a_switch_gets_negative_or_zero_minutes(tz: ZoneInfo, switch_day: date) -> None:
    # Every quarter-hour shift starting or ending from midnight to 05:00, on the switch day
    # and (overnight) the night before: never end before start, never an empty occurrence,
    # never longer than its wall-clock length plus an hour (a fall-back fold).
    walls = [time(h, m) for h in range(5) for m in (0, 15, 30, 45)]
    for day in (switch_day - timedelta(days=1), switch_day):
        for start in walls if day == switch_day else [time(22, 0), time(23, 45)]:
            for end in walls:
                s = WeeklyShift(uuid.uuid4(), SCHEDULE, day.isoweekday(), start, end)
                got = occurrences([span(s)], tz, day, day)
                length = (end.hour * 60 + end.minute) - (start.hour * 60 + start.minute)
                length += 1440 if length <= 0 else 0
                assert all(o.start < o.end and 0 < o.scheduled_minutes <= length + 60 for o in got), (day, s)
                # left out only when it lies wholly in the gap (both ends at the change)
                end_day = day + timedelta(days=1) if end <= start else day
                empty = local_to_utc(day, start, tz) == local_to_utc(end_day, end, tz)
                assert len(got) == (0 if empty else 1), (day, s)


def test_ambiguous_local_time_takes_the_first_occurrence() -> None:
    # 01:30 happens twice in New York on 2026-11-01; the first (EDT, -04:00) is used.
    assert local_to_utc(date(2026, 11, 1), time(1, 30), NY) == utc("2026-11-01T05:30:00")
    assert local_to_utc(date(2026, 10, 25), time(1, 30), LONDON) == utc("2026-10-25T00:30:00")


def test_same_pattern_in_two_zones_gives_different_instants_same_dates() -> None:
    # The employee's zone may differ from the tenant's: the caller passes the zone.
    monday = shift(1, "09:00", "17:00")
    in_ny = occurrences([span(monday)], NY, date(2026, 3, 23), date(2026, 3, 29))
    in_london = occurrences([span(monday)], LONDON, date(2026, 3, 23), date(2026, 3, 29))
    assert in_ny[0].shift_date == in_london[0].shift_date == date(2026, 3, 23)
    assert in_ny[0].start == utc("2026-03-23T13:00:00")  # EDT already
    assert in_london[0].start == utc("2026-03-23T09:00:00")  # still GMT
    assert in_ny[0].start - in_london[0].start == in_ny[0].end - in_london[0].end


def test_results_are_sorted_by_start_across_schedules() -> None:
    a = span(shift(1, "13:00", "17:00"), shift(2, "08:00", "12:00"))
    b = ScheduleSpan(uuid.uuid4(), date(2026, 1, 1), date(2026, 12, 31), [shift(1, "08:00", "12:00")])
    got = occurrences([a, b], NY, date(2026, 6, 1), date(2026, 6, 2))
    assert [o.start for o in got] == sorted(o.start for o in got)
    assert len(got) == 3


def test_empty_when_range_outside_schedule() -> None:
    assert occurrences([span(shift(1, "09:00", "17:00"), end=date(2026, 1, 31))], NY,
                       date(2026, 2, 1), date(2026, 2, 28)) == []


def test_invalid_day_of_week_is_refused() -> None:
    with pytest.raises(ValueError):
        shift(0, "09:00", "17:00")


@pytest.mark.parametrize(
    ("existing", "new", "expected"),
    [
        (("1", "09:00", "17:00"), ("1", "16:00", "20:00"), True),
        (("1", "09:00", "17:00"), ("1", "17:00", "20:00"), False),  # touching
        (("1", "09:00", "17:00"), ("1", "06:00", "09:00"), False),  # touching before
        (("1", "09:00", "17:00"), ("1", "10:00", "11:00"), True),  # inside
        (("1", "09:00", "17:00"), ("2", "09:00", "17:00"), False),  # another day
        (("1", "22:00", "06:00"), ("2", "05:00", "08:00"), True),  # overnight into Tuesday
        (("1", "22:00", "06:00"), ("2", "06:00", "08:00"), False),
        (("7", "22:00", "06:00"), ("1", "05:59", "08:00"), True),  # Sunday wraps to Monday
        (("7", "22:00", "06:00"), ("1", "06:00", "08:00"), False),
        (("1", "05:00", "07:00"), ("7", "23:00", "05:30"), True),  # new one wraps
        (("3", "09:00", "09:00"), ("4", "08:00", "08:30"), True),  # 24h shift
        (("3", "09:00", "09:00"), ("4", "09:00", "10:00"), False),
    ],
)
def test_overlaps_table(existing: tuple[str, str, str], new: tuple[str, str, str], expected: bool) -> None:
    a = shift(int(existing[0]), existing[1], existing[2])
    b = shift(int(new[0]), new[1], new[2])
    assert overlaps([a], b) is expected
    assert overlaps([b], a) is expected


def test_overlaps_skips_the_shift_itself_and_empty_pattern() -> None:
    a = shift(1, "09:00", "17:00")
    assert overlaps([a], a) is False
    assert overlaps([], a) is False


def _minutes_of(s: WeeklyShift) -> set[int]:
    """Brute force: every minute of the week the shift covers (reference for `overlaps`)."""
    start = (s.day_of_week - 1) * 1440 + s.start_time.hour * 60 + s.start_time.minute
    end_minute = s.end_time.hour * 60 + s.end_time.minute
    length = end_minute - (s.start_time.hour * 60 + s.start_time.minute)
    if length <= 0:
        length += 1440
    return {(start + m) % 10080 for m in range(length)}


shifts_st = st.builds(
    lambda d, sh, sm, eh, em: shift(d, f"{sh:02d}:{sm:02d}", f"{eh:02d}:{em:02d}"),
    st.integers(1, 7), st.integers(0, 23), st.sampled_from([0, 15, 30, 45]),
    st.integers(0, 23), st.sampled_from([0, 15, 30, 45]),
)


@given(st.lists(shifts_st, max_size=4), shifts_st)
def test_overlaps_matches_brute_force(existing: list[WeeklyShift], new: WeeklyShift) -> None:
    expected = any(_minutes_of(s) & _minutes_of(new) for s in existing)
    assert overlaps(existing, new) is expected
