"""The sweep: raises the exceptions that need time to pass (absence, shifts or breaks left
open), withdraws the ones whose cause is gone, and re-attributes the punches whose stored
attribution is not the pairing's (`engine.reconcile`). Each employee is evaluated in a
transaction of its own under the employee's row lock, like a punch write.

Two ranges, two scheduled jobs (`jobs/registry.py`): the last few days (`LOOKBACK`), where
deadlines fall as time passes (`sweep`), and the days of each employee's late punches
received since the previous pass (`sweep_late_punches`, `late_pages`): a clock's upload of
last week, whose shift left open or absence no punch write raises (a write raises only what
its punch decides, and more of the upload may still be on its way). Each tenant is swept on
its own (`_each_tenant`)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, date, datetime, time, timedelta
from uuid import UUID

from unifocus.audit.writer import AuditEntry, append
from unifocus.db.pool import Database
from unifocus.errors import ServiceUnavailable
from unifocus.jobs.scheduler import tenant_ids
from unifocus.observability import hooks
from unifocus.timeexceptions import engine

log = logging.getLogger("unifocus.jobs")

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


# Per employee (in id order, after $4, at most $5 of them), the UTC days of their late punches
# (migration 0017: its partial index's predicate is implied by this one) received since the
# tenant's last pass (less MARK_MARGIN), or within the look-back ($2) if that is later. One row
# per employee with its days in an array, a page at a time: a clock's upload of a year for
# every employee is 365 days x employees rows, and read whole (one row per day) it grew a
# worker by 106 MB for 1,000 employees x 300 days (bench/README.md).
LATE_QUERY = (
    "SELECT p.employee_id, array_agg(DISTINCT (p.ts AT TIME ZONE 'UTC')::date) AS days, now() AS read_at "
    "FROM punches p JOIN employees e ON e.tenant_id = p.tenant_id AND e.id = p.employee_id AND e.active "
    "WHERE p.tenant_id = $1 AND p.received_at - p.ts > interval '1 day' AND NOT p.voided "
    "AND p.received_at >= greatest($2, (SELECT t.late_swept_until - $3::interval FROM tenants t "
    "WHERE t.tenant_id = $1)) AND p.employee_id > $4 "
    "GROUP BY p.employee_id ORDER BY p.employee_id LIMIT $5"
)
# Employees per read of LATE_QUERY: each read scans the tenant's late punches since the mark
# again, so not one employee at a time either.
LATE_PAGE = 200
# A punch's transaction stamps `received_at` when it starts and may commit after a pass has
# read: the next pass reads this far back before the mark again.
MARK_MARGIN = timedelta(minutes=10)
# How far the late pass reaches into the look-back's days (evaluating a day twice changes
# nothing).
LATE_OVERLAP = timedelta(hours=1)
# At most this many days in one evaluation (one transaction holding the employee's lock).
WINDOW_DAYS = 7


def windows(days: list[date]) -> list[tuple[datetime, datetime]]:
    """The zones to evaluate for punches on these UTC days (sorted): each day with a punch's
    zone around it (`engine.PUNCH_ZONE`) either side, runs of days merged, split every
    `WINDOW_DAYS` days."""
    out: list[tuple[datetime, datetime]] = []
    run: list[date] = []
    for day in days:
        if run and (day - run[-1] > timedelta(days=1) or len(run) == WINDOW_DAYS):
            out.append(_zone(run))
            run = []
        run.append(day)
    if run:
        out.append(_zone(run))
    return out


def _zone(run: list[date]) -> tuple[datetime, datetime]:
    first = datetime.combine(run[0], time(0), UTC)
    return first - engine.PUNCH_ZONE, first + timedelta(days=len(run)) + engine.PUNCH_ZONE


async def late_pages(db: Database, tenant: UUID, now: datetime
                     ) -> AsyncIterator[tuple[datetime, dict[UUID, list[tuple[datetime, datetime]]]]]:
    """Each employee's zones of late punches received since the tenant's last pass, `LATE_PAGE`
    employees at a time, each page with the database's clock when it was read (`received_at`
    is stamped by that clock). The first page's is the mark for this pass once it is done
    (`mark_late_swept`); no page at all: nothing to mark (the next pass reads from the same
    mark, at most `LOOKBACK` back)."""
    after = UUID(int=0)
    while True:
        async with db.tenant_tx(tenant, readonly=True) as conn:
            rows = await conn.fetch(LATE_QUERY, tenant, now - LOOKBACK, MARK_MARGIN, after, LATE_PAGE)
        if not rows:
            return
        yield rows[0]["read_at"], {r["employee_id"]: windows(sorted(r["days"])) for r in rows}
        if len(rows) < LATE_PAGE:
            return
        after = rows[-1]["employee_id"]


async def mark_late_swept(db: Database, tenant: UUID, read_at: datetime) -> None:
    """Record that every late punch received before `read_at` (less the margin) has been
    evaluated: only after the pass, so a pass that fails is done again by the next one."""
    async with db.tenant_tx(tenant, readonly=False) as conn:
        await conn.execute("UPDATE tenants SET late_swept_until = greatest(late_swept_until, $2) "
                           "WHERE tenant_id = $1", tenant, read_at)


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
    """One tenant's share of both jobs, in one call: its employees with a schedule or a punch
    near now, then the days of its late punches (the tests' way to sweep one tenant)."""
    return await sweep_recent(db, tenant, now, chains) + await sweep_late(db, tenant, now, chains)


async def sweep_recent(db: Database, tenant: UUID, now: datetime, chains: int = 8) -> int:
    """The look-back: the tenant's employees with a schedule or a punch near now."""
    # A day before the lookback: a punch just before it can open the session whose break is
    # overdue inside it (and schedule dates are local).
    since, until = now - LOOKBACK - timedelta(days=1), now
    raised = 0
    for employee_id in await _employees_to_sweep(db, tenant, since, until):
        raised += await sweep_employee(db, tenant, employee_id, now, chains)
    return raised


async def sweep_late(db: Database, tenant: UUID, now: datetime, chains: int = 8) -> int:
    """The days of the tenant's late punches received since its last pass, before the
    look-back (which `sweep_recent` evaluates)."""
    raised = 0
    read_at: datetime | None = None
    async for page_read_at, late in late_pages(db, tenant, now):
        read_at = read_at or page_read_at
        for employee_id, zones in late.items():
            for start, end in zones:
                # The look-back evaluates the rest; it runs on the same ticks but not at the same
                # instant (a tick skipped, a slow start), hence the overlap.
                end = min(end, now - LOOKBACK + LATE_OVERLAP)
                if start < end:
                    raised += await sweep_employee(db, tenant, employee_id, now, chains, (start, end))
    if read_at is not None:
        await mark_late_swept(db, tenant, read_at)
    return raised


class SweepFailed(RuntimeError):
    """Some tenants' passes failed (each logged with its traceback); the others were done."""


# Tenants in a row whose pass found the database unavailable before the run gives up: an
# outage fails the run at once instead of one timeout and traceback per tenant (a single
# tenant's long lock wait also ends as "unavailable", and must not stop the others).
UNAVAILABLE_IN_A_ROW = 3


async def _each_tenant(db: Database, now: datetime | None, chains: int, what: str,
                       one: Callable[[Database, UUID, datetime, int], Awaitable[int]]) -> int:
    """`one` for every tenant, each on its own: a tenant whose pass fails (a poison row, a
    lock timeout) is logged and the next tenant's goes on; the run then fails as a whole, so
    the job is counted as failed (`unifocus_job_runs_total`) and alerted on."""
    now = now or datetime.now(UTC)
    raised, failed, unavailable = 0, [], 0
    for tenant in await tenant_ids(db):
        try:
            raised += await one(db, tenant, now, chains)  # type: ignore[arg-type]
            unavailable = 0
        except Exception as exc:
            # Every pass reads and writes through `db.tenant_tx`, which turns the driver's
            # unavailability errors into ServiceUnavailable.
            unavailable = unavailable + 1 if isinstance(exc, ServiceUnavailable) else 0
            if unavailable >= UNAVAILABLE_IN_A_ROW:
                raise
            log.exception("the exception sweep's %s of tenant %s failed", what, tenant)
            failed.append(str(tenant))
    if failed:
        shown = ", ".join(failed[:10]) + (f" and {len(failed) - 10} more" if len(failed) > 10 else "")
        raise SweepFailed(f"the {what} of {len(failed)} tenant(s) failed ({shown}); "
                          f"{raised} exceptions raised for the others")
    return raised


async def sweep(db: Database, now: datetime | None = None, chains: int = 8) -> int:
    """The job `exception-sweep`: every tenant's look-back; returns exceptions raised."""
    return await _each_tenant(db, now, chains, "look-back", sweep_recent)


async def sweep_late_punches(db: Database, now: datetime | None = None, chains: int = 8) -> int:
    """The job `exception-sweep-late`: every tenant's late punches; returns exceptions raised.
    A job of its own, under its own lock, because its pass can be long (measured here: 200
    employees' uploads of 100 days, 3,000 zones, took 79 s, ~26 ms a zone; a year for 1,000
    employees would be ~53,000 zones, some 20 minutes): the look-back's ticks of every tenant
    go on meanwhile."""
    return await _each_tenant(db, now, chains, "late-punch pass", sweep_late)
