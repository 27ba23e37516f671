"""Exception rules: every type on both sides of its boundary, keys, voids, time, DST, zones."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unifocus.schedules.occurrences import Occurrence, ScheduleSpan, WeeklyShift, occurrences
from unifocus.timeexceptions.pairing import attribute, pair_punches
from unifocus.timeexceptions.policy import DEFAULT_POLICY, Policy
from unifocus.timeexceptions.rules import Finding, PunchFact, evaluate

UTCZ = ZoneInfo("UTC")
NY = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")
MONDAY = date(2026, 6, 1)


def weekly(dow: int, start: str, end: str) -> WeeklyShift:
    return WeeklyShift(uuid.uuid4(), uuid.uuid4(), dow, time.fromisoformat(start), time.fromisoformat(end))


def occs_of(tz: ZoneInfo, first: date, last: date, *shifts: WeeklyShift) -> list[Occurrence]:
    return occurrences([ScheduleSpan(uuid.uuid4(), first, last, list(shifts))], tz, first, last)


NINE_TO_FIVE = weekly(1, "09:00", "17:00")
OCC = occs_of(UTCZ, MONDAY, MONDAY, NINE_TO_FIVE)[0]  # 2026-06-01 09:00Z - 17:00Z, 480 min


def at(minutes: int, occ: Occurrence = OCC) -> datetime:
    """An instant `minutes` after the occurrence's start (negative: before)."""
    return occ.start + timedelta(minutes=minutes)


def p(kind: str, minutes: int, occ: Occurrence = OCC, voided: bool = False) -> PunchFact:
    return PunchFact(uuid.uuid4(), kind, at(minutes, occ), voided)


def run(punches: list[PunchFact], now_min: int = 510, occs: list[Occurrence] | None = None,
        policy: Policy = DEFAULT_POLICY) -> list[Finding]:
    # Default `now`: 30 min after the end, before any missedPunchAfter deadline.
    return evaluate(punches, [OCC] if occs is None else occs, policy, at(now_min))


def kinds(findings: list[Finding]) -> set[str]:
    return {f.type for f in findings}


def one(findings: list[Finding], kind: str) -> Finding:
    (found,) = [f for f in findings if f.type == kind]
    return found


IN, OUT, BS, BE = "clock_in", "clock_out", "break_start", "break_end"
FULL_DAY = [(IN, 0), (OUT, 480)]

BOUNDARIES = [
    # (type, punches as (kind, minutes from start), now in minutes from start, raised?)
    ("late_arrival", [(IN, 5), (OUT, 480)], 510, False),  # exactly at grace
    ("late_arrival", [(IN, 6), (OUT, 480)], 510, True),
    ("early_departure", [(IN, 0), (OUT, 475)], 510, False),
    ("early_departure", [(IN, 0), (OUT, 474)], 510, True),
    ("unscheduled_punch", [(IN, -60), (OUT, 480)], 510, False),  # exactly the early window
    ("unscheduled_punch", [(IN, -61), (OUT, 480)], 510, True),
    ("unscheduled_punch", [(IN, 479), (OUT, 480)], 510, False),  # still in progress
    ("unscheduled_punch", [(IN, 480), (OUT, 500)], 510, True),  # at the end: no longer
    ("long_break", [(IN, 0), (BS, 120), (BE, 180), (OUT, 480)], 510, False),
    ("long_break", [(IN, 0), (BS, 120), (BE, 181), (OUT, 480)], 510, True),
    ("overtime", [(IN, 0), (OUT, 495)], 510, False),  # exactly the threshold
    ("overtime", [(IN, 0), (OUT, 496)], 510, True),
    ("overtime", [(IN, -16), (OUT, 480)], 510, True),  # early start counts as work
    ("overtime", [(IN, -30), (BS, 100), (BE, 115), (OUT, 480)], 510, False),  # breaks deducted
    ("absence", [], 539, False),
    ("absence", [], 540, True),  # missedPunchAfter minutes after the end, inclusive
    ("absence", [(OUT, 480)], 540, True),  # a clock_out is not a clock_in
    ("missed_punch", [(IN, 0)], 539, False),
    ("missed_punch", [(IN, 0)], 540, True),
    ("missed_punch", [(IN, 0), (BS, 60)], 179, False),  # break open: due max + after later
    ("missed_punch", [(IN, 0), (BS, 60)], 180, True),
    ("missed_punch", [(IN, 0), (OUT, 480)], 10_000, False),
    ("missed_punch", [(OUT, 480)], 510, True),  # clock_out with nothing open
    ("missed_punch", [(IN, 0), (BE, 100), (OUT, 480)], 510, True),  # break_end with no break
    ("missed_punch", [(BS, 50), (BE, 100)], 110, True),  # break outside any clock_in
    ("missed_punch", [(IN, 0), (IN, 100), (OUT, 480)], 510, True),  # next clock_in while open
    ("missed_punch", [(IN, 0), (BS, 400), (OUT, 480)], 510, True),  # clock_out during a break
]


@pytest.mark.parametrize(("kind", "spec", "now_min", "raised"), BOUNDARIES)
def test_rule_boundaries(kind: str, spec: list[tuple[str, int]], now_min: int, raised: bool) -> None:
    findings = run([p(k, m) for k, m in spec], now_min=now_min)
    assert (kind in kinds(findings)) is raised, findings


def test_a_clean_day_raises_nothing_even_much_later() -> None:
    punches = [p(IN, -10), p(BS, 200), p(BE, 230), p(OUT, 482)]
    assert run(punches, now_min=100_000) == []


def test_late_arrival_details_and_key() -> None:
    clock_in = p(IN, 6)
    late = one(run([clock_in, p(OUT, 480)]), "late_arrival")
    assert late.dedupe_key == f"occ:{NINE_TO_FIVE.id}:2026-06-01"
    assert (late.shift_id, late.shift_date, late.punch_id) == (NINE_TO_FIVE.id, MONDAY, clock_in.id)
    assert late.details == {
        "scheduledStart": "2026-06-01T09:00:00Z",
        "scheduledEnd": "2026-06-01T17:00:00Z",
        "minutesLate": 6,
        "lateGraceMinutes": 5,
        "clockIn": "2026-06-01T09:06:00Z",
    }
    assert late.time_based is False


def test_partial_minutes_round_the_late_figure_up() -> None:
    clock_in = PunchFact(uuid.uuid4(), IN, at(5) + timedelta(seconds=1))
    assert one(run([clock_in, p(OUT, 480)]), "late_arrival").details["minutesLate"] == 6


def test_early_departure_and_overtime_details() -> None:
    early = one(run([p(IN, 0), p(OUT, 400)]), "early_departure")
    assert early.details["minutesEarly"] == 80
    assert early.details["clockOut"] == "2026-06-01T15:40:00Z"
    over = one(run([p(IN, -20), p(OUT, 500)], now_min=600), "overtime")
    assert (over.details["workedMinutes"], over.details["scheduledMinutes"]) == (520, 480)
    assert over.details["overtimeMinutes"] == 40


def test_custom_policy_moves_the_boundaries() -> None:
    strict = Policy.from_json({"lateGraceMinutes": 0, "maxBreakMinutes": 30})
    assert "late_arrival" in kinds(run([p(IN, 1), p(OUT, 480)], policy=strict))
    assert "late_arrival" not in kinds(run([p(IN, 0), p(OUT, 480)], policy=strict))
    assert "long_break" in kinds(run([p(IN, 0), p(BS, 60), p(BE, 91), p(OUT, 480)], policy=strict))


def test_absence_and_missed_are_time_based_and_appear_with_now() -> None:
    assert run([], now_min=539) == []
    (absence,) = run([], now_min=540)
    assert absence.time_based and absence.punch_id is None
    assert absence.details["deadline"] == "2026-06-01T18:00:00Z"
    clock_in = p(IN, 0)
    (missed,) = run([clock_in], now_min=540)
    assert missed.type == "missed_punch" and missed.time_based
    assert missed.dedupe_key == OCC.key and missed.punch_id == clock_in.id
    assert missed.details["reason"] == "still_open_after_end"


def test_a_late_clock_out_replaces_the_time_based_missed_punch_by_overtime() -> None:
    clock_in = p(IN, 0)
    assert kinds(run([clock_in], now_min=600)) == {"missed_punch"}
    assert kinds(run([clock_in, p(OUT, 590)], now_min=600)) == {"overtime"}


def test_stray_punch_keys_follow_the_occurrence_else_the_punch() -> None:
    near = p(OUT, 480 + 59)  # within missedPunchAfter of the end: the occurrence's
    far = p(OUT, 480 + 60)
    assert one(run([near], now_min=539), "missed_punch").dedupe_key == OCC.key
    missed = one(run([far], now_min=539), "missed_punch")
    assert missed.dedupe_key == f"punch:{far.id}" and missed.shift_id is None


def test_unscheduled_findings_are_punch_bound() -> None:
    clock_in, brk = p(IN, -300), p(BS, -280)
    findings = run([clock_in, brk, p(BE, -200), p(OUT, -100)])
    assert one(findings, "unscheduled_punch").dedupe_key == f"punch:{clock_in.id}"
    assert one(findings, "long_break").dedupe_key == f"punch:{brk.id}"
    # a break left open in an unscheduled interval: due after maxBreak + missedPunchAfter
    assert run([clock_in, brk], now_min=-280 + 119) == [one(findings, "unscheduled_punch")]
    overdue = one(run([clock_in, brk], now_min=-280 + 120), "missed_punch")
    assert overdue.dedupe_key == f"punch:{brk.id}" and overdue.time_based


def test_at_most_once_per_occurrence_and_type() -> None:
    punches = [p(IN, 0), p(BS, 60), p(BE, 130), p(BS, 200), p(BE, 270), p(BE, 300), p(OUT, 480)]
    findings = run(punches)
    assert sorted(f.type for f in findings) == ["long_break", "missed_punch"]
    assert all(f.dedupe_key == OCC.key for f in findings)


def test_punch_decided_cause_wins_over_time_based_for_the_same_key() -> None:
    findings = run([p(IN, 0), p(BE, 100)], now_min=600)
    missed = one(findings, "missed_punch")
    assert missed.time_based is False and missed.details["reason"] == "break_end_with_nothing_open"


def test_evaluate_is_idempotent_and_order_independent() -> None:
    punches = [p(IN, 7), p(BS, 100), p(BE, 170), p(IN, 200), p(OUT, 300), p(OUT, 320)]
    first = run(punches, now_min=600)
    shuffled = punches[:]
    random.Random(4).shuffle(shuffled)
    assert run(shuffled, now_min=600) == first
    assert [f.dedupe_key for f in run(punches, now_min=600)] == [f.dedupe_key for f in first]
    assert len({(f.type, f.dedupe_key) for f in first}) == len(first)


def test_voiding_the_late_clock_in_removes_the_finding() -> None:
    late = p(IN, 20)
    assert "late_arrival" in kinds(run([late, p(OUT, 480)]))
    voided = PunchFact(late.id, late.type, late.timestamp, voided=True)
    assert kinds(run([voided, p(IN, 2), p(OUT, 480)])) == set()


def test_voiding_a_stray_clock_out_removes_the_missed_punch() -> None:
    stray = p(OUT, 100)
    assert "missed_punch" in kinds(run([p(IN, 0), p(OUT, 50), stray, p(IN, 60), p(OUT, 480)]))
    stray_void = PunchFact(stray.id, OUT, stray.timestamp, voided=True)
    assert "missed_punch" not in kinds(run([p(IN, 0), p(OUT, 50), stray_void, p(IN, 60), p(OUT, 480)]))


def test_a_pause_is_not_an_early_departure_once_back() -> None:
    morning = [p(IN, 0), p(OUT, 180)]
    assert "early_departure" in kinds(run(morning, now_min=185))
    assert kinds(run([*morning, p(IN, 210)], now_min=215)) == set()
    assert kinds(run([*morning, p(IN, 210), p(OUT, 480)])) == set()


def test_a_pause_then_no_clock_out_is_not_an_early_departure() -> None:
    # 09-17: in 09:00, out 12:00 (a pause), back at 12:30 and never clocked out. Only the
    # missing clock_out is flagged, before and after the next day's clock_in arrives.
    day = [p(IN, 0), p(OUT, 180), p(IN, 210)]
    next_day = OCC.start + timedelta(days=1)
    sweep = evaluate(day, [OCC], DEFAULT_POLICY, next_day)
    assert kinds(sweep) == {"missed_punch"}
    abandoned = evaluate([*day, PunchFact(uuid.uuid4(), IN, next_day - timedelta(minutes=5))], [OCC],
                         DEFAULT_POLICY, next_day)
    assert "early_departure" not in kinds(abandoned)
    assert {f.dedupe_key for f in abandoned if f.type == "missed_punch"} == {OCC.key}
    # closing the last session decides it again on the real last clock_out
    closed = run([*day, p(OUT, 400)])
    assert one(closed, "early_departure").details["minutesEarly"] == 80


def test_punches_of_a_session_inherit_its_occurrence() -> None:
    second = weekly(1, "17:30", "21:00")
    occs = occs_of(UTCZ, MONDAY, MONDAY, NINE_TO_FIVE, second)
    clock_out = p(OUT, 500)  # 17:20: nearer the second shift's start, but it closes the first
    pairing = pair_punches([p(IN, 0), clock_out], occs, DEFAULT_POLICY)
    assert pairing.occurrence_of[clock_out.id] == OCC
    findings = evaluate([p(IN, 0), clock_out], occs, DEFAULT_POLICY, at(520))
    # its 20 extra minutes are overtime of the first shift; the second one is untouched
    assert kinds(findings) == {"overtime"} and one(findings, "overtime").dedupe_key == OCC.key


def test_attribute_chooses_the_nearest_start_for_clock_in() -> None:
    morning, afternoon = weekly(1, "09:00", "13:00"), weekly(1, "13:00", "17:00")
    occs = occs_of(UTCZ, MONDAY, MONDAY, morning, afternoon)
    noon45 = datetime(2026, 6, 1, 12, 45, tzinfo=UTC)
    assert attribute(noon45, IN, occs, DEFAULT_POLICY) == occs[1]
    assert attribute(noon45, OUT, occs, DEFAULT_POLICY) == occs[0]  # in progress
    ten = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
    assert attribute(ten, IN, occs, DEFAULT_POLICY) == occs[0]
    assert attribute(datetime(2026, 6, 1, 7, 59, tzinfo=UTC), IN, occs, DEFAULT_POLICY) is None
    assert attribute(datetime(2026, 6, 1, 18, 0, tzinfo=UTC), OUT, occs, DEFAULT_POLICY) is None


def ny_night(night_of: date, tz: ZoneInfo = NY) -> Occurrence:
    shift = weekly(night_of.isoweekday(), "22:00", "06:00")
    return occs_of(tz, night_of, night_of, shift)[0]


def local(tz: ZoneInfo, day: date, hhmm: str) -> datetime:
    return datetime.combine(day, time.fromisoformat(hhmm), tzinfo=tz).astimezone(UTC)


@pytest.mark.parametrize(
    ("tz", "night_of", "minutes"),
    [(NY, date(2026, 3, 7), 420), (NY, date(2026, 10, 31), 540),
     (LONDON, date(2026, 3, 28), 420), (LONDON, date(2026, 10, 24), 540)],
)
def test_dst_nights_worked_to_the_end_raise_nothing(tz: ZoneInfo, night_of: date, minutes: int) -> None:
    occ = ny_night(night_of, tz)
    assert occ.scheduled_minutes == minutes
    morning = night_of + timedelta(days=1)
    punches = [PunchFact(uuid.uuid4(), IN, local(tz, night_of, "22:00")),
               PunchFact(uuid.uuid4(), OUT, local(tz, morning, "06:00"))]
    assert evaluate(punches, [occ], DEFAULT_POLICY, local(tz, morning, "12:00")) == []
    # one real minute past the early-departure grace, measured in real time across the switch
    early = [punches[0], PunchFact(uuid.uuid4(), OUT, occ.end - timedelta(minutes=6))]
    found = evaluate(early, [occ], DEFAULT_POLICY, local(tz, morning, "12:00"))
    assert one(found, "early_departure").details["minutesEarly"] == 6
    assert one(found, "early_departure").dedupe_key == f"occ:{occ.shift_id}:{night_of}"


def test_spring_forward_overtime_counts_real_minutes() -> None:
    occ = ny_night(date(2026, 3, 7))  # 420 real minutes
    punches = [PunchFact(uuid.uuid4(), IN, local(NY, date(2026, 3, 7), "22:00")),
               PunchFact(uuid.uuid4(), OUT, local(NY, date(2026, 3, 8), "06:16"))]
    over = one(evaluate(punches, [occ], DEFAULT_POLICY, local(NY, date(2026, 3, 8), "07:00")), "overtime")
    assert over.details["workedMinutes"] == 436 and over.details["overtimeMinutes"] == 16


def test_a_shift_starting_in_the_spring_forward_gap() -> None:
    spring = date(2026, 3, 8)  # New York: 02:00 EST -> 03:00 EDT
    short = occs_of(NY, spring, spring, weekly(7, "02:30", "04:00"))
    # it starts at the switch: a clock_in at 03:00 EDT is on time, worked to 04:00 is all of it
    punches = [PunchFact(uuid.uuid4(), IN, local(NY, spring, "03:00")),
               PunchFact(uuid.uuid4(), OUT, local(NY, spring, "04:00"))]
    assert evaluate(punches, short, DEFAULT_POLICY, local(NY, spring, "12:00")) == []
    # wholly in the gap: no occurrence, so no absence once its deadline would have passed
    assert occs_of(NY, spring, spring, weekly(7, "02:00", "03:00")) == []
    assert occs_of(NY, spring, spring, weekly(7, "02:30", "03:00")) == []


def test_employee_zone_differs_from_tenant_zone() -> None:
    # Same pattern, same punch instant: on time in London, unscheduled in New York.
    monday = weekly(1, "09:00", "17:00")
    punch = PunchFact(uuid.uuid4(), IN, datetime(2026, 6, 1, 8, 3, tzinfo=UTC))  # 09:03 BST
    london = occs_of(LONDON, MONDAY, MONDAY, monday)
    new_york = occs_of(NY, MONDAY, MONDAY, monday)
    now = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
    assert evaluate([punch], london, DEFAULT_POLICY, now) == []
    assert kinds(evaluate([punch], new_york, DEFAULT_POLICY, now)) == {"unscheduled_punch"}


def test_punch_fact_validates() -> None:
    with pytest.raises(ValueError):
        PunchFact(uuid.uuid4(), "lunch", at(0))
    with pytest.raises(ValueError):
        PunchFact(uuid.uuid4(), IN, datetime(2026, 6, 1, 9, 0))


def test_policy_json_round_trip_defaults_and_validation() -> None:
    assert Policy.from_json(None) == Policy() == Policy.from_json({})
    assert Policy().to_json() == {
        "lateGraceMinutes": 5, "earlyDepartureGraceMinutes": 5, "earlyClockInWindowMinutes": 60,
        "missedPunchAfterMinutes": 60, "maxBreakMinutes": 60, "overtimeThresholdMinutes": 15,
    }
    custom = Policy.from_json({"maxBreakMinutes": 45})
    assert custom.max_break_minutes == 45 and custom.late_grace_minutes == 5
    assert Policy.from_json(custom.to_json()) == custom
    assert custom.merged({"lateGraceMinutes": 0}).to_json()["lateGraceMinutes"] == 0
    for bad in ({"lateGrace": 5}, {"lateGraceMinutes": -1}, {"lateGraceMinutes": True},
                {"lateGraceMinutes": "5"}, {"lateGraceMinutes": 10**6}):
        with pytest.raises(ValueError):
            Policy.from_json(bad)


def test_a_shared_policy_never_admits_a_value_equal_to_a_valid_one() -> None:
    """Policies are shared between punches (checked once per distinct JSON). `true` and `1.0`
    equal `1` and hash like it, so a cache keyed on the values alone would hand them the
    Policy of `1`: each must stay an error after `1` was accepted, and `1` after them."""
    assert Policy.from_json({"lateGraceMinutes": 1}).late_grace_minutes == 1
    for bad in ({"lateGraceMinutes": True}, {"lateGraceMinutes": 1.0}, {"lateGraceMinutes": [1]}):
        with pytest.raises(ValueError):
            Policy.from_json(bad)
    shared = Policy.from_json({"lateGraceMinutes": 1})
    assert shared is Policy.from_json({"lateGraceMinutes": 1})
    assert type(shared.late_grace_minutes) is int
    assert Policy.from_json({"lateGraceMinutes": 1}) != Policy.from_json({"lateGraceMinutes": 2})


punch_specs = st.lists(
    st.tuples(st.sampled_from([IN, OUT, BS, BE]), st.integers(-200, 800), st.booleans()), max_size=12
)


@settings(max_examples=300, deadline=None)
@given(punch_specs, st.integers(-200, 900), st.integers(0, 300))
def test_evaluate_is_deterministic_and_monotone_in_time(
    spec: list[tuple[str, int, bool]], now_min: int, later: int
) -> None:
    afternoon = weekly(1, "17:00", "22:00")
    occs = occs_of(UTCZ, MONDAY, MONDAY, NINE_TO_FIVE, afternoon)
    punches = [p(k, m, voided=v) for k, m, v in spec]
    first = run(punches, now_min, occs)
    assert run(list(reversed(punches)), now_min, occs) == first
    assert len({(f.type, f.dedupe_key) for f in first}) == len(first)
    assert all(f.dedupe_key.startswith(("occ:", "punch:")) for f in first)
    # with no new punches, time only adds findings (the sweep never withdraws)
    keys_then = {(f.type, f.dedupe_key) for f in first}
    assert keys_then <= {(f.type, f.dedupe_key) for f in run(punches, now_min + later, occs)}


def in_zone(f: Finding, occs: list[Occurrence], punches: list[PunchFact], zone: tuple[datetime, datetime]) -> bool:
    """`engine.Evaluation.in_zone`: what a caller passing `zone` keeps."""
    if f.shift_id is not None:
        occ = next(o for o in occs if (o.shift_id, o.shift_date) == (f.shift_id, f.shift_date))
        return zone[0] <= occ.start < zone[1]
    ts = next((x.timestamp for x in punches if x.id == f.punch_id), None)
    return ts is not None and zone[0] <= ts < zone[1]


week_specs = st.lists(
    st.tuples(st.sampled_from([IN, OUT, BS, BE]), st.integers(-1440, 6 * 1440), st.booleans()), max_size=16
)


@settings(max_examples=300, deadline=None)
@given(week_specs, st.integers(-1440, 7 * 1440), st.integers(0, 5 * 1440), st.integers(60, 3 * 1440))
def test_a_zone_skips_only_findings_the_caller_drops(
    spec: list[tuple[str, int, bool]], now_min: int, zone_from: int, zone_minutes: int
) -> None:
    """Evaluating with `zone` (the punch write's shortcut) keeps exactly the zone's findings
    that a whole-window evaluation gives, details included, over a week of day and night
    shifts."""
    night = weekly(3, "22:00", "06:00")
    occs = occs_of(UTCZ, MONDAY - timedelta(days=1), MONDAY + timedelta(days=7), NINE_TO_FIVE,
                   weekly(2, "09:00", "17:00"), weekly(3, "13:00", "21:00"), night, weekly(5, "06:00", "14:00"))
    punches = [p(k, m, voided=v) for k, m, v in spec]
    zone = (at(zone_from), at(zone_from + zone_minutes))
    whole = [f for f in evaluate(punches, occs, DEFAULT_POLICY, at(now_min)) if in_zone(f, occs, punches, zone)]
    zoned = [f for f in evaluate(punches, occs, DEFAULT_POLICY, at(now_min), zone=zone)
             if in_zone(f, occs, punches, zone)]
    assert zoned == whole


@pytest.mark.parametrize(("break_seconds", "minutes", "over"), [(3630, 61, 1), (3660, 61, 1), (5400, 90, 30)])
def test_long_break_details_agree_with_themselves(break_seconds: int, minutes: int, over: int) -> None:
    """A part minute counts, as in minutesLate: a 60.5-minute break is 61 minutes, 1 over the
    60 allowed (floored it read 60 against 60 and 1 over: no violation, to a manager)."""
    start = at(120)
    brk = PunchFact(uuid.uuid4(), BS, start)
    end = PunchFact(uuid.uuid4(), BE, start + timedelta(seconds=break_seconds))
    details = one(run([p(IN, 0), brk, end, p(OUT, 480)]), "long_break").details
    assert (details["breakMinutes"], details["maxBreakMinutes"], details["minutesOver"]) == (minutes, 60, over)
    assert details["breakMinutes"] - details["maxBreakMinutes"] == details["minutesOver"]
