"""Seeding the demo tenants: the tenant and its first admin as the CLI creates them, then
everything else through the real API in-process, so the data is validated, idempotent and
audited exactly like user traffic.

Re-runs never duplicate: a tenant whose demo data is complete is only looked up (tokens are
re-minted); an incomplete one (a start interrupted half-way) is finished, each step finding
what exists first (employees by externalId, users by email, schedules by name) and punches
sent as a device batch whose (device, clientPunchId) pairs the API deduplicates. Idempotency
keys are derived from stable names too, so a retried request within 24 h is a replay.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import httpx

from unifocus.auth.tokens import mint_token
from unifocus.db.urls import app_url
from unifocus.demo import scenario
from unifocus.demo.scenario import DemoTenant
from unifocus.settings import Settings

log = logging.getLogger("unifocus.demo")

TOKEN_TTL_MINUTES = 24 * 60  # re-minted on every start; a demo token outliving one hour helps
_LOCK = 0x756E69666F637573  # pg_advisory_lock key: one seeder at a time per database


class DemoSeedError(RuntimeError):
    pass


@dataclass
class TenantState:
    spec: DemoTenant
    tenant_id: UUID | None = None
    users: dict[str, UUID] = field(default_factory=dict)  # lower(email) -> user id
    admin_id: UUID | None = None
    punches: int = 0

    def email(self, local: str) -> str:
        return f"{local}@{self.spec.domain}"

    @property
    def complete(self) -> bool:
        wanted = [self.email(scenario.MANAGER_EMAIL)] + [
            self.email(self.spec.staff[i].email_local) for i in scenario.EMPLOYEE_USERS]
        return (self.admin_id is not None and all(e in self.users for e in wanted)
                and self.punches >= scenario.planned_count(self.spec))


async def _load_state(owner: asyncpg.Connection, spec: DemoTenant) -> TenantState:
    """What exists already, read as the owner (a superuser: RLS does not apply)."""
    state = TenantState(spec)
    state.tenant_id = await owner.fetchval(
        "SELECT tenant_id FROM tenants WHERE name = $1 ORDER BY created_at, tenant_id LIMIT 1", spec.name)
    if state.tenant_id is None:
        return state
    rows = await owner.fetch("SELECT id, lower(email) AS email, role FROM users WHERE tenant_id = $1 AND active "
                             "ORDER BY created_at, id", state.tenant_id)
    state.users = {r["email"]: r["id"] for r in rows}
    admins = [r["id"] for r in rows if r["role"] == "admin"]
    state.admin_id = state.users.get(state.email("admin"), admins[0] if admins else None)
    state.punches = await owner.fetchval(
        "SELECT count(*) FROM punches WHERE tenant_id = $1 AND device = $2", state.tenant_id, scenario.DEVICE)
    return state


async def _create_tenant(settings: Settings, owner_url: str, state: TenantState) -> None:
    from unifocus.tenants.service import create_with_admin

    conn = await asyncpg.connect(app_url(settings, owner_url))
    try:
        async with conn.transaction():
            state.tenant_id, state.admin_id = await create_with_admin(
                conn, state.spec.name, state.spec.timezone, state.email("admin"),
                f"demo-{uuid.uuid4().hex}", settings.audit_chains)
    finally:
        await conn.close()
    log.info("demo tenant %s created: %s", state.spec.name, state.tenant_id)


class _Api:
    def __init__(self, client: httpx.AsyncClient, token: str, key_prefix: str) -> None:
        self.client, self.token, self.key_prefix = client, token, key_prefix

    async def call(self, method: str, path: str, key: str | None = None, body: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"}
        if key is not None:
            headers["Idempotency-Key"] = f"{self.key_prefix}:{key}"
        r = await self.client.request(method, path, headers=headers, json=body)
        if r.status_code not in (200, 201):
            raise DemoSeedError(f"demo seed: {method} {path} answered {r.status_code}: {r.text[:500]}")
        return r.json()

    async def items(self, path: str) -> list[dict[str, Any]]:
        return list((await self.call("GET", path))["items"])


async def _day1(owner: asyncpg.Connection, state: TenantState) -> date:
    """Day 1 of the demo week: the existing demo schedules' start, else seven days ago."""
    existing = await owner.fetchval(
        "SELECT min(start_date) FROM schedules WHERE tenant_id = $1 AND name = $2 AND deleted_at IS NULL",
        state.tenant_id, scenario.SCHEDULE_NAME)
    return existing or scenario.first_day(state.spec.timezone, datetime.now(UTC))


async def _seed_tenant(client: httpx.AsyncClient, app: Any, settings: Settings, state: TenantState,
                       day1: date) -> None:
    spec, tenant_id, admin_id = state.spec, state.tenant_id, state.admin_id
    assert tenant_id is not None and admin_id is not None
    prefix = f"demo:{spec.slug}:{day1.isoformat()}"
    admin = _Api(client, mint_token(settings, tenant_id, str(admin_id)), prefix)

    employees = {e["externalId"]: UUID(e["id"]) for e in await admin.items("/api/employees?limit=500")}
    for s in spec.staff:
        if s.external_id not in employees:
            created = await admin.call("POST", "/api/employees", f"employee:{s.external_id}", {
                "firstName": s.first_name, "lastName": s.last_name, "externalId": s.external_id,
                "email": state.email(s.email_local)})
            employees[s.external_id] = UUID(created["id"])

    users = {u["email"].lower(): UUID(u["id"]) for u in await admin.items("/api/users?limit=500")}
    logins: list[tuple[str, str, UUID | None]] = [(state.email(scenario.MANAGER_EMAIL), "manager", None)]
    logins += [(state.email(spec.staff[i].email_local), "employee", employees[spec.staff[i].external_id])
               for i in scenario.EMPLOYEE_USERS]
    for email, role, employee_id in logins:
        if email not in users:
            body = {"email": email, "role": role, "employeeId": str(employee_id) if employee_id else None}
            users[email] = UUID((await admin.call("POST", "/api/users", f"user:{email}", body))["id"])
    state.users.update(users)

    manager = _Api(client, mint_token(settings, tenant_id, str(users[logins[0][0]])), prefix)
    for index, s in enumerate(spec.staff):
        employee_id = employees[s.external_id]
        schedules = await manager.items(f"/api/schedules?employeeId={employee_id}&limit=500")
        if not any(x.get("name") == scenario.SCHEDULE_NAME for x in schedules):
            await manager.call("POST", "/api/schedules", f"schedule:{s.external_id}", {
                "employeeId": str(employee_id), "name": scenario.SCHEDULE_NAME, "startDate": day1.isoformat(),
                "endDate": (day1 + timedelta(days=s.last_day - 1)).isoformat(),
                "shifts": [{"dayOfWeek": d, "startTime": s.start, "endTime": s.end} for d in range(1, 8)]})
        plan = scenario.punch_plan(spec, index, day1)
        batch = [{"clientPunchId": p.client_punch_id, "employeeId": str(employee_id), "type": p.type,
                  "timestamp": p.timestamp.isoformat(), "device": scenario.DEVICE} for p in plan]
        answer = await manager.call("POST", "/api/punches/batch", f"punches:{s.external_id}", {"punches": batch})
        rejected = [r for r in answer["results"] if r["status"] == "rejected"]
        if rejected:
            raise DemoSeedError(f"demo seed: punches of {s.external_id} rejected: {rejected[:3]}")

    await _sweep(app, settings, tenant_id, list(employees.values()))
    log.info("demo tenant %s seeded", spec.name)


async def _sweep(app: Any, settings: Settings, tenant_id: UUID, employee_ids: list[UUID]) -> None:
    """The sweep job, limited to this tenant's demo staff (other tenants are not ours to touch):
    raises the time-based exceptions, the absence and the shift left open."""
    from unifocus.timeexceptions.sweep import sweep_employee

    now = datetime.now(UTC)
    for employee_id in employee_ids:
        await sweep_employee(app.state.db, tenant_id, employee_id, now, settings.audit_chains)


@asynccontextmanager
async def _in_process_api(settings: Settings) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    """The real app, lifespan entered, behind an in-process transport. No scheduler (the
    served app runs it) and no rate limits (a seeding burst is not a client misbehaving)."""
    from unifocus.app import create_app

    app = create_app(settings.model_copy(update={"scheduler_enabled": False, "rate_limit_enabled": False}))
    # Dozens of seeding requests' access lines would drown the summary printed next.
    quiet = [logging.getLogger(name) for name in ("unifocus.access", "httpx")]
    levels = [logger.level for logger in quiet]
    for logger in quiet:
        logger.setLevel(logging.WARNING)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://demo.invalid") as client:
                yield app, client
    finally:
        for logger, level in zip(quiet, levels, strict=True):
            logger.setLevel(level)


def _summary(settings: Settings, state: TenantState, seeded: bool) -> dict[str, Any]:
    spec, tenant_id = state.spec, state.tenant_id
    assert tenant_id is not None and state.admin_id is not None

    def token(user_id: UUID) -> str:
        return mint_token(settings, tenant_id, str(user_id), TOKEN_TTL_MINUTES)

    employee_email = state.email(spec.staff[scenario.EMPLOYEE_USERS[0]].email_local)
    users = {
        "admin": state.admin_id,
        "manager": state.users[state.email(scenario.MANAGER_EMAIL)],
        "employee": state.users[employee_email],
    }
    return {
        "name": spec.name,
        "timezone": spec.timezone,
        "tenantId": str(tenant_id),
        "seeded": seeded,
        "userIds": {role: str(user_id) for role, user_id in users.items()},
        "tokens": {role: token(user_id) for role, user_id in users.items()},
    }


async def seed_demo(settings: Settings, owner_url: str) -> list[dict[str, Any]]:
    """Create the demo tenants once (later calls find them and only re-mint tokens); returns
    per tenant {name, timezone, tenantId, seeded, userIds and tokens: {admin, manager,
    employee}}, where `seeded` says whether this call wrote any of the tenant's data (false:
    found complete). The tokens are signed with `settings`' secret."""
    if settings.jwks_url:
        raise DemoSeedError("the demo mints its own HS256 tokens: unset UNIFOCUS_JWKS_URL")
    if settings.database_url is None and settings.app_database_url is None:
        settings = settings.model_copy(update={"database_url": owner_url})
    owner = await asyncpg.connect(owner_url)
    try:
        await owner.execute("SELECT pg_advisory_lock($1)", _LOCK)
        states = [await _load_state(owner, spec) for spec in scenario.TENANTS]
        todo = [s for s in states if not s.complete]
        if todo:
            for state in todo:
                if state.tenant_id is None:
                    await _create_tenant(settings, owner_url, state)
            async with _in_process_api(settings) as (app, client):
                days = [await _day1(owner, state) for state in todo]
                await asyncio.gather(*(_seed_tenant(client, app, settings, state, day1)
                                       for state, day1 in zip(todo, days, strict=True)))
        return [_summary(settings, s, any(s is t for t in todo)) for s in states]
    finally:
        await owner.close()  # also releases the advisory lock
