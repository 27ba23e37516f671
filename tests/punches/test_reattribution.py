"""A punch's `shiftId`/`shiftDate` name the occurrence the engine's pairing attributes it to
now, not only when it was recorded (contract: punches, section 5).

A punch that arrives out of order (an offline device's upload) or a void can move other
punches into or out of a session: each write, void, batch item and sweep re-evaluates the
zone, and a stored attribution that differs from the pairing's is updated in the same
transaction, audited as the punch `updated` with its `shiftId`/`shiftDate` before and after.
The two-statement write cannot update other rows: such a punch takes the classic
transaction (counted as `out_of_order`), and stores exactly what the classic write stores."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from tests.conftest import Api, TenantFixture, make_settings, make_tenant
from tests.faults.support import running_app
from tests.punches.test_punches import MONDAY, punch
from tests.punches.test_two_statement_write import moved, outcomes
from unifocus.audit.verify import verify_url
from unifocus.db.pool import Database
from unifocus.settings import Settings
from unifocus.timeexceptions.sweep import sweep_employee

SUNDAY = "2026-03-01"


def at(hhmm: str, day: str = MONDAY) -> str:
    """A wall-clock time in the tenant's zone (America/New_York, EST in early March)."""
    return f"{day}T{hhmm}:00-05:00"


async def shifts(api: Api, t: TenantFixture, *pattern: tuple[int, str, str],
                 employee_id: uuid.UUID | None = None) -> dict[str, str]:
    """A March schedule of these (day, start, end) shifts; answers {shift id: start time}.
    Without a pattern: Monday 09:00-13:00 and 13:30-17:30."""
    pattern = pattern or ((1, "09:00", "13:00"), (1, "13:30", "17:30"))
    r = await api.req("POST", "/api/schedules", t.manager, json={
        "employeeId": str(employee_id or t.employee_id), "startDate": "2026-03-01", "endDate": "2026-03-31",
        "shifts": [{"dayOfWeek": d, "startTime": s, "endTime": e} for d, s, e in pattern]})
    assert r.status_code == 201, r.text
    return {s["id"]: s["startTime"] for s in r.json()["shifts"]}


def shift_named(names: dict[str, str], start: str) -> str:
    [shift_id] = [i for i, s in names.items() if s == start]
    return shift_id


async def attribution(api: Api, t: TenantFixture, punch_id: str) -> tuple[str | None, str | None]:
    got = (await api.req("GET", f"/api/punches/{punch_id}", t.manager)).json()
    return got["shiftId"], got["shiftDate"]


def updates(owner_sql: psycopg.Connection, tenant: uuid.UUID) -> list[tuple[Any, ...]]:
    """The tenant's `Punch updated` entries, oldest first: (punch, changes, employee, punch id)."""
    rows = owner_sql.execute(
        "SELECT entity_id::text, changes, employee_id::text, punch_id::text FROM audit_log WHERE tenant_id = %s "
        "AND entity = 'Punch' AND action = 'updated' ORDER BY created_at, chain, seq", (tenant,)).fetchall()
    return [tuple(r) for r in rows]


def moving(before: tuple[str | None, str | None], after: tuple[str | None, str | None]) -> dict[str, Any]:
    """An update's `changes`."""
    return {"before": {"shiftId": before[0], "shiftDate": before[1]},
            "after": {"shiftId": after[0], "shiftDate": after[1]}}


async def day_of(api: Api, t: TenantFixture, day: str, employee_id: uuid.UUID | None = None) -> dict[str, Any]:
    r = await api.req("GET", f"/api/timesheets?employeeId={employee_id or t.employee_id}&from={day}&to={day}",
                      t.manager)
    assert r.status_code == 200, r.text
    [only] = r.json()["days"]
    return dict(only)


async def test_a_late_clock_in_moves_its_session_and_voiding_it_moves_it_back(
    api: Api, tenant_a: TenantFixture, owner_sql: psycopg.Connection, owner_url: str
) -> None:
    """The contract's normal case: the clock_out (13:20, nearest the 13:30 shift) is uploaded
    before the clock_in (08:55) that opened the session. Once it arrives the pairing puts the
    clock_out in the 09:00 occurrence, and so do the stored punch, its audit trail and the
    timesheet; voiding the clock_in puts it back."""
    t = tenant_a
    names = await shifts(api, t)
    morning, afternoon = (shift_named(names, "09:00"), MONDAY), (shift_named(names, "13:30"), MONDAY)
    out = (await punch(api, t, "clock_out", at("13:20"))).json()
    assert (out["shiftId"], out["shiftDate"]) == afternoon
    assert [e["type"] for e in out["exceptions"]] == ["missed_punch"]

    before = outcomes()
    clock_in = await punch(api, t, "clock_in", at("08:55"))
    assert clock_in.status_code == 201, clock_in.text
    assert (clock_in.json()["shiftId"], clock_in.json()["shiftDate"]) == morning  # attributed at its insert
    assert moved(before) == {"out_of_order": 1}  # other rows updated: the classic transaction wrote it
    assert await attribution(api, t, out["id"]) == morning
    assert updates(owner_sql, t.id) == [(out["id"], moving(afternoon, morning), str(t.employee_id), out["id"])]
    # the timesheet counts the session (08:55-13:20) under the 09:00 occurrence, as the punches say
    day = await day_of(api, t, MONDAY)
    assert (day["workedMinutes"], day["scheduledMinutes"], day["overtimeMinutes"]) == (265, 480, 25)
    [overtime] = [e for e in day["exceptions"] if e["type"] == "overtime"]
    assert (overtime["shiftId"], overtime["shiftDate"], overtime["punchId"]) == (*morning, out["id"])

    void = await api.req("DELETE", f"/api/punches/{clock_in.json()['id']}?reason=wrong%20badge", t.manager)
    assert void.status_code == 204
    assert await attribution(api, t, out["id"]) == afternoon  # a stray again, nearest the 13:30 shift
    assert await attribution(api, t, clock_in.json()["id"]) == morning  # the voided punch keeps its own
    assert [u[:2] for u in updates(owner_sql, t.id)] == [
        (out["id"], moving(afternoon, morning)), (out["id"], moving(morning, afternoon))]
    day = await day_of(api, t, MONDAY)
    assert (day["workedMinutes"], day["overtimeMinutes"]) == (0, 0)
    assert "overtime" not in [e["type"] for e in day["exceptions"]]
    assert (await verify_url(owner_url, t.id)).ok


async def test_an_in_order_day_updates_no_punch(
    api: Api, tenant_a: TenantFixture, owner_sql: psycopg.Connection, owner_url: str, app_client: Any
) -> None:
    """Punches sent as they happen: each one's attribution depends only on the punches before
    it, so nothing is ever re-attributed, every punch is the two-statement write's, and the
    sweep afterwards changes nothing either."""
    t = tenant_a
    names = await shifts(api, t)
    day = [("clock_in", "08:55"), ("break_start", "11:00"), ("break_end", "11:20"), ("clock_out", "13:00"),
           ("clock_in", "13:28"), ("clock_out", "17:35")]
    before = outcomes()
    stored = [(await punch(api, t, kind, at(hhmm))).json() for kind, hhmm in day]
    assert moved(before) == {"written": len(day)}
    assert [names[p["shiftId"]] for p in stored] == ["09:00"] * 4 + ["13:30"] * 2
    db: Database = app_client[0].state.db
    await sweep_employee(db, t.id, t.employee_id, datetime(2026, 3, 3, 12, 0, tzinfo=UTC), 8)
    assert updates(owner_sql, t.id) == []
    assert [await attribution(api, t, p["id"]) for p in stored] == [(p["shiftId"], p["shiftDate"]) for p in stored]
    assert (await verify_url(owner_url, t.id)).ok


# Out of order, then a void: the break_start (13:20, nearest the 13:30 shift) joins the 08:55
# session when its clock_in arrives; the void of that clock_in sends it and the 13:25
# clock_out back to the 13:30 shift.
OUT_OF_ORDER = [("break_start", "13:20"), ("clock_in", "08:55"), ("clock_out", "13:25"), ("clock_out", "17:35"),
                ("clock_in", "13:28")]
VOIDED = 1  # the 08:55 clock_in


async def _out_of_order_day(api: Api, t: TenantFixture, owner_sql: psycopg.Connection,
                            owner_url: str) -> dict[str, Any]:
    """Run the day on `api`; answers what was stored, named by times and shift starts (ids
    differ between tenants)."""
    names = await shifts(api, t)
    sent = [(await punch(api, t, kind, at(hhmm))).json() for kind, hhmm in OUT_OF_ORDER]
    r = await api.req("DELETE", f"/api/punches/{sent[VOIDED]['id']}?reason=typo", t.manager)
    assert r.status_code == 204, r.text
    when = {p["id"]: p["timestamp"] for p in sent}

    def named(a: dict[str, Any] | None) -> tuple[str | None, str | None] | None:
        return None if a is None else (names.get(a["shiftId"]), a["shiftDate"])

    punches = owner_sql.execute(
        "SELECT type, ts, shift_id::text, shift_date::text, voided FROM punches WHERE tenant_id = %s ORDER BY ts",
        (t.id,)).fetchall()
    exceptions = owner_sql.execute(
        "SELECT x.type, x.status, x.shift_id::text, x.shift_date::text, p.ts FROM exceptions x "
        "LEFT JOIN punches p ON p.tenant_id = x.tenant_id AND p.id = x.punch_id WHERE x.tenant_id = %s "
        "ORDER BY x.type, p.ts, x.status", (t.id,)).fetchall()
    return {
        "punches": [(k, ts, names.get(s or ""), d, v) for k, ts, s, d, v in punches],
        "updates": [(when[i], named(c["before"]), named(c["after"])) for i, c, _, _ in updates(owner_sql, t.id)],
        "exceptions": [(k, st, names.get(s or ""), d, ts) for k, st, s, d, ts in exceptions],
        "audit ok": (await verify_url(owner_url, t.id)).ok,
    }


async def test_the_two_statement_and_the_classic_write_store_the_same(
    api: Api, owner_url: str, settings: Settings, owner_sql: psycopg.Connection,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    optimistic_tenant, classic_tenant = make_tenant(owner_url, settings), make_tenant(owner_url, settings)
    before = outcomes()
    two_statement = await _out_of_order_day(api, optimistic_tenant, owner_sql, owner_url)
    # the 17:35 clock_out's missed_punch withdrawn by the 13:28 clock_in, and the 08:55
    # clock_in's re-attribution of the break_start (no withdrawal): both took the transaction
    assert moved(before) == {"written": 3, "out_of_order": 2}
    classic = make_settings(owner_url, tmp_path_factory.mktemp("classic"), optimistic_punch_write=False)
    async with running_app(classic) as (_app, client):
        transaction = await _out_of_order_day(Api(client), classic_tenant, owner_sql, owner_url)
    assert two_statement == transaction
    assert two_statement["updates"] == [
        (f"{MONDAY}T18:20:00Z", ("13:30", MONDAY), ("09:00", MONDAY)),  # the clock_in arrives
        (f"{MONDAY}T18:20:00Z", ("09:00", MONDAY), ("13:30", MONDAY)),  # it is voided
        (f"{MONDAY}T18:25:00Z", ("09:00", MONDAY), ("13:30", MONDAY)),
    ]
    assert [(k, ts, s, v) for k, ts, s, _, v in two_statement["punches"]] == [
        (kind, datetime.fromisoformat(at(hhmm)), shift, kind == "clock_in" and hhmm == "08:55")
        for kind, hhmm, shift in (("clock_in", "08:55", "09:00"), ("break_start", "13:20", "13:30"),
                                  ("clock_out", "13:25", "13:30"), ("clock_in", "13:28", "13:30"),
                                  ("clock_out", "17:35", "13:30"))]
    assert two_statement["audit ok"]


# A Sunday night shift and a Monday morning one; a day's punches as they happened. Sent in
# reverse, the 06:30 clock_out arrives before the Sunday 21:55 clock_in that opened its
# session: it is first nearest the Monday shift, then moves to Sunday's occurrence (and date).
NIGHT_AND_MORNING = ((7, "22:00", "06:00"), (1, "07:00", "11:00"))
AS_IT_HAPPENED = [("clock_in", at("21:55", SUNDAY)), ("clock_out", at("06:30")), ("clock_in", at("06:58")),
                  ("break_start", at("09:00")), ("break_end", at("09:15")), ("clock_out", at("11:05"))]


async def test_a_batch_sent_in_reverse_ends_as_one_sent_in_order(
    api: Api, tenant_a: TenantFixture, owner_sql: psycopg.Connection, owner_url: str
) -> None:
    t = tenant_a
    other = await api.req("POST", "/api/employees", t.manager, json={"firstName": "R", "lastName": "Everse"})
    in_order, reverse = t.employee_id, uuid.UUID(other.json()["id"])
    names = {**await shifts(api, t, *NIGHT_AND_MORNING, employee_id=in_order),
             **await shifts(api, t, *NIGHT_AND_MORNING, employee_id=reverse)}

    async def upload(employee_id: uuid.UUID, items: list[tuple[str, str]]) -> None:
        r = await api.req("POST", "/api/punches/batch", t.manager, json={"punches": [
            {"clientPunchId": f"c{n}", "employeeId": str(employee_id), "type": kind, "timestamp": ts,
             "device": "offline-1"} for n, (kind, ts) in enumerate(items)]})
        assert r.status_code == 200, r.text
        assert [x["status"] for x in r.json()["results"]] == ["created"] * len(items)

    await upload(in_order, AS_IT_HAPPENED)
    await upload(reverse, AS_IT_HAPPENED[::-1])

    def stored(employee_id: uuid.UUID) -> list[tuple[Any, ...]]:
        rows = owner_sql.execute(
            "SELECT type, ts, shift_id::text, shift_date::text FROM punches WHERE tenant_id = %s "
            "AND employee_id = %s ORDER BY ts", (t.id, employee_id)).fetchall()
        return [(k, ts, names[s], d) for k, ts, s, d in rows]

    assert stored(reverse) == stored(in_order)
    assert [(k, s, d) for k, _, s, d in stored(in_order)] == [
        ("clock_in", "22:00", SUNDAY), ("clock_out", "22:00", SUNDAY), ("clock_in", "07:00", MONDAY),
        ("break_start", "07:00", MONDAY), ("break_end", "07:00", MONDAY), ("clock_out", "07:00", MONDAY)]
    moves = [(employee, c["before"]["shiftDate"], c["after"]["shiftDate"])
             for _, c, employee, _ in updates(owner_sql, t.id)]
    assert moves == [(str(reverse), MONDAY, SUNDAY)]  # only the reverse upload's 06:30 clock_out moved
    # and the timesheets agree: the night's work on Sunday, the morning's on Monday
    for employee_id in (in_order, reverse):
        sunday, monday = await day_of(api, t, SUNDAY, employee_id), await day_of(api, t, MONDAY, employee_id)
        assert (sunday["workedMinutes"], monday["workedMinutes"], monday["breakMinutes"]) == (515, 232, 15)
    assert (await verify_url(owner_url, t.id)).ok


async def test_the_sweep_attributes_punches_to_a_schedule_created_after_them(
    api: Api, tenant_a: TenantFixture, owner_sql: psycopg.Connection, owner_url: str, app_client: Any
) -> None:
    """Punched before the manager entered the schedule: the punches matched no occurrence.
    The sweep's evaluation (like that of the next punch that arrives out of order, or of a void)
    attributes them, audited as the sweep's."""
    t = tenant_a
    sent = [(await punch(api, t, kind, at(hhmm))).json() for kind, hhmm in (("clock_in", "09:02"),
                                                                           ("clock_out", "12:58"))]
    assert [(p["shiftId"], p["shiftDate"]) for p in sent] == [(None, None)] * 2
    morning = (shift_named(await shifts(api, t), "09:00"), MONDAY)
    db: Database = app_client[0].state.db
    await sweep_employee(db, t.id, t.employee_id, datetime(2026, 3, 3, 12, 0, tzinfo=UTC), 8)
    assert [await attribution(api, t, p["id"]) for p in sent] == [morning] * 2
    assert [u[:2] for u in updates(owner_sql, t.id)] == [(p["id"], moving((None, None), morning)) for p in sent]
    swept = owner_sql.execute("SELECT DISTINCT user_id, left(request_id, 6) FROM audit_log WHERE tenant_id = %s "
                              "AND action = 'updated'", (t.id,)).fetchall()
    assert swept == [(None, "sweep-")]
    assert (await verify_url(owner_url, t.id)).ok
