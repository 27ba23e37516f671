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

What a chain cannot see on its own: removal of the newest entries of a chain (the tail), and
a rewrite by someone who bypasses the triggers (the owner disabling them, a superuser with
session_replication_role = replica) and recomputes the hash of the changed entry and of every
later one; `unifocus_audit_hash` is unkeyed, so the rewritten chain agrees with itself.
Hence `verify_against`: the nightly export (write-once storage, outside the database) carries
each entry's (tenantId, chain, seq, id, hash), and every recorded entry must still be in the
database at the same (tenant, chain, seq) with exactly the recorded id and hash. A changed,
removed, renumbered or moved entry that was exported is reported as tampered, naming it. The
lines `verify --heads` prints (`head tenant T chain C seq S hash H`) are accepted as a record
too: a mismatching head says the chain changed at or before that seq. Entries appended since
the last export are covered by their chain alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import orjson

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

# Each recorded entry of one tenant against the database: the rows that do not match. An
# entry recorded with an id (an export line) must hold the same id and hash at its (chain,
# seq); a head line (no id) the same hash. For a mismatch, where the recorded id is now.
AGAINST_SQL = r"""
SELECT x.n, a.id AS found_id,
       (SELECT b.chain FROM audit_log b WHERE b.tenant_id = $1 AND b.id = x.id) AS now_chain,
       (SELECT b.seq FROM audit_log b WHERE b.tenant_id = $1 AND b.id = x.id) AS now_seq
FROM unnest($2::smallint[], $3::bigint[], $4::uuid[], $5::bytea[])
     WITH ORDINALITY AS x(chain, seq, id, hash, n)
LEFT JOIN audit_log a ON a.tenant_id = $1 AND a.chain = x.chain AND a.seq = x.seq
WHERE a.id IS NULL OR a.hash <> x.hash OR a.id <> x.id
"""


@dataclass(frozen=True)
class BadEntry:
    tenant_id: UUID
    chain: int
    seq: int
    entry_id: UUID | None  # None: a head record names no id and the database has none there
    reason: str

    def describe(self) -> str:
        entry = "(id not recorded)" if self.entry_id is None else self.entry_id
        return (f"tenant {self.tenant_id} chain {self.chain}: first bad entry {entry} "
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
    recorded: int = 0  # entries checked against an outside record (verify_against)
    sources: int = 0  # files of that record read

    @property
    def ok(self) -> bool:
        return not self.bad

    @property
    def failed_tenants(self) -> int:
        return len({b.tenant_id for b in self.bad})


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


class RecordError(ValueError):
    """An outside record that cannot be read: a missing path, a directory with no export, a
    line that is neither an export line nor a head line."""


@dataclass(frozen=True)
class Recorded:
    """One entry as an outside record has it."""

    tenant_id: UUID
    chain: int
    seq: int
    entry_id: UUID | None  # None for a head line
    hash: bytes
    source: str  # "file:line"


def record_files(paths: Iterable[Path]) -> list[Path]:
    """The files of an outside record: each file as given; for a directory (the export
    directory), its `*.jsonl` files in name order (audit-YYYY-MM-DD.jsonl: oldest first)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.glob("*.jsonl") if p.is_file() and not p.name.startswith("."))
            if not found:
                raise RecordError(f"{path}: no audit export (*.jsonl) in this directory")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise RecordError(f"{path}: no such file or directory")
    return files


def _recorded(tenant: Any, chain: Any, seq: Any, entry_id: Any, hash_hex: Any, source: str) -> Recorded:
    rec = Recorded(UUID(tenant), int(chain), int(seq), None if entry_id is None else UUID(entry_id),
                   bytes.fromhex(hash_hex), source)
    if not 0 <= rec.chain <= 32767 or rec.seq < 1 or len(rec.hash) != 32:
        raise RecordError(f"{source}: chain, seq or hash out of range (a SHA-256 hash is 64 hex digits)")
    return rec


def _head_line(line: str, source: str) -> Recorded:
    words = line.split()
    if len(words) != 9 or words[1::2] != ["tenant", "chain", "seq", "hash"]:
        raise RecordError(f"{source}: not a head line (head tenant T chain C seq S hash H)")
    return _recorded(words[2], words[4], words[6], None, words[8], source)


def _export_line(line: str, source: str) -> Recorded:
    e: Any = orjson.loads(line)
    if not isinstance(e, dict):
        raise RecordError(f"{source}: not an audit export line")
    missing = [k for k in ("tenantId", "chain", "seq", "id", "hash") if e.get(k) is None]
    if missing:
        raise RecordError(f"{source}: not an audit export line (no {', '.join(missing)})")
    return _recorded(e["tenantId"], e["chain"], e["seq"], e["id"], e["hash"], source)


def read_records(path: Path) -> Iterator[Recorded]:
    """The entries one file records: export lines (JSON, as `unifocus audit export` writes
    them) and head lines (as `unifocus audit verify --heads` prints them); blank lines skipped.
    Anything else raises RecordError: a record that cannot be read is never skipped."""
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, 1):
            source = f"{path}:{number}"
            line = raw.decode("utf-8", "replace").strip()
            if not line:
                continue
            if not line.startswith(("{", "head ")):
                raise RecordError(f"{source}: neither an audit export line nor a head line")
            try:
                rec = _export_line(line, source) if line.startswith("{") else _head_line(line, source)
            except RecordError:
                raise
            except (ValueError, TypeError, AttributeError) as exc:  # orjson's JSONDecodeError too
                raise RecordError(f"{source}: malformed record ({exc})") from None
            yield rec


def _against_reason(rec: Recorded, row: asyncpg.Record) -> str:
    found, now_chain, now_seq = row["found_id"], row["now_chain"], row["now_seq"]
    if rec.entry_id is None:  # a head line
        if found is None:
            return (f"missing: {rec.source} records the chain's head at this seq, the database "
                    "has no entry there (entries removed)")
        return (f"its hash differs from the head {rec.source} records (this entry or an earlier "
                "one of the chain was rewritten)")
    if now_chain is not None and (now_chain, now_seq) != (rec.chain, rec.seq):
        return (f"moved: {rec.source} records it at chain {rec.chain} seq {rec.seq}, the database "
                f"has it at chain {now_chain} seq {now_seq}")
    if now_chain is None:
        if found is None:
            return (f"missing: {rec.source} records it with hash {rec.hash.hex()}, the database "
                    "has no entry at this seq (entries removed)")
        return (f"missing: {rec.source} records it at this seq, the database holds entry {found} "
                "there instead (entries removed and the chain renumbered)")
    return (f"its hash differs from the hash {rec.source} records (the entry, or an earlier one of "
            "its chain, was rewritten after the export)")


async def _check_batch(conn: asyncpg.Connection, batch: Sequence[Recorded]) -> BadEntry | None:
    """The first (by chain, seq) entry of one tenant's batch that the database does not hold
    as recorded, or None."""
    tenant = batch[0].tenant_id
    async with conn.transaction(readonly=True):
        await conn.execute("SELECT set_config('app.tenant_id', $1, true)", str(tenant))
        rows = await conn.fetch(AGAINST_SQL, tenant, [r.chain for r in batch], [r.seq for r in batch],
                                [r.entry_id for r in batch], [r.hash for r in batch])
    first: BadEntry | None = None
    for row in rows:
        rec = batch[row["n"] - 1]
        if first is None or (rec.chain, rec.seq) < (first.chain, first.seq):
            entry = rec.entry_id if rec.entry_id is not None else row["found_id"]
            first = BadEntry(tenant, rec.chain, rec.seq, entry, _against_reason(rec, row))
    return first


async def verify_against(conn: asyncpg.Connection, files: Sequence[Path], report: VerifyReport,
                         tenant_id: UUID | None = None) -> None:
    """Check every entry the files record (one tenant's, or all) against the database; add
    the first mismatch (by chain, seq) of each tenant to the report. Streamed: the files are
    read line by line and looked up in batches of one tenant's entries."""
    first: dict[UUID, BadEntry] = {}
    batch: list[Recorded] = []

    async def flush() -> None:
        bad = await _check_batch(conn, batch)
        report.recorded += len(batch)
        seen = first.get(batch[0].tenant_id)
        if bad is not None and (seen is None or (bad.chain, bad.seq) < (seen.chain, seen.seq)):
            first[bad.tenant_id] = bad
        batch.clear()

    for path in files:
        report.sources += 1
        for rec in read_records(path):
            if tenant_id is not None and rec.tenant_id != tenant_id:
                continue
            if batch and (rec.tenant_id != batch[0].tenant_id or len(batch) >= BATCH):
                await flush()
            batch.append(rec)
    if batch:
        await flush()
    report.bad.extend(first[t] for t in sorted(first, key=str))


class UnknownTenant(LookupError):
    """`--tenant` names a tenant with neither a tenants row nor audit entries: nothing to
    check, most likely a mistyped id (answering "intact" would hide that)."""

    def __init__(self, tenant_id: UUID) -> None:
        super().__init__(f"no tenant {tenant_id}: no tenants row and no audit entries, nothing to verify")


async def _known(conn: asyncpg.Connection, tenant_id: UUID) -> bool:
    """Whether the tenant has a tenants row or an audit entry (a deleted tenant's entries
    are still verified)."""
    async with conn.transaction(readonly=True):
        await conn.execute("SELECT set_config('app.tenant_id', $1, true)", str(tenant_id))
        return bool(await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM tenants WHERE tenant_id = $1) "
            "OR EXISTS (SELECT 1 FROM audit_log WHERE tenant_id = $1)", tenant_id))


async def verify(conn: asyncpg.Connection, tenant_id: UUID | None = None,
                 against: Sequence[Path] = ()) -> VerifyReport:
    """Verify one tenant, or every tenant (each is reported; the walk stops per tenant at its
    first bad entry); with `against` (export files or directories, head files), also check
    the chains against that outside record. Every tenant means every one with a tenants row
    or audit entries: entries outlive a tenants row deleted past the foreign keys (migration
    0016). Raises UnknownTenant when `tenant_id` names neither."""
    files = record_files(against)  # before any work: a bad path is refused at once
    report = VerifyReport()
    if tenant_id is not None:
        if not await _known(conn, tenant_id):
            raise UnknownTenant(tenant_id)
        tenants = [tenant_id]
    else:
        tenants = [r[0] for r in await conn.fetch("SELECT id FROM unifocus_audit_tenant_ids() AS id ORDER BY id")]
    for tenant in tenants:
        await verify_tenant(conn, tenant, report)
    if files:
        await verify_against(conn, files, report, tenant_id)
    return report


async def verify_url(url: str, tenant_id: UUID | None = None, against: Sequence[Path] = ()) -> VerifyReport:
    conn = await asyncpg.connect(url)
    try:
        return await verify(conn, tenant_id, against)
    finally:
        await conn.close()
