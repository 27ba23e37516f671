"""Tenant A's rows made through the API (so they are real rows the service wrote), the values
that must never reach tenant B, minimal valid request bodies derived from the OpenAPI
document, and a snapshot of the database to prove a refused request wrote nothing."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg

from tests.conftest import Api, TenantFixture
from tests.security import spec

TABLES = ("tenants", "employees", "users", "schedules", "shifts", "punches", "exceptions",
          "idempotency_records", "audit_log")


@dataclass
class TenantRows:
    fixture: TenantFixture
    ids: dict[str, str] = field(default_factory=dict)
    strings: list[str] = field(default_factory=list)

    def secrets(self) -> list[str]:
        """Every id and distinctive string of A that B must never see."""
        f = self.fixture
        fixed = [str(x) for x in (f.id, f.admin_id, f.manager_id, f.employee_user_id, f.employee_id)]
        return sorted(set(fixed + list(self.ids.values()) + self.strings))


async def seed_through_api(api: Api, t: TenantFixture) -> TenantRows:
    """An employee (with externalId and email), a user, a schedule with a Monday shift, a late
    clock_in (which raises a late_arrival exception), all created by A's staff."""
    tag = uuid.uuid4().hex[:10]
    rows = TenantRows(t)
    r = await api.req("POST", "/api/employees", t.manager, json={
        "firstName": f"Alicefirst{tag}", "lastName": f"Alicelast{tag}", "externalId": f"EXT-A-{tag}",
        "email": f"alice.{tag}@tenant-a.example"})
    assert r.status_code == 201, r.text
    employee = r.json()
    rows.strings += [employee["firstName"], employee["lastName"], employee["externalId"], employee["email"]]
    r = await api.req("POST", "/api/users", t.admin, json={
        "email": f"user.{tag}@tenant-a.example", "role": "employee", "employeeId": employee["id"]})
    assert r.status_code == 201, r.text
    user = r.json()
    rows.strings.append(user["email"])
    r = await api.req("POST", "/api/schedules", t.manager, json={
        "employeeId": str(t.employee_id), "name": f"Sched-A-{tag}", "startDate": "2026-03-01",
        "endDate": "2026-03-31", "shifts": [{"dayOfWeek": 1, "startTime": "09:00", "endTime": "17:00"}]})
    assert r.status_code == 201, r.text
    schedule = r.json()
    rows.strings.append(schedule["name"])
    r = await api.req("POST", "/api/punches", t.employee, json={
        "employeeId": str(t.employee_id), "type": "clock_in", "timestamp": "2026-03-02T09:30:00-05:00",
        "device": f"dev-A-{tag}"})
    assert r.status_code == 201, r.text
    punch = r.json()
    rows.strings.append(punch["device"])
    [exception] = [x for x in punch["exceptions"] if x["type"] == "late_arrival"]
    rows.ids = {
        "employee_id": str(t.employee_id),
        "other_employee_id": employee["id"],
        "user_id": user["id"],
        "schedule_id": schedule["id"],
        "shift_id": schedule["shifts"][0]["id"],
        "punch_id": punch["id"],
        "exception_id": exception["id"],
        "tenant_id": str(t.id),
    }
    return rows


def id_for(name: str, rows: TenantRows) -> str:
    """A's id for a parameter name: `employee_id`, `employeeId`, `scheduleId`, ... A name with
    no mapping fails loudly, so a new kind of id cannot slip through untested."""
    snake = "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")
    if snake not in rows.ids:
        raise AssertionError(f"no tenant-A id for parameter {name!r}: add it to seed_through_api")
    return rows.ids[snake]


def is_id_param(name: str) -> bool:
    return name.endswith("_id") or name.endswith("Id")


# --- minimal valid bodies from the request schema ---------------------------------------------

BODY_OVERRIDES: dict[str, dict[str, Any]] = {
    # Real changes, so a leak would also be a write: each must still answer 404.
    "patch_employee_api_employees__employee_id__patch": {"firstName": "Mallory", "externalId": "MALLORY"},
    "patch_user_api_users__user_id__patch": {"role": "admin", "active": True},
    "resolve_exception_api_exceptions__exception_id__resolve_put": {"status": "approved", "note": "probe"},
}
QUERY_VALUES = {"reason": "cross-tenant probe", "from": "2026-03-01", "to": "2026-03-08"}


def minimal(schema: dict[str, Any], uuid_value: str) -> Any:
    schema = spec.resolve(schema)
    if "anyOf" in schema:
        options = [o for o in schema["anyOf"] if spec.resolve(o).get("type") != "null"]
        return minimal(options[0], uuid_value)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        return {name: minimal(props[name], uuid_value) for name in schema.get("required", [])}
    if kind == "array":
        return [minimal(schema["items"], uuid_value) for _ in range(schema.get("minItems", 0))]
    if kind == "integer":
        return max(schema.get("minimum", 1), 1)
    if kind == "number":
        return 1
    if kind == "boolean":
        return True
    if schema.get("examples"):  # a string with a pattern (HH:MM) documents a valid example
        return schema["examples"][0]
    fmt = schema.get("format")
    return {"uuid": uuid_value, "date": "2026-03-02", "date-time": "2026-03-02T14:00:00Z", "time": "09:00",
            "email": "probe@example.com"}.get(fmt or "", "x" * max(schema.get("minLength", 1), 1))


def body_for(op: dict[str, Any], uuid_value: str) -> Any:
    if op["operationId"] in BODY_OVERRIDES:
        return BODY_OVERRIDES[op["operationId"]]
    content = op.get("requestBody", {}).get("content", {}).get("application/json")
    if content is None:
        return None
    return minimal(content["schema"], uuid_value) or {}


# --- leaks and writes ---------------------------------------------------------------------------


def visible_text(response: httpx.Response) -> str:
    """The body and headers, minus the problem's `instance` when it only echoes the path the
    caller sent (the caller already knows its own request)."""
    text = response.text
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if isinstance(body, dict) and body.get("instance") == response.request.url.path:
        body.pop("instance")
        text = json.dumps(body)
    headers = " ".join(f"{k}: {v}" for k, v in response.headers.items() if k.lower() != "location")
    return text + " " + headers + " " + response.headers.get("location", "")


def leaks(response: httpx.Response, secrets: list[str]) -> list[str]:
    haystack = visible_text(response).lower()
    return [s for s in secrets if s.lower() in haystack]


def snapshot(owner: psycopg.Connection, tenant: uuid.UUID | None = None) -> dict[str, Any]:
    """Row counts of every table (all tenants), and A's rows as text when `tenant` is given."""
    out: dict[str, Any] = {}
    for table in TABLES:
        out[table] = owner.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608
        if tenant is not None and table != "idempotency_records":
            rows = owner.execute(
                f"SELECT t::text FROM {table} t WHERE tenant_id = %s ORDER BY 1", (tenant,)  # noqa: S608
            ).fetchall()
            out[f"{table}:rows"] = [r[0] for r in rows]
    return out
