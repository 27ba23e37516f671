"""The sweep: raises the exceptions that need time to pass (absence, shifts or breaks left
open), withdraws the ones whose cause is gone, and re-attributes the punches whose stored
attribution is not the pairing's (`engine.reconcile`). Each employee is evaluated in a
transaction of its own under the employee's row lock, like a punch write.

Two ranges: the last few days (`LOOKBACK`), where deadlines fall as time passes, and the
range of each employee's late punches received within that look-back (`late_ranges`): a
clock's upload of last week, whose shift left open or absence no punch write raises (a write
raises only what its punch decides, and more of the upload may still be on its way)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from uuid import UUID

from unifocus.audit.writer import AuditEntry, append
from unifocus.db.pool import Database
from unifocus.jobs.scheduler import tenant_ids
from unifocus.observability import hooks
from unifocus.timeexceptions import engine

# How far back the sweep looks: deadlines are at most a day after an occurrence ends, and a
# sweep missed for a day or two (an outage) is caught up.
LOOKBACK = timedelta(days=3)


async def _employees_to_sweep(db: Database, tenant: UUID, since: datetime, until: datetime) -> list[UUID]:
    """Active employees with a live schedule on a UTC date from `since`'s to the day after
    `until`'s (absences, shifts left open; schedule dates are local), or a punch in
    [since, until]: a session that matched no occurrence (no schedule at all) can still leave a
    break open, and only the sweep raises that."""
    async with db.tenant_tx(tenant, readonly=True) as conn:
        rows = await conn.fetch(
            "SELECT e.id FROM employees e WHERE e.tenant_id = $1 AND e.active AND e.id IN ("
            " SELECT s.employee_id FROM schedules s WHERE s.tenant_id = $1 AND s.deleted_at IS NULL"
            " AND s.start_date <= $3::timestamptz::date + 1 AND s.end_date >= $2::timestamptz::date"
            " UNION"
            " SELECT p.employee_id FROM punches p WHERE p.tenant_id = $1 AND NOT p.voided"
            " AND p.ts >= $2 AND p.ts <= $3)",
            tenant, since, until,
        )
    return [r["id"] for r in rows]


# Late punches (migration 0017's partial index: its predicate is implied by this one) received
# since $2, as each employee's first and last instant.
LATE_QUERY = (
    "SELECT employee_id, min(ts) AS first, max(ts) AS last FROM punches "
    "WHERE tenant_id = $1 AND received_at >= $2 AND received_at - ts > interval '1 day' AND NOT voided "
    "GROUP BY employee_id"
)


async def late_ranges(db: Database, tenant: UUID, since: datetime) -> dict[UUID, tuple[datetime, datetime]]:
    """Each employee's zone of late punches received since `since`: from a day before the
    first to a day after the last (a punch's own zone, `engine.PUNCH_ZONE`)."""
    async with db.tenant_tx(tenant, readonly=True) as conn:
        rows = await conn.fetch(LATE_QUERY, tenant, since)
    return {r["employee_id"]: (r["first"] - engine.PUNCH_ZONE, r["last"] + engine.PUNCH_ZONE) for r in rows}


async def sweep_employee(db: Database, tenant: UUID, employee_id: UUID, now: datetime, chains: int,
                         zone: tuple[datetime, datetime] | None = None) -> int:
    """Evaluate one employee's `zone` (default: the look-back up to now) with the time-based
    rules, as of `now`; returns the exceptions raised."""
    request_id = f"sweep-{uuid.uuid4().hex}"
    start, end = zone or (now - LOOKBACK, now)
    async with db.tenant_tx(tenant, readonly=False) as conn:
        ev = await engine.evaluate_zone(conn, tenant, employee_id, start, end, now)
        entries: list[AuditEntry] = []
        created = await engine.reconcile(conn, ev, entries, include_time_based=True)
        await append(conn, tenant, None, request_id, entries, chains)
    hooks.audit_written(len(entries))
    return len(created)


async def sweep_tenant(db: Database, tenant: UUID, now: datetime, chains: int = 8) -> int:
    """One tenant's share of the sweep: its employees with a schedule or a punch near now."""
    # A day before the lookback: a punch just before it can open the session whose break is
    # overdue inside it (and schedule dates are local).
    since, until = now - LOOKBACK - timedelta(days=1), now
    raised = 0
    for employee_id in await _employees_to_sweep(db, tenant, since, until):
        raised += await sweep_employee(db, tenant, employee_id, now, chains)
    for employee_id, (start, end) in (await late_ranges(db, tenant, now - LOOKBACK)).items():
        if start < now - LOOKBACK:  # else the look-back above has just evaluated it
            raised += await sweep_employee(db, tenant, employee_id, now, chains, (start, min(end, now - LOOKBACK)))
    return raised


async def sweep(db: Database, now: datetime | None = None, chains: int = 8) -> int:
    """Every tenant, every active employee with a schedule or a punch near now; returns
    exceptions raised."""
    now = now or datetime.now(UTC)
    raised = 0
    for tenant in await tenant_ids(db):
        raised += await sweep_tenant(db, tenant, now, chains)  # type: ignore[arg-type]
    return raised
