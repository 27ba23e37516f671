"""Facts that change a past day after the sweep stopped looking at it: a void of last month's
punch, a clock's upload of last week, a deleted schedule. What they leave due is raised or
withdrawn all the same."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

import psycopg
import pytest

from tests.conftest import Api, TenantFixture, make_tenant
from unifocus.db.pool import Database
from unifocus.errors import ServiceUnavailable
from unifocus.settings import Settings
from unifocus.timeexceptions import sweep
from unifocus.timeexceptions.sweep import late_pages, sweep_tenant, windows

NY = ZoneInfo("America/New_York")


async def daily_schedule(api: Api, t: TenantFixture, first: date, last: date) -> dict:
    r = await api.req("POST", "/api/schedules", t.manager, json={
        "employeeId": str(t.employee_id), "startDate": first.isoformat(), "endDate": last.isoformat(),
        "shifts": [{"dayOfWeek": d, "startTime": "09:00", "endTime": "17:00"} for d in range(1, 8)]})
    assert r.status_code == 201, r.text
    return r.json()


async def punch(api: Api, t: TenantFixture, kind: str, day: date, hhmm: str) -> dict:
    ts = datetime.combine(day, datetime.strptime(hhmm, "%H:%M").time(), NY).isoformat()
    r = await api.req("POST", "/api/punches", t.manager, json={"employeeId": str(t.employee_id), "type": kind,
                                                                "timestamp": ts})
    assert r.status_code == 201, r.text
    return r.json()


async def exceptions(api: Api, t: TenantFixture, **query: str) -> list[tuple[str, str, str | None, str]]:
    """(type, status, shiftDate, reason) of the employee's exceptions, sorted."""
    q = "&".join(f"{k}={v}" for k, v in {"employeeId": str(t.employee_id), "limit": "200", **query}.items())
    r = await api.req("GET", f"/api/exceptions?{q}", t.manager)
    assert r.status_code == 200, r.text
    return sorted((e["type"], e["status"], e["shiftDate"], e["details"].get("reason", "")) for e in r.json()["items"])


async def test_voiding_last_months_punches_raises_what_they_covered(api: Api, tenant_a: TenantFixture) -> None:
    """Months back, out of the sweep's reach: voiding a day's clock_out leaves its shift open
    (missed_punch), voiding the clock_in too leaves no work at all (absence), at once."""
    monday = date(2026, 3, 2)
    await daily_schedule(api, tenant_a, monday, monday)
    clock_in = await punch(api, tenant_a, "clock_in", monday, "09:00")
    clock_out = await punch(api, tenant_a, "clock_out", monday, "17:00")
    assert clock_in["exceptions"] == [] and clock_out["exceptions"] == []

    r = await api.req("DELETE", f"/api/punches/{clock_out['id']}?reason=wrong%20day", tenant_a.manager)
    assert r.status_code == 204
    assert await exceptions(api, tenant_a) == [("missed_punch", "pending", "2026-03-02", "still_open_after_end")]

    r = await api.req("DELETE", f"/api/punches/{clock_in['id']}?reason=wrong%20day", tenant_a.manager)
    assert r.status_code == 204
    assert await exceptions(api, tenant_a) == [
        ("absence", "pending", "2026-03-02", ""), ("missed_punch", "withdrawn", "2026-03-02", "still_open_after_end")]


async def test_the_sweep_raises_what_a_late_upload_left_open(
    api: Api, tenant_a: TenantFixture, app_client: tuple, owner_sql: psycopg.Connection
) -> None:
    """A clock sends, today, a clock_in of eight days ago and nothing after it: no punch
    write raises a session left open (more of the upload may follow), and the sweep's own
    look-back (three days) does not reach that day. The sweep's pass over late punches does,
    once, and an upload that closed the session leaves nothing to raise."""
    now = datetime.now(UTC)
    today = now.astimezone(NY).date()
    late_day, closed_day = today - timedelta(days=8), today - timedelta(days=12)
    await daily_schedule(api, tenant_a, closed_day, closed_day)
    await daily_schedule(api, tenant_a, late_day, late_day)
    await punch(api, tenant_a, "clock_in", closed_day, "09:00")
    await punch(api, tenant_a, "clock_out", closed_day, "17:00")
    late = await punch(api, tenant_a, "clock_in", late_day, "09:00")
    assert late["exceptions"] == []
    assert await exceptions(api, tenant_a) == []

    db: Database = app_client[0].state.db
    assert await sweep_tenant(db, tenant_a.id, now) == 1
    assert await exceptions(api, tenant_a) == [
        ("missed_punch", "pending", late_day.isoformat(), "still_open_after_end")]
    assert await sweep_tenant(db, tenant_a.id, now + timedelta(minutes=5)) == 0  # raised once
    (sweeps,) = owner_sql.execute(
        "SELECT count(*) FROM audit_log WHERE tenant_id = %s AND entity = 'Exception' AND action = 'created' "
        "AND request_id LIKE 'sweep-%%'", (tenant_a.id,)).fetchone()
    assert sweeps == 1  # audited as the sweep's
    # Each pass reads the late punches received since the previous one, less a margin for
    # transactions still open then: the mark is the database's clock when the pass read.
    (mark, received) = owner_sql.execute(
        "SELECT t.late_swept_until, p.received_at FROM tenants t JOIN punches p ON p.tenant_id = t.tenant_id "
        "WHERE t.tenant_id = %s AND p.id = %s", (tenant_a.id, late["id"])).fetchone()
    assert mark > received
    assert [page async for page in late_pages(db, tenant_a.id, now)] != []  # within the margin: read again
    owner_sql.execute("UPDATE tenants SET late_swept_until = late_swept_until + interval '11 minutes' "
                      "WHERE tenant_id = %s", (tenant_a.id,))
    assert [page async for page in late_pages(db, tenant_a.id, now)] == []  # a pass later: not read again


async def test_the_late_pass_reads_an_upload_a_page_of_employees_at_a_time(
    api: Api, tenant_a: TenantFixture, app_client: tuple, owner_sql: psycopg.Connection,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    """A clock's upload for many employees is read a page of employees at a time (a worker's
    memory stays bounded): with pages of one employee, each of three employees' late sessions
    left open is still raised once, and the pass is marked as done."""
    monkeypatch.setattr(sweep, "LATE_PAGE", 1)
    now = datetime.now(UTC)
    late_day = now.astimezone(NY).date() - timedelta(days=8)
    employees = [tenant_a.employee_id]
    for n in range(2):
        r = await api.req("POST", "/api/employees", tenant_a.manager, json={"firstName": "Late", "lastName": str(n)})
        assert r.status_code == 201, r.text
        employees.append(UUID(r.json()["id"]))
    for employee in employees:
        r = await api.req("POST", "/api/schedules", tenant_a.manager, json={
            "employeeId": str(employee), "startDate": late_day.isoformat(), "endDate": late_day.isoformat(),
            "shifts": [{"dayOfWeek": late_day.isoweekday(), "startTime": "09:00", "endTime": "17:00"}]})
        assert r.status_code == 201, r.text
        r = await api.req("POST", "/api/punches", tenant_a.manager, json={
            "employeeId": str(employee), "type": "clock_in",
            "timestamp": datetime.combine(late_day, time(9), NY).isoformat()})
        assert r.status_code == 201 and r.json()["exceptions"] == [], r.text

    pages = [late async for _, late in sweep.late_pages(app_client[0].state.db, tenant_a.id, now)]
    assert [list(late) for late in pages] == [[e] for e in sorted(employees)]
    assert await sweep_tenant(app_client[0].state.db, tenant_a.id, now) == 3
    raised = owner_sql.execute(
        "SELECT employee_id FROM exceptions WHERE tenant_id = %s AND type = 'missed_punch' AND status = 'pending' "
        "AND shift_date = %s ORDER BY employee_id", (tenant_a.id, late_day)).fetchall()
    assert [e for (e,) in raised] == sorted(employees)
    (mark,) = owner_sql.execute("SELECT late_swept_until FROM tenants WHERE tenant_id = %s",
                                (tenant_a.id,)).fetchone()
    assert mark is not None and mark > now - timedelta(minutes=1)


def test_late_days_are_evaluated_in_bounded_zones() -> None:
    """Runs of days merge into one zone (a punch's 24 h either side), split every 7 days, so
    no evaluation of a long upload holds the employee's lock over all of it."""
    day = date(2026, 3, 2)
    got = windows([day, day + timedelta(days=1), day + timedelta(days=5), *(day + timedelta(days=10 + k)
                                                                              for k in range(9))])
    midnight = datetime(2026, 3, 2, tzinfo=UTC)
    spans = [((s - midnight) / timedelta(days=1), (e - midnight) / timedelta(days=1)) for s, e in got]
    assert spans == [(-1, 3), (4, 7), (9, 18), (16, 20)]


async def test_deleting_a_schedule_or_a_shift_withdraws_its_pending_exceptions(
    api: Api, tenant_a: TenantFixture, owner_sql: psycopg.Connection
) -> None:
    """A late arrival on a shift that is then deleted has lost its cause: withdrawn (audited),
    not left pending for ever. A decided one stays as decided, and another shift's stays
    pending."""
    monday, tuesday, wednesday = date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 4)
    sched = await daily_schedule(api, tenant_a, monday, wednesday)
    late = {d: (await punch(api, tenant_a, "clock_in", d, "09:30"))["exceptions"][0]
            for d in (monday, tuesday, wednesday)}
    assert {e["type"] for e in late.values()} == {"late_arrival"}
    approved = await api.req("PUT", f"/api/exceptions/{late[tuesday]['id']}/resolve", tenant_a.manager,
                             json={"status": "approved"})
    assert approved.status_code == 200

    monday_shift = next(s for s in sched["shifts"] if s["dayOfWeek"] == monday.isoweekday())
    r = await api.req("DELETE", f"/api/schedules/{sched['id']}/shifts/{monday_shift['id']}", tenant_a.manager)
    assert r.status_code == 204
    status = {d: (await api.req("GET", f"/api/exceptions/{e['id']}", tenant_a.manager)).json()["status"]
              for d, e in late.items()}
    assert status == {monday: "withdrawn", tuesday: "approved", wednesday: "pending"}

    r = await api.req("DELETE", f"/api/schedules/{sched['id']}", tenant_a.manager)
    assert r.status_code == 204
    got = (await api.req("GET", f"/api/exceptions/{late[wednesday]['id']}", tenant_a.manager)).json()
    assert got["status"] == "withdrawn" and got["note"] == "cause removed"
    assert (await api.req("GET", f"/api/exceptions/{late[tuesday]['id']}", tenant_a.manager)).json()["status"] == \
        "approved"
    audited = owner_sql.execute(
        "SELECT entity_id FROM audit_log WHERE tenant_id = %s AND entity = 'Exception' AND action = 'withdrawn' "
        "ORDER BY created_at", (tenant_a.id,)).fetchall()
    assert [str(e) for (e,) in audited] == [late[monday]["id"], late[wednesday]["id"]]


async def test_an_evaluation_withdraws_exceptions_of_an_occurrence_that_is_gone(
    api: Api, tenant_a: TenantFixture, owner_sql: psycopg.Connection
) -> None:
    """A shift deleted without its exceptions withdrawn (by a release before the delete did
    that): the next evaluation of the day finds the late arrival's occurrence gone and
    withdraws it, as any exception whose cause is gone."""
    monday = date(2026, 3, 2)
    sched = await daily_schedule(api, tenant_a, monday, monday)
    [late] = (await punch(api, tenant_a, "clock_in", monday, "09:30"))["exceptions"]
    owner_sql.execute("UPDATE shifts SET deleted_at = now() WHERE tenant_id = %s AND schedule_id = %s",
                      (tenant_a.id, sched["id"]))
    owner_sql.execute("UPDATE employees SET facts_version = facts_version + 1 WHERE tenant_id = %s AND id = %s",
                      (tenant_a.id, tenant_a.employee_id))
    await punch(api, tenant_a, "clock_out", monday, "17:00")
    got = (await api.req("GET", f"/api/exceptions/{late['id']}", tenant_a.manager)).json()
    assert got["status"] == "withdrawn" and got["note"] == "cause removed"


async def test_one_tenants_failing_pass_leaves_the_other_tenants_swept(
    api: Api, tenant_a: TenantFixture, tenant_b: TenantFixture, app_client: tuple,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tenants are swept in id order, each on its own: when the earlier tenant's look-back and
    late-punch pass both fail (a poison row, a lock timeout), the later tenant's absence of
    yesterday and its late upload's open session are raised all the same, and the run then
    fails as a whole so the job is counted as failed."""
    earlier, later = sorted((tenant_a, tenant_b), key=lambda t: t.id)
    today = datetime.now(UTC).astimezone(ZoneInfo(later.timezone)).date()
    yesterday, late_day = today - timedelta(days=1), today - timedelta(days=8)
    await daily_schedule(api, later, late_day, yesterday)
    await punch(api, later, "clock_in", late_day, "09:00")  # a clock's upload: nothing after it
    db = app_client[0].state.db

    def failing_for_earlier(real):  # type: ignore[no-untyped-def]
        async def one(db: Database, tenant: UUID, now: datetime, chains: int = 8) -> int:
            if tenant == earlier.id:
                raise RuntimeError(f"tenant {tenant}'s pass failed")
            return await real(db, tenant, now, chains)
        return one

    monkeypatch.setattr(sweep, "sweep_recent", failing_for_earlier(sweep.sweep_recent))
    monkeypatch.setattr(sweep, "sweep_late", failing_for_earlier(sweep.sweep_late))
    with pytest.raises(sweep.SweepFailed, match="1 tenant"):
        await sweep.sweep(db)
    with pytest.raises(sweep.SweepFailed, match="1 tenant"):
        await sweep.sweep_late_punches(db)
    got = {(kind, day) for kind, status, day, _ in await exceptions(api, later) if status == "pending"}
    assert ("absence", yesterday.isoformat()) in got
    assert ("missed_punch", late_day.isoformat()) in got


async def test_an_outage_stops_the_sweep_at_the_third_tenant_in_a_row(
    tenant_a: TenantFixture, tenant_b: TenantFixture, owner_url: str, settings: Settings, app_client: tuple,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database unavailable for three tenants in a row is an outage, not three tenants'
    problems: the run stops with the database's error (one log line, not a timeout and a
    traceback per tenant); one tenant's lock wait ended as "unavailable" does not."""
    make_tenant(owner_url, settings)  # a third tenant, whatever else the database holds
    tried: list[UUID] = []

    async def down(db: Database, tenant: UUID, now: datetime, chains: int = 8) -> int:
        tried.append(tenant)
        raise ServiceUnavailable("The database is unavailable; retry later.")

    monkeypatch.setattr(sweep, "sweep_recent", down)
    with pytest.raises(ServiceUnavailable):
        await sweep.sweep(app_client[0].state.db)
    assert len(tried) == sweep.UNAVAILABLE_IN_A_ROW

    first = min(tenant_a.id, tenant_b.id)
    swept: list[UUID] = []

    async def one_tenant_waits(db: Database, tenant: UUID, now: datetime, chains: int = 8) -> int:
        if tenant == first:
            raise ServiceUnavailable("The database is unavailable; retry later.")
        swept.append(tenant)
        return 0

    monkeypatch.setattr(sweep, "sweep_recent", one_tenant_waits)
    with pytest.raises(sweep.SweepFailed, match="1 tenant"):
        await sweep.sweep(app_client[0].state.db)
    assert max(tenant_a.id, tenant_b.id) in swept
