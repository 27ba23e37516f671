"""A clock_in left open with no shift is flagged when the next clock_in arrives, however long
after (contract section 5: missed_punch "when the next clock_in arrives")."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from tests.conftest import Api, TenantFixture
from tests.punches.test_two_statement_write import moved, outcomes
from unifocus.timeexceptions.engine import opened_before_needed
from unifocus.timeexceptions.pairing import PunchFact


async def punch(api: Api, t: TenantFixture, kind: str, ts: str) -> dict:
    r = await api.req("POST", "/api/punches", t.employee,
                      json={"employeeId": str(t.employee_id), "type": kind, "timestamp": ts})
    assert r.status_code == 201, r.text
    return r.json()


def kinds(answer: dict) -> list[tuple[str, str | None, str | None]]:
    return sorted((e["type"], e["punchId"], e["details"].get("reason")) for e in answer["exceptions"])


async def test_the_next_clock_in_days_later_flags_the_one_left_open(api: Api, tenant_a: TenantFixture) -> None:
    """No schedule: Monday's clock_in is never closed. Friday's clock_in (four days on, beyond
    the 48 h of facts an evaluation reads around a punch) answers with the missed punch of
    Monday's, beside its own unscheduled punch; the next one flags Friday's, and Monday's is
    not raised twice."""
    monday = await punch(api, tenant_a, "clock_in", "2026-03-02T09:00:00-05:00")
    before = outcomes()
    assert kinds(monday) == [("unscheduled_punch", monday["id"], "no occurrence starts within the early clock-in "
                                                                  "window or is in progress")]
    friday = await punch(api, tenant_a, "clock_in", "2026-03-06T09:00:00-05:00")
    assert [(k, p, r) for k, p, r in kinds(friday) if k == "missed_punch"] == [
        ("missed_punch", monday["id"], "clock_in_while_open")]
    [missed] = [e for e in friday["exceptions"] if e["type"] == "missed_punch"]
    assert missed["details"]["nextClockIn"] == "2026-03-06T14:00:00Z" and missed["shiftId"] is None
    # one more read, still the two-statement write
    assert moved(before) == {"written": 1}

    later = await punch(api, tenant_a, "clock_in", "2026-03-07T20:00:00-05:00")  # 35 h on
    assert [(k, p, r) for k, p, r in kinds(later) if k == "missed_punch"] == [
        ("missed_punch", friday["id"], "clock_in_while_open")]
    listed = (await api.req("GET", f"/api/exceptions?employeeId={tenant_a.employee_id}&type=missed_punch",
                            tenant_a.manager)).json()["items"]
    assert sorted(e["punchId"] for e in listed) == sorted([monday["id"], friday["id"]])


async def test_a_closed_session_before_the_window_is_not_flagged(api: Api, tenant_a: TenantFixture) -> None:
    await punch(api, tenant_a, "clock_in", "2026-03-02T09:00:00-05:00")
    await punch(api, tenant_a, "clock_out", "2026-03-02T17:00:00-05:00")
    friday = await punch(api, tenant_a, "clock_in", "2026-03-06T09:00:00-05:00")
    assert [k for k, _, _ in kinds(friday)] == ["unscheduled_punch"]


def test_a_clock_that_punched_within_two_days_needs_no_read_before_the_window() -> None:
    """The extra read happens only when the window's first
    clock_in/clock_out is a clock_in in the zone: not for an employee who punched in the two
    days before, as on every working day."""
    new_in = datetime(2026, 3, 6, 14, tzinfo=UTC)
    zone_start = new_in - timedelta(hours=24)

    def data(*punches: tuple[str, datetime]) -> dict:
        return {"punches": [["00000000-0000-0000-0000-000000000001", kind, ts.isoformat()] for kind, ts in punches]}

    fact = PunchFact(uuid.uuid4(), "clock_in", new_in)
    yesterday = [("clock_in", new_in - timedelta(hours=24)), ("clock_out", new_in - timedelta(hours=16))]
    assert not opened_before_needed(data(*yesterday, ("clock_in", new_in - timedelta(hours=48))), zone_start, fact)
    assert not opened_before_needed(data(("clock_out", new_in - timedelta(hours=40))), zone_start, fact)
    assert opened_before_needed(data(), zone_start, fact)  # nothing in the window: Monday's may be open
    assert opened_before_needed(data(("break_start", new_in - timedelta(hours=40))), zone_start, fact)
    assert not opened_before_needed(data(), zone_start, PunchFact(uuid.uuid4(), "clock_out", new_in))
