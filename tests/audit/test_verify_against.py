"""`unifocus audit verify --against EXPORTS`: the chains checked against the nightly export, the
outside record. A superuser who bypasses the triggers and recomputes the hashes of the entries
it changed (and of every later one) leaves chains that agree with themselves, so the plain
verify passes; the export still has the old hashes, and verify --against names the entry."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.audit.util import chain_of, create_employee, rehash, rids_for_chain, tampering
from tests.conftest import Api, TenantFixture, make_tenant
from unifocus.audit.export import export_to_file
from unifocus.audit.verify import RecordError, read_records, record_files, verify_url
from unifocus.db.pool import Database
from unifocus.settings import Settings

pytestmark = pytest.mark.audit

BINARY = Path(sys.executable).parent / "unifocus"


@pytest.fixture()
def fresh(owner_url: str, settings: Settings) -> TenantFixture:
    return make_tenant(owner_url, settings)


async def export(db: Database, tenant: TenantFixture, out: Path, since: datetime | None = None,
                 until: datetime | None = None) -> int:
    """The tenant's entries as the nightly export writes them (via the runtime role)."""
    now = datetime.now(UTC)
    return await export_to_file(db, since or now - timedelta(hours=1), until or now + timedelta(hours=1), out,
                                [tenant.id])


async def cli(owner_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    # Wide enough that an error's path is never wrapped inside the usage-error panel.
    env = {**os.environ, "DATABASE_URL": owner_url, "COLUMNS": "400", "TERMINAL_WIDTH": "400"}
    return await asyncio.to_thread(subprocess.run, [str(BINARY), "audit", "verify", *args], env=env,
                                   capture_output=True, text=True, timeout=60)


async def test_untouched_log_verifies_against_its_exports(api: Api, db: Database, fresh: TenantFixture,
                                                          owner_url: str, tmp_path: Path) -> None:
    for chain in (0, 1):
        ids = rids_for_chain(chain)
        for i in range(3):
            r = await create_employee(api, fresh.manager, f"C{chain}-{i}", request_id=next(ids))
            assert r.status_code == 201, r.text
    # Two "nights": the directory holds two export files, split at the fourth entry's instant.
    await export(db, fresh, tmp_path / "all.jsonl")
    lines = [json.loads(line) for line in (tmp_path / "all.jsonl").read_text().splitlines()]
    cut = datetime.fromisoformat(lines[3]["createdAt"].replace("Z", "+00:00"))
    exports = tmp_path / "exports"
    assert await export(db, fresh, exports / "audit-1.jsonl", until=cut) == 3
    assert await export(db, fresh, exports / "audit-2.jsonl", since=cut) == 3

    report = await verify_url(owner_url, fresh.id, [exports])
    assert report.ok, report.bad
    assert (report.entries, report.recorded, report.sources) == (6, 6, 2)
    assert (await verify_url(owner_url, fresh.id, [exports / "audit-2.jsonl"])).recorded == 3

    done = await cli(owner_url, "--tenant", str(fresh.id), "--against", str(exports))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "intact: 6 entries" in done.stdout and "6 recorded entries from 2 files match" in done.stdout


async def test_rewrite_with_recomputed_hashes_is_detected_against_the_export(
    api: Api, db: Database, fresh: TenantFixture, tenant_b: TenantFixture, owner_url: str, tmp_path: Path
) -> None:
    rows = await chain_of(api, fresh, owner_url)
    await chain_of(api, tenant_b, owner_url, 2)
    exports = tmp_path / "exports"
    assert await export(db, fresh, exports / "audit-2026-03-07.jsonl") == 5
    # The heads as `verify --heads` prints them, kept outside the database: a record too.
    printed = await cli(owner_url, "--tenant", str(fresh.id), "--heads")
    assert printed.returncode == 0, printed.stdout + printed.stderr
    heads = tmp_path / "heads.txt"
    heads.write_text("".join(line + "\n" for line in printed.stdout.splitlines() if line.startswith("head ")))
    assert len(heads.read_text().splitlines()) == 1

    with tampering(owner_url, fresh.id) as conn:
        conn.execute(
            "UPDATE audit_log SET changes = jsonb_set(changes, '{after,firstName}', '\"Mallory\"') "
            "WHERE tenant_id = %s AND id = %s", (fresh.id, rows[2]["id"]),
        )
        rehash(conn, fresh.id, 0, 3)
        # The chain agrees with itself again: the plain verify cannot see the rewrite.
        plain = await verify_url(owner_url, fresh.id)
        assert plain.ok, plain.bad
        assert (await cli(owner_url, "--tenant", str(fresh.id))).returncode == 0

        [bad] = (await verify_url(owner_url, fresh.id, [exports])).bad
        assert (bad.tenant_id, bad.chain, bad.seq, bad.entry_id) == (fresh.id, 0, 3, rows[2]["id"])
        assert "rewritten" in bad.reason and "audit-2026-03-07.jsonl:3" in bad.reason

        # Against the head alone: the chain changed at or before its head.
        [head] = (await verify_url(owner_url, fresh.id, [heads])).bad
        assert (head.seq, head.entry_id) == (5, rows[4]["id"])
        assert "head" in head.reason

        done = await cli(owner_url, "--tenant", str(fresh.id), "--against", str(exports))
        assert done.returncode == 1, done.stdout + done.stderr
        assert f"TAMPERED: tenant {fresh.id} chain 0: first bad entry {rows[2]['id']} (seq 3)" in done.stdout
        assert "FAILED for 1 of 1 tenants" in done.stdout

        # Every tenant: only the tampered one is reported; an export names only its tenants.
        report = await verify_url(owner_url, None, [exports])
        assert [b for b in report.bad if b.tenant_id in (fresh.id, tenant_b.id)] == [bad]
        assert (await verify_url(owner_url, tenant_b.id, [exports])).ok
    restored = await verify_url(owner_url, fresh.id, [exports, heads])
    assert restored.ok and restored.recorded == 6


def _delete_and_renumber(conn: Any, tenant: uuid.UUID, seq: int) -> None:
    conn.execute("DELETE FROM audit_log WHERE tenant_id = %s AND chain = 0 AND seq = %s", (tenant, seq))
    conn.execute("UPDATE audit_log SET seq = 1 - seq WHERE tenant_id = %s AND chain = 0 AND seq > %s",
                 (tenant, seq))
    conn.execute("UPDATE audit_log SET seq = -seq WHERE tenant_id = %s AND chain = 0 AND seq < 0", (tenant,))
    rehash(conn, tenant, 0, seq)


def _delete_tail(conn: Any, tenant: uuid.UUID, seq: int) -> None:
    conn.execute("DELETE FROM audit_log WHERE tenant_id = %s AND chain = 0 AND seq >= %s", (tenant, seq))


def _move_to_chain_1(conn: Any, tenant: uuid.UUID, seq: int) -> None:
    conn.execute("UPDATE audit_log SET chain = 1, seq = 1 WHERE tenant_id = %s AND chain = 0 AND seq = %s",
                 (tenant, seq))
    rehash(conn, tenant, 1, 1)


@pytest.mark.parametrize(("change", "seq", "words"), [
    (_delete_and_renumber, 3, ("missing", "renumbered")),
    (_delete_tail, 5, ("missing", "no entry at this seq")),
    (_move_to_chain_1, 5, ("moved", "chain 1 seq 1")),
], ids=["deleted-and-rehashed", "tail-removed", "moved-to-another-chain"])
async def test_removed_entry_is_reported_against_the_export(
    api: Api, db: Database, fresh: TenantFixture, owner_url: str, tmp_path: Path,
    change: Any, seq: int, words: tuple[str, str],
) -> None:
    rows = await chain_of(api, fresh, owner_url)
    out = tmp_path / "audit-2026-03-07.jsonl"
    await export(db, fresh, out)
    with tampering(owner_url, fresh.id) as conn:
        change(conn, fresh.id, seq)
        plain = await verify_url(owner_url, fresh.id)
        assert plain.ok, plain.bad  # what the chains alone show: nothing
        [bad] = (await verify_url(owner_url, fresh.id, [out])).bad
        assert (bad.chain, bad.seq, bad.entry_id) == (0, seq, rows[seq - 1]["id"])
        assert all(w in bad.reason for w in words), bad.reason
        done = await cli(owner_url, "--tenant", str(fresh.id), "--against", str(out))
        assert done.returncode == 1, done.stdout + done.stderr
        assert str(rows[seq - 1]["id"]) in done.stdout and "TAMPERED" in done.stdout


def test_a_record_that_cannot_be_read_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RecordError, match="no such file"):
        record_files([tmp_path / "missing.jsonl"])
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / ".audit-2026-03-07.jsonl.tmp-1").write_text("")  # an export's temporary file
    with pytest.raises(RecordError, match="no audit export"):
        record_files([empty])
    tenant, entry = uuid.uuid4(), uuid.uuid4()
    good = f'{{"tenantId": "{tenant}", "id": "{entry}", "chain": 0, "seq": 1, "hash": "{"ab" * 32}"}}'
    for line, message in [
        ("not a record", "neither"),
        (good.replace('"hash"', '"hush"'), "no hash"),
        (good.replace("ab" * 32, "ab" * 31), "out of range"),
        (good.replace("ab" * 32, "zz" * 32), "malformed"),
        (good[:-1], "malformed"),
        (f"head tenant {tenant} chain 0 seq 1", "not a head line"),
    ]:
        bad = tmp_path / "bad.jsonl"
        bad.write_text(good + "\n\n" + line + "\n")
        with pytest.raises(RecordError, match=message) as info:
            list(read_records(bad))
        assert f"{bad}:3" in str(info.value)
    ok = tmp_path / "ok.jsonl"
    ok.write_text(good + "\n" + f"head tenant {tenant} chain 0 seq 1 hash {'ab' * 32}\n")
    assert [(r.entry_id, r.seq, r.source) for r in read_records(ok)] == [(entry, 1, f"{ok}:1"), (None, 1, f"{ok}:2")]


async def test_cli_refuses_an_unreadable_record(owner_url: str, tmp_path: Path, tenant_a: TenantFixture) -> None:
    missing = await cli(owner_url, "--against", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "nope" in missing.stderr
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_text("hello\n")
    # A tenant that exists: an unknown one is refused before the record is read (test_verify.py).
    refused = await cli(owner_url, "--tenant", str(tenant_a.id), "--against", str(garbage))
    assert refused.returncode == 2 and "garbage.jsonl:1" in refused.stderr
