"""Helpers for the timesheet tests: schedules through the API, punches and exceptions inserted
as the owner (the punch and exception endpoints are not this feature's)."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import date, datetime
from zoneinfo import ZoneInfo

import psycopg

from tests.conftest import Api, TenantFixture

IN, OUT, BS, BE = "clock_in", "clock_out", "break_start", "break_end"


def at(tz: str, day: str, hhmm: str) -> datetime:
    """A local wall-clock time in `tz` as an aware datetime (fold=0)."""
    return datetime.fromisoformat(f"{day}T{hhmm}").replace(tzinfo=ZoneInfo(tz))


async def new_employee(
    api: Api,
    tenant: TenantFixture,
    *,
    timezone: str | None = None,
    first: str = "Pat",
    last: str | None = None,
    external_id: str | None = None,
) -> uuid.UUID:
    body: dict[str, object] = {"firstName": first, "lastName": last or f"L{uuid.uuid4().hex[:8]}"}
    if timezone:
        body["timezone"] = timezone
    if external_id:
        body["externalId"] = external_id
    r = await api.req("POST", "/api/employees", tenant.manager, json=body)
    assert r.status_code == 201, r.text
    return uuid.UUID(r.json()["id"])


async def schedule(
    api: Api,
    tenant: TenantFixture,
    employee_id: uuid.UUID,
    start: str,
    end: str,
    *shifts: tuple[int, str, str],
) -> dict:
    body = {
        "employeeId": str(employee_id),
        "startDate": start,
        "endDate": end,
        "shifts": [{"dayOfWeek": d, "startTime": s, "endTime": e} for d, s, e in shifts],
    }
    r = await api.req("POST", "/api/schedules", tenant.manager, json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def insert_punches(
    sql: psycopg.Connection,
    tenant: TenantFixture,
    employee_id: uuid.UUID,
    punches: list[tuple[str, datetime] | tuple[str, datetime, bool]],
) -> list[uuid.UUID]:
    ids = []
    with sql.cursor() as cur:
        for p in punches:
            kind, ts = p[0], p[1]
            voided = bool(p[2]) if len(p) > 2 else False  # type: ignore[misc]
            pid = uuid.uuid4()
            cur.execute(
                "INSERT INTO punches (tenant_id, id, employee_id, type, ts, source, voided, void_reason) "
                "VALUES (%s, %s, %s, %s, %s, 'manual', %s, %s)",
                (tenant.id, pid, employee_id, kind, ts, voided, "test" if voided else None),
            )
            ids.append(pid)
    return ids


def insert_exception(
    sql: psycopg.Connection,
    tenant: TenantFixture,
    employee_id: uuid.UUID,
    kind: str,
    *,
    status: str = "pending",
    shift_id: str | None = None,
    shift_date: str | None = None,
    punch_id: uuid.UUID | None = None,
    details: dict | None = None,
) -> uuid.UUID:
    xid = uuid.uuid4()
    key = f"occ:{shift_id}:{shift_date}" if shift_id else f"punch:{punch_id}"
    if status == "withdrawn":
        key += f":{xid}"
    sql.execute(
        "INSERT INTO exceptions (tenant_id, id, employee_id, type, status, shift_id, shift_date, punch_id, "
        "dedupe_key, details) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            tenant.id,
            xid,
            employee_id,
            kind,
            status,
            shift_id,
            shift_date,
            punch_id,
            key,
            json.dumps(details or {}),
        ),
    )
    return xid


async def timesheet(api: Api, token: str, employee_id: uuid.UUID | None, first: str, last: str) -> dict:
    q = f"/api/timesheets?from={first}&to={last}"
    if employee_id is not None:
        q += f"&employeeId={employee_id}"
    r = await api.req("GET", q, token)
    assert r.status_code == 200, r.text
    return dict(r.json())


def day(sheet: dict, d: str) -> dict:
    return next(x for x in sheet["days"] if x["date"] == d)


def figures(d: dict) -> tuple[int, int, int, int]:
    return d["scheduledMinutes"], d["workedMinutes"], d["breakMinutes"], d["overtimeMinutes"]


def parse_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def dates(first: str, last: str) -> list[str]:
    a, b = date.fromisoformat(first), date.fromisoformat(last)
    return [date.fromordinal(n).isoformat() for n in range(a.toordinal(), b.toordinal() + 1)]
