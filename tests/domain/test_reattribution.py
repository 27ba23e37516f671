"""`Evaluation.reattributed`: the zone's stored punches whose stored attribution is not the
pairing's, compared in Python from the facts read (no database here: contexts as
`unifocus_punch_context` answers them, migration 0015's `attributions` included)."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from unifocus.timeexceptions import engine
from unifocus.timeexceptions.pairing import PunchFact

TENANT, EMPLOYEE, SCHEDULE = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
MORNING, AFTERNOON, TUESDAY = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
MONDAY = date(2026, 6, 1)


def ts(hhmm: str, day: date = MONDAY) -> datetime:
    return datetime.fromisoformat(f"{day.isoformat()}T{hhmm}:00+00:00")


def context(stored: list[tuple[uuid.UUID, str, datetime, uuid.UUID | None, date | None]]) -> dict[str, Any]:
    """A context with Monday 09:00-13:00 and 13:30-17:30 (UTC) and a Tuesday 09:00-17:00,
    and these stored punches (id, type, instant, stored shift, stored date)."""
    shifts = [[str(SCHEDULE), "2026-01-01", "2026-12-31", str(MORNING), 1, "09:00:00", "13:00:00"],
              [str(SCHEDULE), "2026-01-01", "2026-12-31", str(AFTERNOON), 1, "13:30:00", "17:30:00"],
              [str(SCHEDULE), "2026-01-01", "2026-12-31", str(TUESDAY), 2, "09:00:00", "17:00:00"]]
    return {"timezone": "UTC", "policy": None, "now": ts("23:00").isoformat(), "shifts": shifts, "exceptions": [],
            "punches": [[str(i), kind, at.isoformat()] for i, kind, at, _, _ in stored],
            "attributions": [[str(i), str(s) if s else None, d.isoformat() if d else None]
                             for i, _, _, s, d in stored]}


def evaluate(stored: list[Any], at: datetime, extra: PunchFact | None = None) -> engine.Evaluation:
    return engine.evaluate_context(context(stored), TENANT, EMPLOYEE, at - engine.PUNCH_ZONE,
                                   at + engine.PUNCH_ZONE, extra=extra)


def test_a_late_clock_in_moves_the_clock_out_it_opened_the_session_of() -> None:
    out = uuid.uuid4()
    stored = [(out, "clock_out", ts("13:20"), AFTERNOON, MONDAY)]  # nearest the 13:30 shift, alone
    new = PunchFact(uuid.uuid4(), "clock_in", ts("08:55"))
    ev = evaluate(stored, new.timestamp, extra=new)
    assert ev.reattributed == [engine.Reattribution(out, (AFTERNOON, MONDAY), (MORNING, MONDAY))]
    # the new punch itself is attributed by its insert, never listed
    assert engine.attribution(ev.occurrence_of(new.id)) == (MORNING, MONDAY)
    # once stored as the pairing says, nothing is left to change
    settled = [(out, "clock_out", ts("13:20"), MORNING, MONDAY), (new.id, "clock_in", ts("08:55"), MORNING, MONDAY)]
    assert evaluate(settled, new.timestamp).reattributed == []


def test_only_the_zone_is_reattributed() -> None:
    """A punch outside the zone (but inside the read window) stored with another attribution
    is left to an evaluation whose zone holds it: edge effects never write."""
    tuesday = MONDAY + timedelta(days=1)
    far = uuid.uuid4()
    stored = [(far, "clock_in", ts("09:00", tuesday), None, None)]  # stored unattributed
    assert evaluate(stored, ts("06:00")).reattributed == []  # 27 h before it: in the window, not the zone
    [change] = evaluate(stored, ts("08:00", tuesday)).reattributed
    assert change == engine.Reattribution(far, (None, None), (TUESDAY, tuesday))


DAY = [("clock_in", "08:55"), ("break_start", "11:00"), ("break_end", "11:20"), ("clock_out", "13:20"),
       ("clock_in", "13:28"), ("break_start", "15:00"), ("clock_out", "17:35")]


@settings(max_examples=50, deadline=None)
@given(st.permutations(range(len(DAY))))
def test_any_arrival_order_ends_as_the_in_order_attribution(order: list[int]) -> None:
    """Punches recorded in any order, each attributed at its insert and the others
    re-attributed as its evaluation says, end stored exactly as the punches sent in order."""
    ids = [uuid.uuid4() for _ in DAY]
    stored: dict[int, tuple[uuid.UUID | None, date | None]] = {}

    def row(n: int) -> tuple[Any, ...]:
        return (ids[n], DAY[n][0], ts(DAY[n][1]), *stored[n])

    def arrive(n: int) -> None:
        new = PunchFact(ids[n], DAY[n][0], ts(DAY[n][1]))
        ev = evaluate([row(m) for m in stored], new.timestamp, extra=new)
        for change in ev.reattributed:
            stored[ids.index(change.punch_id)] = change.after
        stored[n] = engine.attribution(ev.occurrence_of(new.id))

    for n in range(len(DAY)):
        arrive(n)
    in_order = dict(stored)
    assert [s for s, _ in in_order.values()] == [MORNING] * 4 + [AFTERNOON] * 3
    stored.clear()
    for n in order:
        arrive(n)
    assert stored == in_order
