"""Audit entries collected during a write and appended at its end, in its transaction.

The chain columns (seq, prev_hash, hash, created_at) are filled by the database trigger
`unifocus_audit_chain`, so no writer can append an entry outside the chain.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import orjson

INSERT_ENTRIES = """
INSERT INTO audit_log (tenant_id, chain, user_id, request_id, action, entity, entity_id, changes,
                       employee_id, punch_id, exception_id, seq, created_at, prev_hash, hash)
SELECT $1, $2, $3, $4, x.action, x.entity, x.entity_id, x.changes, x.employee_id, x.punch_id,
       x.exception_id, 0, now(), '\\x'::bytea, '\\x'::bytea
FROM unnest($5::text[], $6::text[], $7::uuid[], $8::jsonb[], $9::uuid[], $10::uuid[], $11::uuid[])
     WITH ORDINALITY AS x(action, entity, entity_id, changes, employee_id, punch_id, exception_id, n)
ORDER BY x.n
"""


@dataclass(frozen=True)
class AuditEntry:
    entity: str
    action: str
    entity_id: UUID
    before: Any
    after: Any
    employee_id: UUID | None = None
    punch_id: UUID | None = None
    exception_id: UUID | None = None


def _json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def entry_arrays(entries: list[AuditEntry]) -> tuple[list[Any], ...]:
    return (
        [e.action for e in entries],
        [e.entity for e in entries],
        [e.entity_id for e in entries],
        [
            orjson.dumps({"before": e.before, "after": e.after}, default=_json_default).decode()
            for e in entries
        ],
        [e.employee_id for e in entries],
        [e.punch_id for e in entries],
        [e.exception_id for e in entries],
    )


def chain_for(request_id: str, chains: int) -> int:
    """Which of the tenant's chains this transaction appends to: spreading writers over a
    few chains lets them commit in parallel; each chain stays totally ordered."""
    if chains <= 1:
        return 0
    return zlib.crc32(request_id.encode()) % chains


def entry_args(
    tenant_id: UUID, user_id: UUID | None, request_id: str, entries: list[AuditEntry], chains: int
) -> tuple[Any, ...]:
    """The parameters of INSERT_ENTRIES ($1-$11) for one transaction's entries."""
    return (tenant_id, chain_for(request_id, chains), user_id, request_id, *entry_arrays(entries))


async def append(
    conn: Any, tenant_id: UUID, user_id: UUID | None, request_id: str, entries: list[AuditEntry], chains: int
) -> None:
    """Append entries in the caller's transaction (jobs and the CLI; requests go through the
    write path, which folds this into the statement that stores the response)."""
    if entries:
        await conn.execute(INSERT_ENTRIES, *entry_args(tenant_id, user_id, request_id, entries, chains))
