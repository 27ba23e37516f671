"""The exception engine on the database: load one employee's facts, evaluate the pure rules,
and reconcile the stored exceptions with what should exist.

Evaluation reads a wide window of facts (so sessions crossing its edges pair correctly) and
reconciles only a narrower zone inside it (so edge effects never raise or withdraw anything).
Callers hold the employee's row lock (`lock_employee`), which serialises every evaluation of
one employee: punch writes, voids and the sweep never interleave.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import asyncpg
import orjson

from unifocus.audit.writer import AuditEntry
from unifocus.errors import NotFound
from unifocus.observability import hooks
from unifocus.schedules.occurrences import Occurrence, ScheduleSpan, WeeklyShift, occurrences
from unifocus.timeexceptions.pairing import PunchFact, pair_punches
from unifocus.timeexceptions.policy import Policy
from unifocus.timeexceptions.rules import Finding, evaluate
from unifocus.timezones import zone

# Facts are read this far around the zone being reconciled.
READ_MARGIN = timedelta(hours=48)
# The zone reconciled around a punch (punches and occurrences this close to it).
PUNCH_ZONE = timedelta(hours=24)

EXCEPTION_COLS = (
    "tenant_id, id, employee_id, type, status, shift_id, shift_date, punch_id, dedupe_key, details, "
    "created_at, resolved_by, resolved_at, note"
)


@dataclass(frozen=True)
class EmployeeContext:
    tenant_id: UUID
    employee_id: UUID
    tz: ZoneInfo
    policy: Policy


async def lock_employee(conn: asyncpg.Connection, tenant_id: UUID, employee_id: UUID) -> EmployeeContext:
    """Lock the employee row (serialising its evaluations) and read its zone and policy."""
    row = await conn.fetchrow(
        "SELECT e.timezone AS etz, t.timezone AS ttz, t.policy FROM employees e "
        "JOIN tenants t ON t.tenant_id = e.tenant_id "
        "WHERE e.tenant_id = $1 AND e.id = $2 FOR UPDATE OF e",
        tenant_id, employee_id,
    )
    if row is None:
        raise NotFound("employeeId names no employee of this tenant.")
    policy = Policy.from_json(orjson.loads(row["policy"]) if row["policy"] else {})
    return EmployeeContext(tenant_id, employee_id, zone(row["etz"] or row["ttz"]), policy)


async def load_occurrences(
    conn: asyncpg.Connection, ctx: EmployeeContext, first: date, last: date
) -> list[Occurrence]:
    rows = await conn.fetch(
        "SELECT s.id AS schedule_id, s.start_date, s.end_date, sh.id, sh.day_of_week, sh.start_time, sh.end_time "
        "FROM schedules s JOIN shifts sh ON sh.tenant_id = s.tenant_id AND sh.schedule_id = s.id "
        "WHERE s.tenant_id = $1 AND s.employee_id = $2 AND s.deleted_at IS NULL AND sh.deleted_at IS NULL "
        "AND s.start_date <= $4 AND s.end_date >= $3",
        ctx.tenant_id, ctx.employee_id, first, last,
    )
    spans: dict[UUID, ScheduleSpan] = {}
    shifts: dict[UUID, list[WeeklyShift]] = {}
    for r in rows:
        spans.setdefault(r["schedule_id"], ScheduleSpan(r["schedule_id"], r["start_date"], r["end_date"]))
        shifts.setdefault(r["schedule_id"], []).append(
            WeeklyShift(r["id"], r["schedule_id"], r["day_of_week"], r["start_time"], r["end_time"])
        )
    full = [ScheduleSpan(s.id, s.start_date, s.end_date, tuple(shifts[s.id])) for s in spans.values()]
    return occurrences(full, ctx.tz, first, last)


async def load_punches(
    conn: asyncpg.Connection, ctx: EmployeeContext, start: datetime, end: datetime
) -> list[PunchFact]:
    rows = await conn.fetch(
        "SELECT id, type, ts FROM punches WHERE tenant_id = $1 AND employee_id = $2 "
        "AND ts >= $3 AND ts < $4 AND NOT voided",
        ctx.tenant_id, ctx.employee_id, start, end,
    )
    return [PunchFact(r["id"], r["type"], r["ts"]) for r in rows]


@dataclass
class Evaluation:
    ctx: EmployeeContext
    zone_start: datetime
    zone_end: datetime
    punches: list[PunchFact]
    occurrences: list[Occurrence]
    findings: list[Finding]

    def occurrence_of(self, punch_id: UUID) -> Occurrence | None:
        return pair_punches(self.punches, self.occurrences, self.ctx.policy).occurrence_of.get(punch_id)

    def in_zone(self, finding: Finding) -> bool:
        if finding.shift_id is not None:
            occ = next((o for o in self.occurrences if o.shift_id == finding.shift_id
                        and o.shift_date == finding.shift_date), None)
            return occ is not None and self.zone_start <= occ.start < self.zone_end
        punch = next((p for p in self.punches if p.id == finding.punch_id), None)
        return punch is not None and self.zone_start <= punch.timestamp < self.zone_end


async def evaluate_zone(
    conn: asyncpg.Connection, ctx: EmployeeContext, zone_start: datetime, zone_end: datetime,
    now: datetime, extra: PunchFact | None = None,
) -> Evaluation:
    """Evaluate the rules over the facts around [zone_start, zone_end). `extra` is a punch not
    yet inserted (the one being recorded), evaluated as if it were stored."""
    read_start, read_end = zone_start - READ_MARGIN, zone_end + READ_MARGIN
    punches = await load_punches(conn, ctx, read_start, read_end)
    if extra is not None:
        punches.append(extra)
    first = read_start.astimezone(ctx.tz).date() - timedelta(days=1)
    occs = await load_occurrences(conn, ctx, first, read_end.astimezone(ctx.tz).date())
    findings = evaluate(punches, occs, ctx.policy, now)
    return Evaluation(ctx, zone_start, zone_end, punches, occs, findings)


async def _existing(conn: asyncpg.Connection, ev: Evaluation) -> list[Any]:
    """Live (non-withdrawn) exceptions of the employee that could belong to the zone."""
    zone_dates = (
        ev.zone_start.astimezone(ev.ctx.tz).date() - timedelta(days=1),
        ev.zone_end.astimezone(ev.ctx.tz).date(),
    )
    return list(await conn.fetch(
        f"SELECT {EXCEPTION_COLS} FROM exceptions WHERE tenant_id = $1 AND employee_id = $2 "  # noqa: S608
        "AND status <> 'withdrawn' AND (shift_date BETWEEN $3 AND $4 OR (shift_id IS NULL AND punch_id = ANY($5)))",
        ev.ctx.tenant_id, ev.ctx.employee_id, zone_dates[0], zone_dates[1], [p.id for p in ev.punches],
    ))


def exception_json(row: Any) -> dict[str, Any]:
    details = row["details"]
    return {
        "id": str(row["id"]), "employeeId": str(row["employee_id"]), "type": row["type"],
        "status": row["status"], "shiftId": str(row["shift_id"]) if row["shift_id"] else None,
        "shiftDate": row["shift_date"].isoformat() if row["shift_date"] else None,
        "punchId": str(row["punch_id"]) if row["punch_id"] else None,
        "details": orjson.loads(details) if isinstance(details, str) else details,
        "createdAt": row["created_at"].isoformat().replace("+00:00", "Z"),
        "resolvedBy": str(row["resolved_by"]) if row["resolved_by"] else None,
        "resolvedAt": row["resolved_at"].isoformat().replace("+00:00", "Z") if row["resolved_at"] else None,
        "note": row["note"],
    }


async def reconcile(
    conn: asyncpg.Connection, ev: Evaluation, audit: list[AuditEntry], *, include_time_based: bool
) -> list[Any]:
    """Insert the findings not yet stored, withdraw pending exceptions whose cause is gone.
    Approved and rejected ones are never touched. Returns the rows created."""
    wanted = {(f.type, f.dedupe_key): f for f in ev.findings if ev.in_zone(f)}
    existing = await _existing(conn, ev)
    have = {(r["type"], r["dedupe_key"]) for r in existing}
    for row in existing:
        zone_member = row["shift_id"] is not None or row["punch_id"] in {p.id for p in ev.punches}
        if row["status"] == "pending" and zone_member and (row["type"], row["dedupe_key"]) not in wanted:
            if row["shift_id"] is not None and not _occurrence_in_zone(ev, row):
                continue
            await _withdraw(conn, row, audit)
    created = []
    for key, finding in wanted.items():
        if key in have or (finding.time_based and not include_time_based):
            continue
        row = await _insert(conn, ev.ctx, finding)
        if row is not None:
            created.append(row)
            hooks.exception_raised(finding.type)
            audit.append(AuditEntry("Exception", "created", row["id"], None, exception_json(row),
                                    employee_id=ev.ctx.employee_id, punch_id=row["punch_id"], exception_id=row["id"]))
    return created


def _occurrence_in_zone(ev: Evaluation, row: Any) -> bool:
    occ = next((o for o in ev.occurrences if o.shift_id == row["shift_id"] and o.shift_date == row["shift_date"]), None)
    return occ is not None and ev.zone_start <= occ.start < ev.zone_end


async def _insert(conn: asyncpg.Connection, ctx: EmployeeContext, f: Finding) -> Any:
    return await conn.fetchrow(
        "INSERT INTO exceptions (tenant_id, id, employee_id, type, shift_id, shift_date, punch_id, "  # noqa: S608
        "dedupe_key, details) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING "
        f"RETURNING {EXCEPTION_COLS}",
        ctx.tenant_id, uuid4(), ctx.employee_id, f.type, f.shift_id, f.shift_date, f.punch_id, f.dedupe_key,
        orjson.dumps(f.details).decode(),
    )


async def _withdraw(conn: asyncpg.Connection, row: Any, audit: list[AuditEntry]) -> None:
    after = await conn.fetchrow(
        f"UPDATE exceptions SET status = 'withdrawn', resolved_at = now(), note = 'cause removed' "  # noqa: S608
        f"WHERE tenant_id = $1 AND id = $2 AND status = 'pending' RETURNING {EXCEPTION_COLS}",
        row["tenant_id"], row["id"],
    )
    if after is not None:
        audit.append(AuditEntry("Exception", "withdrawn", row["id"], exception_json(row), exception_json(after),
                                employee_id=row["employee_id"], punch_id=row["punch_id"], exception_id=row["id"]))
