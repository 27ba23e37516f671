"""Tamper evidence: re-walk every (tenant, chain) hash chain of the audit log.

Each entry's hash is recomputed in SQL with `unifocus_audit_hash(prev_hash, row)`, the same
canonical serialisation the insert trigger used, and its links are checked in seq order with
window functions: hash matches the recomputation, prev_hash equals the previous entry's hash
(genesis: empty bytea), seq runs 1, 2, 3, ... without gaps. Rows are streamed through a
server-side cursor, one tenant at a time, in a REPEATABLE READ READ ONLY snapshot (appends
to a chain are serialised to commit, so a snapshot never sees seq n+1 without seq n).

Who runs it: the CLI connects as the owner (DATABASE_URL) and sets `app.tenant_id` for each
tenant, so it works both for a superuser owner (which bypasses RLS) and for a plain owner
that FORCE'd row-level security applies to. The functions below take any connection that
may read audit_log, so the app role works as well.

What it cannot see on its own: removal of the newest entries of a chain (the tail). The
export carries each entry's seq and hash, and the report lists every chain's head: keep those
outside the database (the SIEM does) and compare.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID

import asyncpg

CHECK_SQL = r"""
SELECT a.id, a.chain, a.seq, a.hash,
       a.hash = unifocus_audit_hash(a.prev_hash, a) AS hash_ok,
       a.prev_hash = coalesce(lag(a.hash) OVER w, '\x'::bytea) AS link_ok,
       lag(a.seq) OVER w AS prev_seq
FROM audit_log a
WHERE a.tenant_id = $1
WINDOW w AS (PARTITION BY a.chain ORDER BY a.seq)
ORDER BY a.chain, a.seq
"""

BATCH = 5000


@dataclass(frozen=True)
class BadEntry:
    tenant_id: UUID
    chain: int
    seq: int
    entry_id: UUID
    reason: str

    def describe(self) -> str:
        return (f"tenant {self.tenant_id} chain {self.chain}: first bad entry {self.entry_id} "
                f"(seq {self.seq}): {self.reason}")


@dataclass(frozen=True)
class ChainHead:
    tenant_id: UUID
    chain: int
    seq: int
    hash: str  # hex


@dataclass
class VerifyReport:
    tenants: int = 0
    entries: int = 0
    bad: list[BadEntry] = field(default_factory=list)
    heads: list[ChainHead] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.bad


def _head(tenant_id: UUID, row: asyncpg.Record) -> ChainHead:
    return ChainHead(tenant_id, row["chain"], row["seq"], bytes(row["hash"]).hex())


def _reason(row: asyncpg.Record) -> str | None:
    expected = (row["prev_seq"] or 0) + 1
    if row["seq"] != expected:
        if row["prev_seq"] is None:
            return f"the chain starts at seq {row['seq']}, not 1 (earlier entries removed)"
        return (f"seq {row['seq']} follows seq {row['prev_seq']} "
                f"(expected {expected}: entries removed or reordered)")
    if not row["hash_ok"]:
        return "its content does not match its hash (the entry was edited or moved)"
    if not row["link_ok"]:
        return "prev_hash does not match the previous entry's hash (an earlier entry was replaced)"
    return None


async def verify_tenant(conn: asyncpg.Connection, tenant_id: UUID, report: VerifyReport) -> BadEntry | None:
    """Walk one tenant's chains; the first bad entry (by chain, seq), or None."""
    report.tenants += 1
    last: asyncpg.Record | None = None
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        await conn.execute("SELECT set_config('app.tenant_id', $1, true)", str(tenant_id))
        async for row in conn.cursor(CHECK_SQL, tenant_id, prefetch=BATCH):
            report.entries += 1
            if last is not None and last["chain"] != row["chain"]:
                report.heads.append(_head(tenant_id, last))
            last = row
            reason = _reason(row)
            if reason is not None:
                bad = BadEntry(tenant_id, row["chain"], row["seq"], row["id"], reason)
                report.bad.append(bad)
                return bad
    if last is not None:
        report.heads.append(_head(tenant_id, last))
    return None


async def verify(conn: asyncpg.Connection, tenant_id: UUID | None = None) -> VerifyReport:
    """Verify one tenant, or every tenant (each is reported; the walk stops per tenant at its
    first bad entry)."""
    report = VerifyReport()
    if tenant_id is not None:
        tenants = [tenant_id]
    else:
        tenants = [r[0] for r in await conn.fetch("SELECT unifocus_tenant_ids()")]
    for tenant in tenants:
        await verify_tenant(conn, tenant, report)
    return report


async def verify_url(url: str, tenant_id: UUID | None = None) -> VerifyReport:
    conn = await asyncpg.connect(url)
    try:
        return await verify(conn, tenant_id)
    finally:
        await conn.close()
