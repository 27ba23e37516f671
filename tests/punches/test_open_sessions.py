"""A clock_in left open with no shift is flagged when the next clock_in arrives, however long
after (contract section 5: missed_punch "when the next clock_in arrives")."""

from __future__ import annotations

from tests.conftest import Api, TenantFixture


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
    assert kinds(monday) == [("unscheduled_punch", monday["id"], "no occurrence starts within the early clock-in "
                                                                  "window or is in progress")]
    friday = await punch(api, tenant_a, "clock_in", "2026-03-06T09:00:00-05:00")
    assert [(k, p, r) for k, p, r in kinds(friday) if k == "missed_punch"] == [
        ("missed_punch", monday["id"], "clock_in_while_open")]
    [missed] = [e for e in friday["exceptions"] if e["type"] == "missed_punch"]
    assert missed["details"]["nextClockIn"] == "2026-03-06T14:00:00Z" and missed["shiftId"] is None

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
