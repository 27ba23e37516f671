"""The sweep: raises the exceptions that need time to pass (absence, shifts or breaks left
open) and withdraws the ones whose cause is gone. Each employee is evaluated in a
transaction of its own under the employee's row lock, like a punch write."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from uuid import UUID

from unifocus.audit.writer import AuditEntry, append
from unifocus.db.pool import Database
from unifocus.jobs.scheduler import tenant_ids
from unifocus.observability import hooks
from unifocus.timeexceptions import engine

# How far back the sweep looks: deadlines are at most a day after an occurrence ends, and a
# sweep missed for a day or two (an outage) is caught up.
LOOKBACK = timedelta(days=3)


async def _employees_with_schedules(db: Database, tenant: UUID, since: date, until: date) -> list[UUID]:
    async with db.tenant_tx(tenant, readonly=True) as conn:
        rows = await conn.fetch(
            "SELECT DISTINCT s.employee_id FROM schedules s JOIN employees e "
            "ON e.tenant_id = s.tenant_id AND e.id = s.employee_id "
            "WHERE s.tenant_id = $1 AND s.deleted_at IS NULL AND e.active "
            "AND s.start_date <= $3 AND s.end_date >= $2",
            tenant, since, until,
        )
    return [r["employee_id"] for r in rows]


async def sweep_employee(db: Database, tenant: UUID, employee_id: UUID, now: datetime, chains: int) -> int:
    request_id = f"sweep-{uuid.uuid4().hex}"
    async with db.tenant_tx(tenant, readonly=False) as conn:
        ev = await engine.evaluate_zone(conn, tenant, employee_id, now - LOOKBACK, now, now)
        entries: list[AuditEntry] = []
        created = await engine.reconcile(conn, ev, entries, include_time_based=True)
        await append(conn, tenant, None, request_id, entries, chains)
    hooks.audit_written(len(entries))
    return len(created)


async def sweep(db: Database, now: datetime | None = None, chains: int = 8) -> int:
    """Every tenant, every active employee with a schedule near now; returns exceptions raised."""
    now = now or datetime.now(UTC)
    raised = 0
    since, until = (now - LOOKBACK - timedelta(days=1)).date(), (now + timedelta(days=1)).date()
    for tenant in await tenant_ids(db):
        for employee_id in await _employees_with_schedules(db, tenant, since, until):  # type: ignore[arg-type]
            raised += await sweep_employee(db, tenant, employee_id, now, chains)  # type: ignore[arg-type]
    return raised
