"""Every operation of the API through `Client` and `AsyncClient` against a live server, the
pagination iterators, and the typed exceptions of problem answers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.client.conftest import Server
from tests.conftest import TenantFixture
from unifocus.client import (
    ApiError,
    AsyncClient,
    BadRequest,
    Client,
    Conflict,
    Forbidden,
    IdempotencyKeyReused,
    NotFound,
    Unauthorized,
    ValidationError,
)
from unifocus.client.models import ScheduleCreate

pytestmark = pytest.mark.slow


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def schedule_now(employee_id: str) -> ScheduleCreate:
    """A UTC shift that started 2 hours ago and lasts 4."""
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=2)
    return {"employeeId": employee_id, "name": "test", "startDate": str(start.date() - timedelta(days=1)),
            "endDate": str(start.date() + timedelta(days=1)),
            "shifts": [{"dayOfWeek": start.isoweekday(), "startTime": start.strftime("%H:%M"),
                        "endTime": (start + timedelta(hours=4)).strftime("%H:%M")}]}


def test_health_tenant_and_users(live: Server, ta: TenantFixture) -> None:
    with Client(live.url, ta.admin) as c:
        assert c.health()["status"] == "ok"
        assert c.ready()["checks"]["database"] == "ok"
        assert "unifocus_http_requests_total" in c.metrics()
        me = c.me()
        assert me["role"] == "admin" and me["tenantId"] == str(ta.id) and me["userId"] == str(ta.admin_id)
        tenant = c.get_tenant()
        assert tenant["timezone"] == "America/New_York" and tenant["policy"]["lateGraceMinutes"] == 5
        patched = c.update_tenant({"name": "Renamed", "policy": {"lateGraceMinutes": 7}})
        assert patched["name"] == "Renamed" and patched["policy"]["lateGraceMinutes"] == 7
        assert patched["policy"]["maxBreakMinutes"] == 60

        user = c.create_user({"email": f"u-{uuid.uuid4().hex[:6]}@example.com", "role": "employee",
                              "employeeId": str(ta.employee_id)})
        assert c.get_user(user["id"]) == user
        assert c.update_user(user["id"], {"role": "manager"})["role"] == "manager"
        assert user["id"] in {u["id"] for u in c.list_users(limit=500)["items"]}
        assert {u["id"] for u in c.iter_users(page_size=2)} >= {user["id"], str(ta.admin_id), str(ta.manager_id)}
    with Client(live.url, ta.employee) as c:
        assert c.me()["employeeId"] == str(ta.employee_id)


def test_employees_and_pagination_walks_every_page(live: Server, ta: TenantFixture) -> None:
    seen_pages: list[str] = []

    def hook(request: httpx.Request) -> None:
        if request.url.path == "/api/employees" and request.method == "GET":
            seen_pages.append(request.url.params.get("cursor", ""))

    transport = _Spy(hook)
    with Client(live.url, ta.manager, transport=transport) as c:
        made = [c.create_employee({"firstName": "P", "lastName": f"N{i}", "externalId": f"x-{uuid.uuid4().hex}"})
                for i in range(7)]
        every = list(c.iter_employees(page_size=3))
        assert len(every) == 8 and len({e["id"] for e in every}) == 8  # 7 + the fixture's employee
        assert [e["id"] for e in every[:7]] == [e["id"] for e in reversed(made)]  # newest first
        assert len(seen_pages) == 3 and seen_pages[0] == "" and all(seen_pages[1:])
        page = c.list_employees(limit=3)
        assert len(page["items"]) == 3 and page["nextCursor"]
        nxt = c.list_employees(limit=3, cursor=page["nextCursor"])
        assert not {e["id"] for e in nxt["items"]} & {e["id"] for e in page["items"]}
        e = made[0]
        assert c.get_employee(e["id"]) == e
        assert c.update_employee(e["id"], {"email": "p@example.com"})["email"] == "p@example.com"
        c.delete_employee(e["id"])
        assert c.get_employee(e["id"])["active"] is False
        assert e["id"] in {x["id"] for x in c.iter_employees(active=False)}


class _Spy(httpx.HTTPTransport):
    def __init__(self, hook: object) -> None:
        super().__init__()
        self.hook = hook

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.hook(request)  # type: ignore[operator]
        return super().handle_request(request)


def test_schedules_punches_exceptions_timesheets_audit(live: Server, ta: TenantFixture) -> None:
    with Client(live.url, ta.admin) as c:
        emp = c.create_employee({"firstName": "S", "lastName": "Flow", "timezone": "UTC"})
        sched = c.create_schedule(schedule_now(emp["id"]))
        assert c.get_schedule(sched["id"]) == sched
        assert [s["id"] for s in c.iter_schedules(employee_id=emp["id"])] == [sched["id"]]
        assert c.list_schedules(employee_id=emp["id"], from_date=sched["startDate"])["items"][0]["id"] == sched["id"]
        # Three days after the shift's day: an overnight shift (started late in the evening)
        # reaches into the next day only, so this one never overlaps it, whatever the time now.
        extra = c.add_shift(sched["id"], {"dayOfWeek": (sched["shifts"][0]["dayOfWeek"] + 2) % 7 + 1,
                                          "startTime": "01:00", "endTime": "02:00"})
        assert {s["id"] for s in c.list_shifts(sched["id"])} == {sched["shifts"][0]["id"], extra["id"]}
        # One shift a page: the client follows nextCursor (newest first), and fetches one by id.
        assert [s["id"] for s in c.iter_shifts(sched["id"], page_size=1)] == [extra["id"], sched["shifts"][0]["id"]]
        assert c.get_shift(sched["id"], extra["id"]) == extra
        c.delete_shift(sched["id"], extra["id"])
        assert len(c.list_shifts(sched["id"])) == 1

        now = datetime.now(UTC).replace(microsecond=0)
        clock_in = c.create_punch({"employeeId": emp["id"], "type": "clock_in",
                                   "timestamp": iso(now - timedelta(hours=1))})
        assert [x["type"] for x in clock_in["exceptions"]] == ["late_arrival"]
        batch = c.create_punches_batch([
            {"clientPunchId": "b1", "employeeId": emp["id"], "type": "break_start", "device": "d1",
             "timestamp": iso(now - timedelta(minutes=30))},
            {"clientPunchId": "b2", "employeeId": str(uuid.uuid4()), "type": "break_end", "device": "d1",
             "timestamp": iso(now - timedelta(minutes=20))},
        ])
        assert [r["status"] for r in batch["results"]] == ["created", "rejected"]
        again = c.create_punches_batch([{"clientPunchId": "b1", "employeeId": emp["id"], "type": "break_start",
                                         "device": "d1", "timestamp": iso(now - timedelta(minutes=30))}])
        assert again["results"][0]["status"] == "duplicate"
        punches = list(c.iter_punches(employee_id=emp["id"], start=now - timedelta(hours=2), page_size=1))
        assert [p["type"] for p in punches] == ["break_start", "clock_in"]
        assert c.list_punches(employee_id=emp["id"], end=now - timedelta(minutes=45))["items"][0]["id"] == \
            clock_in["id"]
        brk = punches[0]
        c.void_punch(brk["id"], "typo")
        assert c.get_punch(brk["id"])["voided"] is True and c.get_punch(brk["id"])["voidReason"] == "typo"

        late = next(c.iter_exceptions(employee_id=emp["id"], type="late_arrival", status="pending"))
        assert c.get_exception(late["id"]) == late
        assert c.list_exceptions(employee_id=emp["id"], start=now - timedelta(hours=1))["items"]
        done = c.resolve_exception(late["id"], "approved", "ok")
        assert done["status"] == "approved" and done["note"] == "ok"

        day = sched["shifts"][0]
        sheet = c.get_timesheet(sched["startDate"], sched["endDate"], employee_id=emp["id"])
        assert sheet["employeeId"] == emp["id"] and len(sheet["days"]) == 3 and day
        assert sheet["totals"]["scheduledMinutes"] == 240
        csv = c.export_timesheets(sched["startDate"], sched["endDate"])
        assert csv.splitlines()[0].startswith("employee_id") and emp["id"] in csv

        trail = list(c.iter_audit_logs(employee_id=emp["id"], page_size=2))
        assert {(e["entity"], e["action"]) for e in trail} >= {
            ("Employee", "created"), ("Schedule", "created"), ("Shift", "created"), ("Shift", "deleted"),
            ("Punch", "created"), ("Punch", "voided"), ("Exception", "approved")}
        assert c.list_audit_logs(entity="Punch", action="voided", employee_id=emp["id"])["items"][0]["punchId"] \
            == brk["id"]
        c.delete_schedule(sched["id"])
        with pytest.raises(NotFound):
            c.get_schedule(sched["id"])


async def test_async_client_flow(live: Server, ta: TenantFixture, tb: TenantFixture) -> None:
    async with AsyncClient(live.url, ta.manager) as c, AsyncClient(live.url, tb.admin) as other:
        assert (await c.health())["status"] == "ok"
        assert (await c.me())["role"] == "manager"
        emp = await c.create_employee({"firstName": "A", "lastName": "Sync", "timezone": "UTC"})
        sched = await c.create_schedule(schedule_now(emp["id"]))
        punch = await c.create_punch({"employeeId": emp["id"], "type": "clock_out",
                                      "timestamp": iso(datetime.now(UTC))})
        assert [x["type"] for x in punch["exceptions"]] == ["missed_punch"]
        exc = [x async for x in c.iter_exceptions(employee_id=emp["id"], page_size=1)]
        assert (await c.resolve_exception(exc[0]["id"], "rejected"))["status"] == "rejected"
        assert [p["id"] async for p in c.iter_punches(employee_id=emp["id"])] == [punch["id"]]
        assert [s["id"] async for s in c.iter_schedules(employee_id=emp["id"])] == [sched["id"]]
        sheet = await c.get_timesheet(sched["startDate"], sched["endDate"], employee_id=emp["id"])
        assert len(sheet["days"]) == 3
        assert emp["id"] in await c.export_timesheets(sched["startDate"], sched["endDate"])
        with pytest.raises(NotFound):
            await other.get_punch(punch["id"])
        assert emp["id"] not in {e["id"] async for e in other.iter_employees()}
        assert all([e["tenantId"] == str(tb.id) async for e in other.iter_audit_logs()])


def test_problem_answers_are_typed_exceptions(live: Server, ta: TenantFixture) -> None:
    with Client(live.url, "not-a-token") as c, pytest.raises(Unauthorized) as unauth:
        c.me()
    assert unauth.value.status == 401 and unauth.value.slug == "unauthorized"
    with Client(live.url, ta.employee) as c, pytest.raises(Forbidden) as forbidden:
        c.create_employee({"firstName": "No", "lastName": "Way"})
    assert forbidden.value.status == 403
    with Client(live.url, ta.admin) as c:
        missing = str(uuid.uuid4())
        with pytest.raises(NotFound) as nf:
            c.get_employee(missing)
        assert nf.value.instance == f"/api/employees/{missing}" and nf.value.type.endswith("/not-found")
        assert nf.value.request_id and nf.value.detail
        email = f"dup-{uuid.uuid4().hex[:6]}@example.com"
        c.create_user({"email": email, "role": "employee"})
        with pytest.raises(Conflict):
            c.create_user({"email": email, "role": "employee"})
        with pytest.raises(ValidationError) as invalid:
            c.create_employee({"firstName": "", "lastName": "x"})
        assert invalid.value.status == 422 and [e["field"] for e in invalid.value.errors] == ["firstName"]
        with pytest.raises(BadRequest):
            c.list_employees(cursor="!!not-a-cursor")
        key = str(uuid.uuid4())
        c.create_employee({"firstName": "K", "lastName": "One"}, key=key)
        with pytest.raises(IdempotencyKeyReused) as reused:
            c.create_employee({"firstName": "K", "lastName": "Two"}, key=key)
        assert reused.value.status == 422 and reused.value.slug == "idempotency-key-reused"
        for err in (unauth.value, forbidden.value, nf.value, invalid.value, reused.value):
            assert isinstance(err, ApiError)
