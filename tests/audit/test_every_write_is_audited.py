"""Every write route of the API, held to the audit entries it writes (contract section 7; the
production-readiness gate: "all write operations have corresponding audit test cases").

The write routes (POST, PUT, PATCH, DELETE under /api) are read from the app itself, from its
route table and from its OpenAPI document, so a route added later without a case in SUCCESS
and in REFUSALS below fails this module. For each route:

- a real successful request, and the audit_log rows it wrote, read as the owner and found by
  tenant and by the response's `X-Request-ID` (the entry's `request_id`): entity, action,
  entityId, userId (the caller), employeeId / punchId / exceptionId, and `changes`
  {before, after} held to what the API answered before and after the write;
- refused requests (403 for a role too low or a deactivated user, 422 for invalid input, 404
  for another tenant's id, and some 409s) write no audit entry, in either tenant;
- and the audit chains of both tenants still verify (`unifocus audit verify`).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import fastapi.routing
import httpx
import psycopg
import pytest
from fastapi import APIRouter, FastAPI
from psycopg.rows import dict_row

from tests.conftest import JWT_SECRET, Api, TenantFixture, make_settings, start_app
from unifocus.app import create_app
from unifocus.audit.verify import verify_url
from unifocus.auth.tokens import mint_token
from unifocus.errors import refuses_methods
from unifocus.settings import Settings

pytestmark = pytest.mark.audit

Route = tuple[str, str]  # (METHOD, path template as mounted)
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


# --- the write routes, from the app itself --------------------------------------------------

def _route_table_writes(app: FastAPI) -> set[Route]:
    """Write routes of the mounted route table, any kind of route (FastAPI >= 0.16x keeps
    included routers as lazy entries that `iter_route_contexts` flattens; older versions list
    the routes directly)."""
    iter_contexts = getattr(fastapi.routing, "iter_route_contexts", None)
    routes: list[Any] = list(iter_contexts(app.routes)) if iter_contexts is not None else list(app.routes)
    out: set[Route] = set()
    for route in routes:
        path = getattr(route, "path", None)
        if not isinstance(path, str) or not path.startswith("/api") or refuses_methods(route):
            continue  # refuses_methods: a 405 for a method a literal path does not take
        for method in set(getattr(route, "methods", None) or ()) & WRITE_METHODS:
            out.add((method, path))
    return out


def _openapi_writes(app: FastAPI) -> set[Route]:
    return {(method.upper(), path) for path, item in app.openapi()["paths"].items() if path.startswith("/api")
            for method in item if method.upper() in WRITE_METHODS}


def write_routes(app: FastAPI) -> list[Route]:
    return sorted(_route_table_writes(app) | _openapi_writes(app))


# Never started (no database): only its route table and OpenAPI document are read.
APP = create_app(Settings(database_url="postgresql://unused@127.0.0.1:1/unused", jwt_secret=JWT_SECRET,
                          redis_url=None, scheduler_enabled=False, rate_limit_enabled=False))
WRITE_ROUTES = write_routes(APP)


# --- reading what a request wrote ---------------------------------------------------------------

@dataclass
class Ctx:
    api: Api
    db: psycopg.Connection  # owner, autocommit
    owner_url: str
    a: TenantFixture
    b: TenantFixture
    tmp_path: Path


@dataclass
class Written:
    """One request's answer and the audit entries it appended (in append order)."""

    response: httpx.Response
    request_id: str
    entries: list[dict[str, Any]]

    @property
    def status(self) -> int:
        return self.response.status_code

    @property
    def json(self) -> Any:
        return self.response.json()

    def of(self, entity: str) -> list[dict[str, Any]]:
        return [e for e in self.entries if e["entity"] == entity]


def entries_of(db: psycopg.Connection, tenant_id: uuid.UUID, request_id: str) -> list[dict[str, Any]]:
    with db.cursor(row_factory=dict_row) as cur:
        # One request's entries share a chain (chosen from its request id): seq is append order.
        return cur.execute("SELECT * FROM audit_log WHERE tenant_id = %s AND request_id = %s ORDER BY chain, seq",
                           (tenant_id, request_id)).fetchall()


def count_all(db: psycopg.Connection, request_id: str) -> int:
    row = db.execute("SELECT count(*) FROM audit_log WHERE request_id = %s", (request_id,)).fetchone()
    assert row is not None
    return int(row[0])


def tenant_total(db: psycopg.Connection, tenant_id: uuid.UUID) -> int:
    row = db.execute("SELECT count(*) FROM audit_log WHERE tenant_id = %s", (tenant_id,)).fetchone()
    assert row is not None
    return int(row[0])


async def write(c: Ctx, method: str, url: str, token: str, tenant: TenantFixture | None = None,
                api: Api | None = None, **kw: Any) -> Written:
    """Send a write and read the entries its request id wrote in `tenant` (default A); an entry
    of this request in any other tenant fails the test."""
    tenant = tenant or c.a
    r = await (api or c.api).req(method, url, token, **kw)
    request_id = r.headers["x-request-id"]
    found = entries_of(c.db, tenant.id, request_id)
    assert count_all(c.db, request_id) == len(found), f"{method} {url}: audited outside the caller's tenant"
    return Written(r, request_id, found)


def check_entry(e: dict[str, Any], entity: str, action: str, entity_id: uuid.UUID | str, user_id: uuid.UUID,
                employee_id: uuid.UUID | str | None = None, punch_id: uuid.UUID | str | None = None,
                exception_id: uuid.UUID | str | None = None) -> dict[str, Any]:
    """The entry's identifying columns, exactly; answers its `changes`."""
    def as_uuid(v: uuid.UUID | str | None) -> uuid.UUID | None:
        return uuid.UUID(str(v)) if v is not None else None

    got = (e["entity"], e["action"], e["entity_id"], e["user_id"], e["employee_id"], e["punch_id"],
           e["exception_id"])
    want = (entity, action, as_uuid(entity_id), user_id, as_uuid(employee_id), as_uuid(punch_id),
            as_uuid(exception_id))
    assert got == want, f"audit entry {got} != expected {want}"
    assert e["created_at"] is not None and e["request_id"]
    changes = e["changes"]
    assert isinstance(changes, dict) and set(changes) == {"before", "after"}, changes
    return changes


def without(d: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k not in keys}


# --- building blocks (their own audit entries are not under test here) -------------------------

def instant(days_ago: int, hour: int, minute: int = 0) -> str:
    """An instant in the past (punches more than 5 minutes in the future are refused)."""
    day = datetime.now(UTC).date() - timedelta(days=days_ago)
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC).isoformat()


def new_email() -> str:
    return f"audit-{uuid.uuid4().hex[:10]}@example.com"


async def ok(api: Api, method: str, url: str, token: str, status: int, **kw: Any) -> Any:
    r = await api.req(method, url, token, **kw)
    assert r.status_code == status, (method, url, r.status_code, r.text)
    return r.json() if r.content else None


async def get(api: Api, url: str, token: str) -> Any:
    return await ok(api, "GET", url, token, 200)


async def new_employee(api: Api, t: TenantFixture, **extra: Any) -> dict[str, Any]:
    body = {"firstName": "Audit", "lastName": f"E{uuid.uuid4().hex[:6]}", **extra}
    emp: dict[str, Any] = await ok(api, "POST", "/api/employees", t.manager, 201, json=body)
    return emp


MONDAY_9_TO_5 = {"dayOfWeek": 1, "startTime": "09:00", "endTime": "17:00"}
WEDNESDAY_NIGHT = {"dayOfWeek": 3, "startTime": "22:00", "endTime": "06:00"}


async def new_schedule(api: Api, t: TenantFixture, employee_id: uuid.UUID | str,
                       shifts: list[dict[str, Any]]) -> dict[str, Any]:
    body = {"employeeId": str(employee_id), "name": "Audit weeks", "startDate": "2026-03-01",
            "endDate": "2026-03-31", "shifts": shifts}
    sched: dict[str, Any] = await ok(api, "POST", "/api/schedules", t.manager, 201, json=body)
    return sched


async def unscheduled_clock_in(api: Api, t: TenantFixture, employee_id: uuid.UUID | str, days_ago: int = 2,
                               **extra: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """A clock_in of an employee without a schedule (by the manager): the punch and the
    pending `unscheduled_punch` exception it raised."""
    body = {"employeeId": str(employee_id), "type": "clock_in", "timestamp": instant(days_ago, 13), **extra}
    punch: dict[str, Any] = await ok(api, "POST", "/api/punches", t.manager, 201, json=body)
    [exc] = [x for x in punch["exceptions"] if x["type"] == "unscheduled_punch"]
    assert exc["status"] == "pending"
    return punch, exc


# --- successful writes: the entries they append --------------------------------------------------

Case = Callable[[Ctx], Awaitable[None]]
SUCCESS: dict[Route, list[Case]] = {}


def audits(method: str, path: str) -> Callable[[Case], Case]:
    def register(fn: Case) -> Case:
        SUCCESS.setdefault((method, path), []).append(fn)
        return fn
    return register


@audits("PATCH", "/api/tenant")
async def tenant_settings_changed(c: Ctx) -> None:
    before = await get(c.api, "/api/tenant", c.a.admin)
    w = await write(c, "PATCH", "/api/tenant", c.a.admin,
                    json={"name": "Renamed for audit", "timezone": "America/Chicago",
                          "policy": {"lateGraceMinutes": 7}})
    assert w.status == 200, w.response.text
    [e] = w.entries
    changes = check_entry(e, "Tenant", "updated", c.a.id, c.a.admin_id)
    assert changes == {"before": before, "after": w.json}
    assert (changes["before"]["timezone"], changes["after"]["timezone"]) == ("America/New_York", "America/Chicago")
    assert changes["after"]["name"] == "Renamed for audit" and changes["before"]["name"] != "Renamed for audit"
    assert (changes["before"]["policy"]["lateGraceMinutes"], changes["after"]["policy"]["lateGraceMinutes"]) == (5, 7)
    assert await get(c.api, "/api/tenant", c.a.admin) == w.json


@audits("POST", "/api/users")
async def user_created(c: Ctx) -> None:
    emp = await new_employee(c.api, c.a)
    w = await write(c, "POST", "/api/users", c.a.admin,
                    json={"email": new_email(), "role": "manager", "employeeId": emp["id"]})
    assert w.status == 201, w.response.text
    [e] = w.entries
    changes = check_entry(e, "User", "created", w.json["id"], c.a.admin_id, employee_id=emp["id"])
    assert changes == {"before": None, "after": w.json}
    assert changes["after"]["role"] == "manager" and changes["after"]["active"] is True


@audits("PATCH", "/api/users/{user_id}")
async def user_promoted(c: Ctx) -> None:
    url = f"/api/users/{c.a.employee_user_id}"
    before = await get(c.api, url, c.a.admin)
    w = await write(c, "PATCH", url, c.a.admin, json={"role": "manager"})
    assert w.status == 200, w.response.text
    [e] = w.entries
    changes = check_entry(e, "User", "updated", c.a.employee_user_id, c.a.admin_id, employee_id=c.a.employee_id)
    assert changes == {"before": before, "after": w.json}
    assert (changes["before"]["role"], changes["after"]["role"]) == ("employee", "manager")
    assert await get(c.api, url, c.a.admin) == w.json


@audits("PATCH", "/api/users/{user_id}")
async def user_deactivated(c: Ctx) -> None:
    url = f"/api/users/{c.a.manager_id}"
    before = await get(c.api, url, c.a.admin)
    w = await write(c, "PATCH", url, c.a.admin, json={"active": False})
    assert w.status == 200, w.response.text
    [e] = w.entries
    changes = check_entry(e, "User", "updated", c.a.manager_id, c.a.admin_id)
    assert changes == {"before": before, "after": w.json}
    assert (changes["before"]["active"], changes["after"]["active"]) == (True, False)
    assert changes["before"]["role"] == changes["after"]["role"] == "manager"


@audits("PATCH", "/api/users/{user_id}")
async def user_relinked_to_another_employee(c: Ctx) -> None:
    emp = await new_employee(c.api, c.a)
    url = f"/api/users/{c.a.employee_user_id}"
    before = await get(c.api, url, c.a.admin)
    w = await write(c, "PATCH", url, c.a.admin, json={"employeeId": emp["id"]})
    assert w.status == 200, w.response.text
    [e] = w.entries
    changes = check_entry(e, "User", "updated", c.a.employee_user_id, c.a.admin_id, employee_id=emp["id"])
    assert changes == {"before": before, "after": w.json}
    assert (changes["before"]["employeeId"], changes["after"]["employeeId"]) == (str(c.a.employee_id), emp["id"])


@audits("POST", "/api/employees")
async def employee_created(c: Ctx) -> None:
    body = {"firstName": "Ann", "lastName": "Lee", "externalId": f"X-{uuid.uuid4().hex[:8]}",
            "email": "ann.lee@example.com", "timezone": "Europe/Paris"}
    w = await write(c, "POST", "/api/employees", c.a.manager, json=body)
    assert w.status == 201, w.response.text
    [e] = w.entries
    changes = check_entry(e, "Employee", "created", w.json["id"], c.a.manager_id, employee_id=w.json["id"])
    assert changes == {"before": None, "after": w.json}
    assert changes["after"]["externalId"] == body["externalId"] and changes["after"]["active"] is True


@audits("PATCH", "/api/employees/{employee_id}")
async def employee_updated(c: Ctx) -> None:
    url = f"/api/employees/{c.a.employee_id}"
    before = await get(c.api, url, c.a.manager)
    w = await write(c, "PATCH", url, c.a.manager, json={"lastName": "Renamed", "timezone": "Asia/Tokyo"})
    assert w.status == 200, w.response.text
    [e] = w.entries
    changes = check_entry(e, "Employee", "updated", c.a.employee_id, c.a.manager_id, employee_id=c.a.employee_id)
    assert changes == {"before": before, "after": w.json}
    assert (changes["before"]["lastName"], changes["after"]["lastName"]) == ("Worker", "Renamed")
    assert (changes["before"]["timezone"], changes["after"]["timezone"]) == (None, "Asia/Tokyo")


@audits("DELETE", "/api/employees/{employee_id}")
async def employee_deactivated(c: Ctx) -> None:
    url = f"/api/employees/{c.a.employee_id}"
    before = await get(c.api, url, c.a.manager)
    w = await write(c, "DELETE", url, c.a.manager)
    assert w.status == 204, w.response.text
    after = await get(c.api, url, c.a.manager)
    [e] = w.entries
    changes = check_entry(e, "Employee", "deleted", c.a.employee_id, c.a.manager_id, employee_id=c.a.employee_id)
    assert changes == {"before": before, "after": after}
    assert (changes["before"]["active"], changes["after"]["active"]) == (True, False)


@audits("POST", "/api/schedules")
async def schedule_created_with_its_shifts(c: Ctx) -> None:
    body = {"employeeId": str(c.a.employee_id), "name": "March", "startDate": "2026-03-01",
            "endDate": "2026-03-31", "shifts": [MONDAY_9_TO_5, WEDNESDAY_NIGHT]}
    w = await write(c, "POST", "/api/schedules", c.a.manager, json=body)
    assert w.status == 201, w.response.text
    sched = w.json
    assert len(sched["shifts"]) == 2
    # One entry per changed entity: the schedule, then each of its shifts.
    assert [e["entity"] for e in w.entries] == ["Schedule", "Shift", "Shift"]
    [s] = w.of("Schedule")
    changes = check_entry(s, "Schedule", "created", sched["id"], c.a.manager_id, employee_id=c.a.employee_id)
    assert changes["before"] is None
    # The schedule's own fields; its shifts are audited as entities of their own.
    assert without(changes["after"], "shifts") == without(sched, "shifts")
    shifts = {sh["id"]: sh for sh in sched["shifts"]}
    assert {str(e["entity_id"]) for e in w.of("Shift")} == set(shifts)
    for e in w.of("Shift"):
        sc = check_entry(e, "Shift", "created", e["entity_id"], c.a.manager_id, employee_id=c.a.employee_id)
        assert sc == {"before": None, "after": shifts[str(e["entity_id"])]}
        assert sc["after"]["scheduleId"] == sched["id"]


@audits("DELETE", "/api/schedules/{schedule_id}")
async def schedule_deleted(c: Ctx) -> None:
    sched = await new_schedule(c.api, c.a, c.a.employee_id, [MONDAY_9_TO_5])
    url = f"/api/schedules/{sched['id']}"
    before = await get(c.api, url, c.a.manager)
    w = await write(c, "DELETE", url, c.a.manager)
    assert w.status == 204, w.response.text
    assert (await c.api.req("GET", url, c.a.manager)).status_code == 404
    [e] = w.entries
    changes = check_entry(e, "Schedule", "deleted", sched["id"], c.a.manager_id, employee_id=c.a.employee_id)
    assert changes == {"before": before, "after": None}


@audits("POST", "/api/schedules/{schedule_id}/shifts")
async def shift_added(c: Ctx) -> None:
    sched = await new_schedule(c.api, c.a, c.a.employee_id, [MONDAY_9_TO_5])
    w = await write(c, "POST", f"/api/schedules/{sched['id']}/shifts", c.a.manager, json=WEDNESDAY_NIGHT)
    assert w.status == 201, w.response.text
    [e] = w.entries
    changes = check_entry(e, "Shift", "created", w.json["id"], c.a.manager_id, employee_id=c.a.employee_id)
    assert changes == {"before": None, "after": w.json}
    assert changes["after"]["scheduleId"] == sched["id"]


@audits("DELETE", "/api/schedules/{schedule_id}/shifts/{shift_id}")
async def shift_deleted(c: Ctx) -> None:
    sched = await new_schedule(c.api, c.a, c.a.employee_id, [MONDAY_9_TO_5, WEDNESDAY_NIGHT])
    shift = sched["shifts"][0]
    url = f"/api/schedules/{sched['id']}/shifts/{shift['id']}"
    before = await get(c.api, url, c.a.manager)
    w = await write(c, "DELETE", url, c.a.manager)
    assert w.status == 204, w.response.text
    [e] = w.entries
    changes = check_entry(e, "Shift", "deleted", shift["id"], c.a.manager_id, employee_id=c.a.employee_id)
    assert changes == {"before": before, "after": None}


def check_created_punch(w: Written, punch: dict[str, Any], user_id: uuid.UUID) -> None:
    """`punch` (a created punch as answered, with the `exceptions` it raised) has exactly its
    Punch created entry and one Exception created entry per exception, among w's entries."""
    [p] = [e for e in w.of("Punch") if str(e["entity_id"]) == punch["id"]]
    changes = check_entry(p, "Punch", "created", punch["id"], user_id, employee_id=punch["employeeId"],
                          punch_id=punch["id"])
    assert changes == {"before": None, "after": without(punch, "exceptions")}
    for x in punch["exceptions"]:
        [e] = [e for e in w.of("Exception") if str(e["entity_id"]) == x["id"]]
        xc = check_entry(e, "Exception", "created", x["id"], user_id, employee_id=x["employeeId"],
                         punch_id=x["punchId"], exception_id=x["id"])
        assert xc == {"before": None, "after": x}


async def device_punch_is_audited(c: Ctx, api: Api) -> None:
    device, client_id = "front-door", f"cp-{uuid.uuid4().hex[:8]}"
    day = datetime.now(UTC).date() - timedelta(days=10)
    local = datetime(day.year, day.month, day.day, 8, 3, tzinfo=timezone(timedelta(hours=-5)))
    body = {"employeeId": str(c.a.employee_id), "type": "clock_in", "timestamp": local.isoformat(),
            "device": device, "clientPunchId": client_id}
    w = await write(c, "POST", "/api/punches", c.a.employee, api=api, json=body)
    assert w.status == 201, w.response.text
    punch = w.json
    assert [x["type"] for x in punch["exceptions"]] == ["unscheduled_punch"]
    assert len(w.entries) == 1 + len(punch["exceptions"])
    assert w.entries[0]["entity"] == "Punch"
    check_created_punch(w, punch, c.a.employee_user_id)
    [p] = w.of("Punch")
    after = p["changes"]["after"]
    # "Punch creation logged with timestamp and device"
    assert (after["timestamp"], after["device"], after["clientPunchId"], after["source"]) == (
        f"{day.isoformat()}T13:03:00Z", device, client_id, "device")
    assert after["receivedAt"] and after["voided"] is False
    assert without(await get(c.api, f"/api/punches/{punch['id']}", c.a.manager), "exceptions") == after

    # The device's repeat answers the stored punch (200): no write, nothing audited.
    again = await write(c, "POST", "/api/punches", c.a.employee, api=api, json=body)
    assert again.status == 200, again.response.text
    assert again.json["id"] == punch["id"]
    assert again.entries == []


@audits("POST", "/api/punches")
async def punch_created(c: Ctx) -> None:
    await device_punch_is_audited(c, c.api)


@audits("POST", "/api/punches")
async def punch_created_through_the_other_write_paths(c: Ctx) -> None:
    """The same through the other write paths of a punch: no two-statement (optimistic)
    write, and no fast route (the FastAPI route itself)."""
    for overrides in ({"optimistic_punch_write": False}, {"fast_punch_route": False}):
        settings = make_settings(c.owner_url, c.tmp_path, **overrides)
        _, client, lifespan = await start_app(settings)
        try:
            await device_punch_is_audited(c, Api(client))
        finally:
            await client.aclose()
            await lifespan.__aexit__(None, None, None)  # type: ignore[attr-defined]
        c.a = await fresh_employee_user(c)


async def fresh_employee_user(c: Ctx) -> TenantFixture:
    """tenant A with its employee user linked to a new employee record (so a scenario can be
    run again with no punches of its employee yet)."""
    emp = await new_employee(c.api, c.a)
    await ok(c.api, "PATCH", f"/api/users/{c.a.employee_user_id}", c.a.admin, 200, json={"employeeId": emp["id"]})
    a = c.a
    return TenantFixture(a.id, a.admin, a.manager, a.employee, a.admin_id, a.manager_id, a.employee_user_id,
                         uuid.UUID(emp["id"]), a.timezone)


@audits("POST", "/api/punches")
async def manual_punch_by_manager(c: Ctx) -> None:
    body = {"employeeId": str(c.a.employee_id), "type": "clock_out", "timestamp": instant(1, 22),
            "source": "manual"}
    w = await write(c, "POST", "/api/punches", c.a.manager, json=body)
    assert w.status == 201, w.response.text
    assert len(w.entries) == 1 + len(w.json["exceptions"])
    check_created_punch(w, w.json, c.a.manager_id)
    [p] = w.of("Punch")
    assert p["changes"]["after"]["source"] == "manual" and p["changes"]["after"]["device"] is None


@audits("POST", "/api/punches")
async def punch_changes_no_exception_outside_its_zone(c: Ctx) -> None:
    """A punch re-evaluates the exceptions around it (24 h either side); another day's
    pending exception whose cause still stands is not its to change, nor to audit. Here an
    unscheduled clock_in (closed by its clock_out) two days before the new punch."""
    earlier, earlier_exc = await unscheduled_clock_in(c.api, c.a, c.a.employee_id, days_ago=5)
    await ok(c.api, "POST", "/api/punches", c.a.manager, 201, json={
        "employeeId": str(c.a.employee_id), "type": "clock_out", "timestamp": instant(5, 21)})
    w = await write(c, "POST", "/api/punches", c.a.employee, json={
        "employeeId": str(c.a.employee_id), "type": "clock_in", "timestamp": instant(3, 13)})
    assert w.status == 201, w.response.text
    check_created_punch(w, w.json, c.a.employee_user_id)
    stray = [(e["entity"], e["action"], str(e["entity_id"])) for e in w.entries
             if str(e["punch_id"]) != w.json["id"]]
    assert stray == [], f"the punch changed and audited exceptions of another day's punch {earlier['id']}: {stray}"
    assert len(w.entries) == 1 + len(w.json["exceptions"])
    assert (await get(c.api, f"/api/exceptions/{earlier_exc['id']}", c.a.manager))["status"] == "pending"


@audits("POST", "/api/punches/batch")
async def batch_audits_created_items_only(c: Ctx) -> None:
    device = f"dock-{uuid.uuid4().hex[:6]}"
    emp = str(c.a.employee_id)
    stored = await ok(c.api, "POST", "/api/punches", c.a.manager, 201, json={
        "employeeId": emp, "type": "clock_in", "timestamp": instant(10, 13), "device": device,
        "clientPunchId": "c-dup"})
    stored_out = {"employeeId": emp, "type": "clock_out", "timestamp": instant(10, 21), "device": device,
                  "clientPunchId": "c-dup-out"}
    await ok(c.api, "POST", "/api/punches", c.a.manager, 201, json=stored_out)
    items: list[dict[str, Any]] = [
        {"clientPunchId": "c-1", "employeeId": emp, "type": "clock_in", "timestamp": instant(3, 13), "device": device},
        {"clientPunchId": "c-dup", "employeeId": emp, "type": "clock_in", "timestamp": instant(10, 13),
         "device": device},
        {"clientPunchId": "c-2", "employeeId": emp, "type": "clock_out", "timestamp": instant(3, 21),
         "device": device},
        {"clientPunchId": "c-other", "employeeId": str(c.b.employee_id), "type": "clock_in",
         "timestamp": instant(3, 14), "device": device},
        {"clientPunchId": "c-unknown", "employeeId": str(uuid.uuid4()), "type": "clock_in",
         "timestamp": instant(3, 14), "device": device},
        {"clientPunchId": "c-bad", "employeeId": emp, "type": "lunch", "timestamp": instant(3, 14), "device": device},
        {"clientPunchId": "c-future", "employeeId": emp, "type": "clock_in",
         "timestamp": (datetime.now(UTC) + timedelta(hours=2)).isoformat(), "device": device},
    ]
    w = await write(c, "POST", "/api/punches/batch", c.a.manager, json={"punches": items})
    assert w.status == 200, w.response.text
    results = w.json["results"]
    assert [r["status"] for r in results] == [
        "created", "duplicate", "created", "rejected", "rejected", "rejected", "rejected"], results
    assert results[1]["punch"]["id"] == stored["id"]
    created = [r["punch"] for r in results if r["status"] == "created"]
    # Exactly: one Punch created entry per created item, one Exception created entry per
    # exception those raised; nothing for the duplicate or the rejected items.
    assert len(w.entries) == len(created) + sum(len(p["exceptions"]) for p in created)
    assert {str(e["entity_id"]) for e in w.of("Punch")} == {p["id"] for p in created}
    assert {str(e["entity_id"]) for e in w.of("Exception")} == {x["id"] for p in created for x in p["exceptions"]}
    for p in created:
        check_created_punch(w, p, c.a.manager_id)
    assert stored["id"] not in {str(e["punch_id"]) for e in w.entries}
    assert all(e["employee_id"] == c.a.employee_id for e in w.entries)
    assert [e["changes"]["after"]["clientPunchId"] for e in w.of("Punch")] == ["c-1", "c-2"]


@audits("DELETE", "/api/punches/{punch_id}")
async def punch_voided_and_its_exception_withdrawn(c: Ctx) -> None:
    punch, exc = await unscheduled_clock_in(c.api, c.a, c.a.employee_id)
    url = f"/api/punches/{punch['id']}"
    before = await get(c.api, url, c.a.manager)
    exc_before = await get(c.api, f"/api/exceptions/{exc['id']}", c.a.manager)
    w = await write(c, "DELETE", url, c.a.manager, params={"reason": "wrong badge"})
    assert w.status == 204, w.response.text
    after = await get(c.api, url, c.a.manager)
    exc_after = await get(c.api, f"/api/exceptions/{exc['id']}", c.a.manager)
    assert [e["entity"] for e in w.entries] == ["Punch", "Exception"]
    [p] = w.of("Punch")
    changes = check_entry(p, "Punch", "voided", punch["id"], c.a.manager_id, employee_id=c.a.employee_id,
                          punch_id=punch["id"])
    assert changes == {"before": before, "after": after}
    assert (changes["before"]["voided"], changes["after"]["voided"]) == (False, True)
    assert (changes["before"]["voidReason"], changes["after"]["voidReason"]) == (None, "wrong badge")
    # The pending exception whose cause is gone is withdrawn, audited in the same request.
    [x] = w.of("Exception")
    xc = check_entry(x, "Exception", "withdrawn", exc["id"], c.a.manager_id, employee_id=c.a.employee_id,
                     punch_id=punch["id"], exception_id=exc["id"])
    assert xc == {"before": exc_before, "after": exc_after}
    assert (xc["before"]["status"], xc["after"]["status"]) == ("pending", "withdrawn")


async def resolve(c: Ctx, status: str) -> None:
    punch, exc = await unscheduled_clock_in(c.api, c.a, c.a.employee_id)
    url = f"/api/exceptions/{exc['id']}"
    before = await get(c.api, url, c.a.manager)
    note = f"{status} after checking the roster"
    w = await write(c, "PUT", f"{url}/resolve", c.a.manager, json={"status": status, "note": note})
    assert w.status == 200, w.response.text
    [e] = w.entries
    changes = check_entry(e, "Exception", status, exc["id"], c.a.manager_id, employee_id=c.a.employee_id,
                          punch_id=punch["id"], exception_id=exc["id"])
    assert changes == {"before": before, "after": w.json}
    b, a = changes["before"], changes["after"]
    assert (b["status"], b["resolvedBy"], b["resolvedAt"], b["note"]) == ("pending", None, None, None)
    # "Exception approval logged with approvedBy and approvedAt": resolvedBy / resolvedAt.
    assert (a["status"], a["resolvedBy"], a["note"]) == (status, str(c.a.manager_id), note)
    resolved_at = datetime.fromisoformat(a["resolvedAt"].replace("Z", "+00:00"))
    assert abs(resolved_at - e["created_at"]) < timedelta(minutes=1)
    assert await get(c.api, url, c.a.manager) == w.json


@audits("PUT", "/api/exceptions/{exception_id}/resolve")
async def exception_approved(c: Ctx) -> None:
    await resolve(c, "approved")


@audits("PUT", "/api/exceptions/{exception_id}/resolve")
async def exception_rejected(c: Ctx) -> None:
    await resolve(c, "rejected")


# --- refused writes: no entry ---------------------------------------------------------------------

@dataclass
class Side:
    """What one tenant holds, so every route has an id to aim at."""

    t: TenantFixture
    employee: str  # a second employee, no schedule, punched for by the manager
    external_id: str
    schedule: str  # the employee user's record's schedule
    shift: str
    punch: str  # a device punch of `employee`
    device: str
    client_punch_id: str
    exception: str  # pending, raised by `punch`
    manager_email: str


@dataclass
class World:
    a: Side
    b: Side
    inactive_admin: str  # a token of tenant A's deactivated admin


async def build_side(api: Api, t: TenantFixture) -> Side:
    ext = f"W-{uuid.uuid4().hex[:8]}"
    emp = await new_employee(api, t, externalId=ext)
    sched = await new_schedule(api, t, t.employee_id, [MONDAY_9_TO_5])
    device, client_id = "world-clock", f"w-{uuid.uuid4().hex[:8]}"
    punch, exc = await unscheduled_clock_in(api, t, emp["id"], device=device, clientPunchId=client_id)
    manager = await get(api, f"/api/users/{t.manager_id}", t.admin)
    return Side(t, emp["id"], ext, sched["id"], sched["shifts"][0]["id"], punch["id"], device, client_id,
                exc["id"], manager["email"])


@dataclass(frozen=True)
class Refusal:
    why: str
    status: int
    method: str
    url: str
    token: str
    json: Any = None
    params: dict[str, str] | None = None


Refusals = Callable[[Api, World], Awaitable[list[Refusal]]]
REFUSALS: dict[Route, Refusals] = {}


def refuses(method: str, path: str) -> Callable[[Refusals], Refusals]:
    def register(fn: Refusals) -> Refusals:
        REFUSALS[(method, path)] = fn
        return fn
    return register


@refuses("PATCH", "/api/tenant")
async def refused_tenant_patch(api: Api, w: World) -> list[Refusal]:
    a, u = w.a.t, "/api/tenant"
    body = {"name": "Should not change"}
    return [
        Refusal("manager (admin only)", 403, "PATCH", u, a.manager, body),
        Refusal("employee", 403, "PATCH", u, a.employee, body),
        Refusal("deactivated admin", 403, "PATCH", u, w.inactive_admin, body),
        Refusal("unknown time zone", 422, "PATCH", u, a.admin, {"timezone": "Mars/Olympus_Mons"}),
        Refusal("negative policy minutes", 422, "PATCH", u, a.admin, {"policy": {"lateGraceMinutes": -1}}),
        Refusal("empty name", 422, "PATCH", u, a.admin, {"name": ""}),
        # No id in this route: nothing of another tenant can be named.
    ]


@refuses("POST", "/api/users")
async def refused_user_create(api: Api, w: World) -> list[Refusal]:
    a, u = w.a.t, "/api/users"
    body = {"email": new_email(), "role": "employee"}
    return [
        Refusal("manager (admin only)", 403, "POST", u, a.manager, body),
        Refusal("employee", 403, "POST", u, a.employee, body),
        Refusal("deactivated admin", 403, "POST", u, w.inactive_admin, body),
        Refusal("not an email", 422, "POST", u, a.admin, {"email": "not-an-email", "role": "employee"}),
        Refusal("unknown role", 422, "POST", u, a.admin, {"email": new_email(), "role": "root"}),
        Refusal("another tenant's employeeId", 404, "POST", u, a.admin, body | {"employeeId": w.b.employee}),
        Refusal("email taken", 409, "POST", u, a.admin, {"email": w.a.manager_email, "role": "employee"}),
    ]


@refuses("PATCH", "/api/users/{user_id}")
async def refused_user_patch(api: Api, w: World) -> list[Refusal]:
    a, b = w.a.t, w.b.t
    u = f"/api/users/{a.employee_user_id}"
    return [
        Refusal("manager (admin only)", 403, "PATCH", u, a.manager, {"role": "admin"}),
        Refusal("employee promoting themself", 403, "PATCH", u, a.employee, {"role": "admin"}),
        Refusal("deactivated admin", 403, "PATCH", u, w.inactive_admin, {"role": "manager"}),
        Refusal("unknown role", 422, "PATCH", u, a.admin, {"role": "root"}),
        Refusal("not a uuid", 422, "PATCH", "/api/users/not-a-uuid", a.admin, {"role": "manager"}),
        Refusal("another tenant's user", 404, "PATCH", f"/api/users/{b.employee_user_id}", a.admin,
                {"role": "manager"}),
        Refusal("another tenant's employeeId", 404, "PATCH", u, a.admin, {"employeeId": w.b.employee}),
        Refusal("the last active admin demoted", 409, "PATCH", f"/api/users/{a.admin_id}", a.admin,
                {"role": "manager"}),
    ]


@refuses("POST", "/api/employees")
async def refused_employee_create(api: Api, w: World) -> list[Refusal]:
    a, u = w.a.t, "/api/employees"
    body = {"firstName": "No", "lastName": "Body"}
    return [
        Refusal("employee (manager+)", 403, "POST", u, a.employee, body),
        Refusal("deactivated admin", 403, "POST", u, w.inactive_admin, body),
        Refusal("empty firstName", 422, "POST", u, a.manager, {"firstName": "", "lastName": "Body"}),
        Refusal("unknown time zone", 422, "POST", u, a.manager, body | {"timezone": "Nowhere/Land"}),
        Refusal("externalId taken", 409, "POST", u, a.manager, body | {"externalId": w.a.external_id}),
        # No id in this route's path or body: nothing of another tenant can be named.
    ]


@refuses("PATCH", "/api/employees/{employee_id}")
async def refused_employee_patch(api: Api, w: World) -> list[Refusal]:
    a = w.a.t
    u = f"/api/employees/{a.employee_id}"
    return [
        Refusal("employee (manager+)", 403, "PATCH", u, a.employee, {"lastName": "Nope"}),
        Refusal("deactivated admin", 403, "PATCH", u, w.inactive_admin, {"lastName": "Nope"}),
        Refusal("empty lastName", 422, "PATCH", u, a.manager, {"lastName": ""}),
        Refusal("not a uuid", 422, "PATCH", "/api/employees/42", a.manager, {"lastName": "Nope"}),
        Refusal("another tenant's employee", 404, "PATCH", f"/api/employees/{w.b.t.employee_id}", a.manager,
                {"lastName": "Nope"}),
        Refusal("externalId taken", 409, "PATCH", u, a.manager, {"externalId": w.a.external_id}),
    ]


@refuses("DELETE", "/api/employees/{employee_id}")
async def refused_employee_delete(api: Api, w: World) -> list[Refusal]:
    a = w.a.t
    u = f"/api/employees/{a.employee_id}"
    return [
        Refusal("employee (manager+)", 403, "DELETE", u, a.employee),
        Refusal("deactivated admin", 403, "DELETE", u, w.inactive_admin),
        Refusal("not a uuid", 422, "DELETE", "/api/employees/not-a-uuid", a.manager),
        Refusal("another tenant's employee", 404, "DELETE", f"/api/employees/{w.b.t.employee_id}", a.manager),
    ]


@refuses("POST", "/api/schedules")
async def refused_schedule_create(api: Api, w: World) -> list[Refusal]:
    a, u = w.a.t, "/api/schedules"
    body = {"employeeId": w.a.employee, "startDate": "2026-05-01", "endDate": "2026-05-31",
            "shifts": [MONDAY_9_TO_5]}
    return [
        Refusal("employee (manager+)", 403, "POST", u, a.employee, body),
        Refusal("deactivated admin", 403, "POST", u, w.inactive_admin, body),
        Refusal("endDate before startDate", 422, "POST", u, a.manager, body | {"endDate": "2026-04-01"}),
        Refusal("dayOfWeek 8", 422, "POST", u, a.manager,
                body | {"shifts": [{"dayOfWeek": 8, "startTime": "09:00", "endTime": "17:00"}]}),
        Refusal("another tenant's employeeId", 404, "POST", u, a.manager, body | {"employeeId": w.b.employee}),
        Refusal("dates overlap the employee's schedule", 409, "POST", u, a.manager,
                body | {"employeeId": str(a.employee_id), "startDate": "2026-03-15", "endDate": "2026-04-15"}),
        Refusal("overlapping shifts", 409, "POST", u, a.manager,
                body | {"shifts": [MONDAY_9_TO_5, {"dayOfWeek": 1, "startTime": "12:00", "endTime": "13:00"}]}),
    ]


@refuses("DELETE", "/api/schedules/{schedule_id}")
async def refused_schedule_delete(api: Api, w: World) -> list[Refusal]:
    a = w.a.t
    u = f"/api/schedules/{w.a.schedule}"
    return [
        Refusal("employee (manager+)", 403, "DELETE", u, a.employee),
        Refusal("deactivated admin", 403, "DELETE", u, w.inactive_admin),
        Refusal("not a uuid", 422, "DELETE", "/api/schedules/not-a-uuid", a.manager),
        Refusal("another tenant's schedule", 404, "DELETE", f"/api/schedules/{w.b.schedule}", a.manager),
    ]


@refuses("POST", "/api/schedules/{schedule_id}/shifts")
async def refused_shift_create(api: Api, w: World) -> list[Refusal]:
    a = w.a.t
    u = f"/api/schedules/{w.a.schedule}/shifts"
    return [
        Refusal("employee (manager+)", 403, "POST", u, a.employee, WEDNESDAY_NIGHT),
        Refusal("deactivated admin", 403, "POST", u, w.inactive_admin, WEDNESDAY_NIGHT),
        Refusal("dayOfWeek 0", 422, "POST", u, a.manager, WEDNESDAY_NIGHT | {"dayOfWeek": 0}),
        Refusal("seconds in a time", 422, "POST", u, a.manager, WEDNESDAY_NIGHT | {"startTime": "22:00:30"}),
        Refusal("another tenant's schedule", 404, "POST", f"/api/schedules/{w.b.schedule}/shifts", a.manager,
                WEDNESDAY_NIGHT),
        Refusal("overlaps a shift", 409, "POST", u, a.manager, MONDAY_9_TO_5 | {"startTime": "16:00",
                                                                              "endTime": "18:00"}),
    ]


@refuses("DELETE", "/api/schedules/{schedule_id}/shifts/{shift_id}")
async def refused_shift_delete(api: Api, w: World) -> list[Refusal]:
    a = w.a.t
    u = f"/api/schedules/{w.a.schedule}/shifts/{w.a.shift}"
    return [
        Refusal("employee (manager+)", 403, "DELETE", u, a.employee),
        Refusal("deactivated admin", 403, "DELETE", u, w.inactive_admin),
        Refusal("not a uuid", 422, "DELETE", f"/api/schedules/{w.a.schedule}/shifts/x", a.manager),
        Refusal("another tenant's schedule and shift", 404, "DELETE",
                f"/api/schedules/{w.b.schedule}/shifts/{w.b.shift}", a.manager),
        Refusal("another tenant's shift in one's schedule", 404, "DELETE",
                f"/api/schedules/{w.a.schedule}/shifts/{w.b.shift}", a.manager),
    ]


@refuses("POST", "/api/punches")
async def refused_punch(api: Api, w: World) -> list[Refusal]:
    a, u = w.a.t, "/api/punches"
    own = {"employeeId": str(a.employee_id), "type": "clock_in", "timestamp": instant(1, 14)}
    return [
        Refusal("employee punching for another employee", 403, "POST", u, a.employee,
                own | {"employeeId": w.a.employee}),
        Refusal("employee making a manual punch", 403, "POST", u, a.employee, own | {"source": "manual"}),
        Refusal("deactivated admin", 403, "POST", u, w.inactive_admin, own),
        Refusal("unknown type", 422, "POST", u, a.employee, own | {"type": "lunch"}),
        Refusal("timestamp without an offset", 422, "POST", u, a.employee, own | {"timestamp": "2026-11-20T08:00:00"}),
        Refusal("more than 5 minutes in the future", 422, "POST", u, a.employee,
                own | {"timestamp": (datetime.now(UTC) + timedelta(hours=1)).isoformat()}),
        Refusal("another tenant's employee", 404, "POST", u, a.manager, own | {"employeeId": w.b.employee}),
        Refusal("an employee of no tenant", 404, "POST", u, a.manager, own | {"employeeId": str(uuid.uuid4())}),
    ]


@refuses("POST", "/api/punches/batch")
async def refused_batch(api: Api, w: World) -> list[Refusal]:
    a, u = w.a.t, "/api/punches/batch"
    item = {"clientPunchId": f"r-{uuid.uuid4().hex[:8]}", "employeeId": str(a.employee_id), "type": "clock_in",
            "timestamp": instant(1, 14), "device": "refused-clock"}
    return [
        Refusal("deactivated admin", 403, "POST", u, w.inactive_admin, {"punches": [item]}),
        Refusal("punches not a list", 422, "POST", u, a.employee, {"punches": "all of them"}),
        Refusal("no punches field", 422, "POST", u, a.employee, {}),
        Refusal("more than 500 items", 422, "POST", u, a.employee,
                {"punches": [item | {"clientPunchId": f"r-{i}"} for i in range(501)]}),
        # Per-item refusals answer 200, and must write (and audit) nothing either.
        Refusal("items rejected: another tenant's employee, another employee, malformed", 200, "POST", u,
                a.employee, {"punches": [item | {"employeeId": str(w.b.t.employee_id)},
                                         item | {"employeeId": w.a.employee, "clientPunchId": "r-x"},
                                         item | {"type": "lunch", "clientPunchId": "r-y"}]}),
        Refusal("items rejected: another tenant's employee (manager)", 200, "POST", u, a.manager,
                {"punches": [item | {"employeeId": w.b.employee}]}),
        Refusal("item already stored: duplicate", 200, "POST", u, a.manager,
                {"punches": [{"clientPunchId": w.a.client_punch_id, "employeeId": w.a.employee, "type": "clock_in",
                              "timestamp": instant(2, 13), "device": w.a.device}]}),
    ]


@refuses("DELETE", "/api/punches/{punch_id}")
async def refused_void(api: Api, w: World) -> list[Refusal]:
    a = w.a.t
    u = f"/api/punches/{w.a.punch}"
    voided, _ = await unscheduled_clock_in(api, a, w.a.employee, days_ago=4)
    await ok(api, "DELETE", f"/api/punches/{voided['id']}", a.manager, 204, params={"reason": "setup"})
    reason = {"reason": "refused"}
    return [
        Refusal("employee (manager+)", 403, "DELETE", u, a.employee, params=reason),
        Refusal("deactivated admin", 403, "DELETE", u, w.inactive_admin, params=reason),
        Refusal("no reason", 422, "DELETE", u, a.manager),
        Refusal("empty reason", 422, "DELETE", u, a.manager, params={"reason": ""}),
        Refusal("another tenant's punch", 404, "DELETE", f"/api/punches/{w.b.punch}", a.manager, params=reason),
        Refusal("already voided", 409, "DELETE", f"/api/punches/{voided['id']}", a.manager, params=reason),
    ]


@refuses("PUT", "/api/exceptions/{exception_id}/resolve")
async def refused_resolve(api: Api, w: World) -> list[Refusal]:
    a = w.a.t
    u = f"/api/exceptions/{w.a.exception}/resolve"
    _, done = await unscheduled_clock_in(api, a, w.a.employee, days_ago=5)
    await ok(api, "PUT", f"/api/exceptions/{done['id']}/resolve", a.manager, 200, json={"status": "approved"})
    body = {"status": "approved", "note": "refused"}
    return [
        Refusal("employee (manager+)", 403, "PUT", u, a.employee, body),
        Refusal("deactivated admin", 403, "PUT", u, w.inactive_admin, body),
        Refusal("status pending", 422, "PUT", u, a.manager, {"status": "pending"}),
        Refusal("status withdrawn", 422, "PUT", u, a.manager, {"status": "withdrawn"}),
        Refusal("note too long", 422, "PUT", u, a.manager, {"status": "rejected", "note": "x" * 1001}),
        Refusal("another tenant's exception", 404, "PUT", f"/api/exceptions/{w.b.exception}/resolve", a.manager,
                body),
        Refusal("already resolved", 409, "PUT", f"/api/exceptions/{done['id']}/resolve", a.manager,
                {"status": "rejected"}),
    ]


# --- the tests ---------------------------------------------------------------------------------

def route_id(route: Route) -> str:
    return f"{route[0]} {route[1]}"


def test_the_write_routes_are_found() -> None:
    """The enumeration sees the routes it should (so an empty or broken enumeration cannot
    pass the coverage tests vacuously), from both the route table and the OpenAPI document."""
    assert {("POST", "/api/employees"), ("PATCH", "/api/users/{user_id}"), ("POST", "/api/punches/batch"),
            ("PUT", "/api/exceptions/{exception_id}/resolve"), ("PATCH", "/api/tenant")} <= set(WRITE_ROUTES)
    assert _route_table_writes(APP) == _openapi_writes(APP), "a write route is missing from the OpenAPI document"


def test_a_new_write_route_would_be_found_without_a_case() -> None:
    """The enumeration is of the app's routes, not of a list: a route added to the app shows
    up (and, having no case, would fail the tests below)."""
    app = create_app(APP.state.settings)
    rogue = APIRouter(prefix="/api")

    @rogue.post("/rogue-writes")
    async def rogue_write() -> dict[str, Any]:
        return {}

    @rogue.delete("/rogue-writes/{rogue_id}", include_in_schema=False)
    async def hidden_rogue_write(rogue_id: str) -> None:
        return None

    app.include_router(rogue)
    found = set(write_routes(app)) - set(WRITE_ROUTES)
    assert found == {("POST", "/api/rogue-writes"), ("DELETE", "/api/rogue-writes/{rogue_id}")}
    assert not found & (set(SUCCESS) | set(REFUSALS))


def test_every_write_route_has_an_audit_case() -> None:
    """A write route added to the app without a success case and a refusal case here fails."""
    missing = [route_id(r) for r in WRITE_ROUTES if r not in SUCCESS]
    assert missing == [], f"write routes without an audit case (add one to SUCCESS): {missing}"
    missing = [route_id(r) for r in WRITE_ROUTES if r not in REFUSALS]
    assert missing == [], f"write routes without refusal cases (add them to REFUSALS): {missing}"
    stale = sorted(route_id(r) for r in set(SUCCESS) | set(REFUSALS) if r not in WRITE_ROUTES)
    assert stale == [], f"cases for routes the app does not have: {stale}"


def _success_params() -> list[Any]:
    params = []
    for route in WRITE_ROUTES:
        cases: list[Case | None] = list(SUCCESS.get(route, [])) or [None]
        for fn in cases:
            name = fn.__name__ if fn is not None else "NO AUDIT CASE"
            params.append(pytest.param(route, fn, id=f"{route_id(route)}: {name}"))
    return params


@pytest.fixture()
def ctx(api: Api, owner_sql: psycopg.Connection, owner_url: str, tenant_a: TenantFixture, tenant_b: TenantFixture,
        tmp_path: Path) -> Ctx:
    return Ctx(api, owner_sql, owner_url, tenant_a, tenant_b, tmp_path)


async def assert_chains_verify(c: Ctx) -> None:
    for t in (c.a, c.b):
        report = await verify_url(c.owner_url, t.id)
        assert report.ok, [bad.describe() for bad in report.bad]


@pytest.mark.parametrize("route, case", _success_params())
async def test_a_successful_write_appends_its_audit_entries(ctx: Ctx, route: Route, case: Case | None) -> None:
    assert case is not None, f"{route_id(route)} has no audit case: add one to SUCCESS in this module"
    b_before = tenant_total(ctx.db, ctx.b.id)
    await case(ctx)
    assert tenant_total(ctx.db, ctx.b.id) == b_before, "a write in tenant A added entries to tenant B"
    await assert_chains_verify(ctx)


@pytest.fixture()
def inactive_admin(owner_sql: psycopg.Connection, settings: Settings, tenant_a: TenantFixture) -> str:
    """A token of a deactivated admin of tenant A (inserted as the owner, as fixtures are)."""
    uid = uuid.uuid4()
    owner_sql.execute("INSERT INTO users (tenant_id, id, email, role, active, subject) "
                      "VALUES (%s, %s, %s, 'admin', false, %s)", (tenant_a.id, uid, new_email(), str(uid)))
    return mint_token(settings, tenant_a.id, str(uid))


@pytest.mark.parametrize("route", WRITE_ROUTES, ids=route_id)
async def test_a_refused_write_appends_no_audit_entry(ctx: Ctx, inactive_admin: str, route: Route) -> None:
    build = REFUSALS.get(route)
    assert build is not None, f"{route_id(route)} has no refusal cases: add them to REFUSALS in this module"
    world = World(await build_side(ctx.api, ctx.a), await build_side(ctx.api, ctx.b), inactive_admin)
    refusals = await build(ctx.api, world)
    assert any(r.status == 403 for r in refusals) and any(r.status == 422 for r in refusals)
    for refusal in refusals:
        totals = (tenant_total(ctx.db, ctx.a.id), tenant_total(ctx.db, ctx.b.id))
        r = await ctx.api.req(refusal.method, refusal.url, refusal.token, json=refusal.json, params=refusal.params)
        assert r.status_code == refusal.status, (refusal.why, r.status_code, r.text)
        if refusal.status == 200:  # a batch whose every item is refused or a repeat
            assert all(x["status"] in ("rejected", "duplicate") for x in r.json()["results"]), (refusal.why, r.text)
        assert count_all(ctx.db, r.headers["x-request-id"]) == 0, f"{refusal.why}: the refused write was audited"
        assert (tenant_total(ctx.db, ctx.a.id), tenant_total(ctx.db, ctx.b.id)) == totals, refusal.why
    await assert_chains_verify(ctx)


