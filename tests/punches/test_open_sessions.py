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


async def test_a_session_left_open_after_a_break_is_flagged_and_a_void_withdraws_it(
    api: Api, tenant_a: TenantFixture
) -> None:
    """Breaks neither open nor close a session: Monday's clock_in, break and return, never
    clocked out, is revealed by Friday's clock_in. Voiding Friday's clock_in takes the cause
    away: the missed punch is withdrawn."""
    monday = await punch(api, tenant_a, "clock_in", "2026-03-02T09:00:00-05:00")
    await punch(api, tenant_a, "break_start", "2026-03-02T12:00:00-05:00")
    await punch(api, tenant_a, "break_end", "2026-03-02T12:30:00-05:00")
    friday = await punch(api, tenant_a, "clock_in", "2026-03-06T09:00:00-05:00")
    [missed] = [e for e in friday["exceptions"] if e["type"] == "missed_punch"]
    assert missed["punchId"] == monday["id"] and missed["details"]["reason"] == "clock_in_while_open"
    r = await api.req("DELETE", f"/api/punches/{friday['id']}?reason=wrong%20badge", tenant_a.manager)
    assert r.status_code == 204
    got = (await api.req("GET", f"/api/exceptions/{missed['id']}", tenant_a.manager)).json()
    assert got["status"] == "withdrawn" and got["note"] == "cause removed"


def test_only_the_first_clock_in_after_two_quiet_days_reads_before_the_window() -> None:
    """The extra read happens only when the punch being recorded is the window's first
    clock_in or clock_out, and a clock_in: not on an ordinary working day, when yesterday's
    clock_in and clock_out are in the window (even inside the zone), nor for a clock_out."""
    new_in = datetime(2026, 3, 6, 14, tzinfo=UTC)
    zone = (new_in - timedelta(hours=24), new_in + timedelta(hours=24))

    def data(*punches: tuple[str, datetime]) -> dict:
        return {"punches": [["00000000-0000-0000-0000-000000000001", kind, ts.isoformat()] for kind, ts in punches]}

    fact = PunchFact(uuid.uuid4(), "clock_in", new_in)
    yesterday = [("clock_in", new_in - timedelta(hours=23)), ("clock_out", new_in - timedelta(hours=15))]
    assert not opened_before_needed(data(*yesterday), *zone, fact)  # yesterday's clock_in is first
    assert not opened_before_needed(data(("clock_out", new_in - timedelta(hours=40))), *zone, fact)
    assert opened_before_needed(data(), *zone, fact)  # nothing in the window: Monday's may be open
    assert opened_before_needed(data(("break_start", new_in - timedelta(hours=40))), *zone, fact)
    assert not opened_before_needed(data(), *zone, PunchFact(uuid.uuid4(), "clock_out", new_in))
    # an evaluation with no punch of its own (a void, the sweep): the first clock_in of the zone
    assert opened_before_needed(data(*yesterday), *zone)
    assert not opened_before_needed(data(("clock_in", zone[1])), *zone)  # after the zone
