"""Audit export for a SIEM: JSON Lines, one entry per line.

Every line is one JSON object with these fields (stable; new fields may be added, none
removed or renamed):

| field | type | meaning |
|---|---|---|
| `id` | uuid | the entry's id |
| `tenantId` | uuid | the tenant |
| `userId` | uuid or null | who made the write (null for system jobs) |
| `userEmail` | string or null | that user's email at export time |
| `action` | string | `created`, `updated`, `deleted`, `voided`, `approved`, `rejected`, `withdrawn` |
| `entity` | string | `Tenant`, `User`, `Employee`, `Schedule`, `Shift`, `Punch`, `Exception` |
| `entityId` | uuid | the entity changed |
| `changes` | object | `{before, after}`: the entity before and after (camelCase, null when absent) |
| `employeeId`, `punchId`, `exceptionId` | uuid or null | related records |
| `requestId` | string or null | the X-Request-ID of the write |
| `createdAt` | string | RFC 3339 UTC instant, microseconds (`2026-03-08T14:04:00.123456Z`) |
| `chain`, `seq` | integers | the entry's position: `seq` counts 1, 2, ... within (tenantId, chain) |
| `prevHash`, `hash` | hex strings | the SHA-256 chain; keep each chain's last `hash` as an anchor |
| `ocsf` | object | the same event as an OCSF 1.1 API Activity (below) |

`ocsf` (OCSF class API Activity, `class_uid` 6003, category Application Activity 6):
`activity_id` 1 Create (`created`), 3 Update (`updated`, `voided`, `approved`, `rejected`,
`withdrawn`), 4 Delete (`deleted`); `activity_name`; `type_uid` = 600300 + activity_id;
`type_name`; `time` (createdAt, epoch milliseconds); `severity_id` 1 Informational;
`status_id` 1 Success (only successful writes are audited);
`actor.user.uid` (userId) and `actor.user.email_addr`, or `actor.app_name` "unifocus" for
system jobs; `api.operation` (`<entity>.<action>`, e.g. `Employee.created`);
`api.request.uid` (requestId); `resources[0]` `{type: entity, uid: entityId}`;
`metadata.version` (OCSF "1.1.0"), `metadata.uid` (id), `metadata.tenant_uid` (tenantId),
`metadata.product` `{name: "Unifocus", vendor_name: "Unifocus", version}`;
`unmapped` `{entity, entityId, action, employeeId, punchId, exceptionId, chain, seq}`.
The client address (`src_endpoint`) is not recorded by the audit log and is not exported.

Lines are grouped by tenant (tenants in id order) and time-ascending within a tenant.
`--since` is inclusive, `--until` exclusive. A file is written to a temporary name and renamed
into place, so a reader never sees half an export.

The exports are the record of the chains outside the database: `unifocus audit verify --against
FILE|DIR` (verify.py) reads `tenantId`, `chain`, `seq`, `id` and `hash` back from these lines and
reports any exported entry the database no longer holds exactly so.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import IO, Any, cast
from uuid import UUID

import asyncpg
import orjson

from unifocus import __version__
from unifocus.db.pool import Database
from unifocus.jobs.scheduler import tenant_ids
from unifocus.settings import Settings

log = logging.getLogger("unifocus.audit.export")

EXPORT_SQL = """
SELECT a.tenant_id, a.id, a.user_id, u.email AS user_email, a.action, a.entity, a.entity_id,
       a.changes, a.employee_id, a.punch_id, a.exception_id, a.request_id, a.created_at,
       a.chain, a.seq, a.prev_hash, a.hash
FROM audit_log a LEFT JOIN users u ON u.tenant_id = a.tenant_id AND u.id = a.user_id
WHERE a.tenant_id = $1 AND a.created_at >= $2 AND a.created_at < $3
ORDER BY a.created_at, a.id
"""

ACTIVITY = {
    "created": (1, "Create"),
    "updated": (3, "Update"),
    "voided": (3, "Update"),
    "approved": (3, "Update"),
    "rejected": (3, "Update"),
    "withdrawn": (3, "Update"),
    "deleted": (4, "Delete"),
}
OCSF_VERSION = "1.1.0"


def _s(value: Any) -> str | None:
    return None if value is None else str(value)


def rfc3339(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def ocsf_event(e: dict[str, Any], ts: datetime) -> dict[str, Any]:
    activity_id, activity_name = ACTIVITY[e["action"]]
    actor: dict[str, Any] = {"app_name": "unifocus"}  # a system job
    if e["userId"]:
        actor = {"user": {"uid": e["userId"], "email_addr": e["userEmail"]}}
    return {
        "class_uid": 6003,
        "class_name": "API Activity",
        "category_uid": 6,
        "category_name": "Application Activity",
        "activity_id": activity_id,
        "activity_name": activity_name,
        "type_uid": 6003 * 100 + activity_id,
        "type_name": f"API Activity: {activity_name}",
        "time": int(ts.timestamp() * 1000),
        "severity_id": 1,
        "severity": "Informational",
        "status_id": 1,
        "status": "Success",
        "actor": actor,
        "api": {"operation": f"{e['entity']}.{e['action']}", "request": {"uid": e["requestId"]}},
        "resources": [{"type": e["entity"], "uid": e["entityId"]}],
        "metadata": {
            "version": OCSF_VERSION,
            "uid": e["id"],
            "tenant_uid": e["tenantId"],
            "product": {"name": "Unifocus", "vendor_name": "Unifocus", "version": __version__},
        },
        "unmapped": {
            "entity": e["entity"], "entityId": e["entityId"], "action": e["action"],
            "employeeId": e["employeeId"], "punchId": e["punchId"], "exceptionId": e["exceptionId"],
            "chain": e["chain"], "seq": e["seq"],
        },
    }


def to_line(row: Any) -> bytes:
    changes = row["changes"]
    if isinstance(changes, str | bytes):
        changes = orjson.loads(changes)
    ts: datetime = row["created_at"]
    e: dict[str, Any] = {
        "id": str(row["id"]),
        "tenantId": str(row["tenant_id"]),
        "userId": _s(row["user_id"]),
        "userEmail": row["user_email"],
        "action": row["action"],
        "entity": row["entity"],
        "entityId": str(row["entity_id"]),
        "changes": {"before": changes.get("before"), "after": changes.get("after")},
        "employeeId": _s(row["employee_id"]),
        "punchId": _s(row["punch_id"]),
        "exceptionId": _s(row["exception_id"]),
        "requestId": row["request_id"],
        "createdAt": rfc3339(ts),
        "chain": row["chain"],
        "seq": row["seq"],
        "prevHash": bytes(row["prev_hash"]).hex(),
        "hash": bytes(row["hash"]).hex(),
    }
    e["ocsf"] = ocsf_event(e, ts)
    return orjson.dumps(e) + b"\n"


async def export_tenant(conn: asyncpg.Connection, tenant: UUID, since: datetime, until: datetime,
                        write: Callable[[bytes], Any]) -> int:
    """One tenant's entries, streamed through a cursor (the caller holds a tenant transaction)."""
    count = 0
    async for row in conn.cursor(EXPORT_SQL, tenant, since, until, prefetch=2000):
        write(to_line(row))
        count += 1
    return count


async def export_entries(db: Database, since: datetime, until: datetime, write: Callable[[bytes], Any],
                         tenants: list[UUID] | None = None) -> int:
    """Every tenant's entries with since <= createdAt < until, as JSON Lines, via the app role
    (one READ ONLY tenant transaction per tenant, so row-level security scopes each)."""
    count = 0
    if tenants is None:
        tenants = cast(list[UUID], await tenant_ids(db))
    for tenant in tenants:
        async with db.tenant_tx(tenant, readonly=True) as conn:
            count += await export_tenant(conn, tenant, since, until, write)
    return count


async def export_to_file(db: Database, since: datetime, until: datetime, path: Path,
                         tenants: list[UUID] | None = None) -> int:
    """Write the export to `path` atomically: a temporary file in the same directory, fsync,
    then rename. On failure the temporary file is removed and `path` is untouched."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        # Blocking file writes in a job/CLI coroutine: nothing else waits on this loop.
        with open(tmp, "wb") as fh:  # noqa: ASYNC230
            count = await export_entries(db, since, until, fh.write, tenants)
            _sync(fh)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return count


def _sync(fh: IO[bytes]) -> None:
    fh.flush()
    os.fsync(fh.fileno())


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), tzinfo=UTC)
    return start, start + timedelta(days=1)


async def nightly_export(db: Database, settings: Settings, now: datetime | None = None) -> int:
    """The scheduled job: the previous UTC day to `<audit_export_dir>/audit-YYYY-MM-DD.jsonl`;
    skipped (0) when that file already exists, so a re-run never rewrites a delivered file."""
    assert settings.audit_export_dir is not None
    day = (now or datetime.now(UTC)).astimezone(UTC).date() - timedelta(days=1)
    path = Path(settings.audit_export_dir) / f"audit-{day.isoformat()}.jsonl"
    if path.exists():
        log.info("audit export %s exists; skipped", path)
        return 0
    since, until = day_bounds(day)
    count = await export_to_file(db, since, until, path)
    log.info("audit export %s: %d entries", path, count)
    return count
