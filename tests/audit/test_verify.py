"""`unifocus audit verify`: an intact log passes; an edit, a deletion or a reordering made by a
superuser with the triggers off is detected and the first bad entry is named, also for a
tenant whose tenants row was deleted; a --tenant that names nothing is refused."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.audit.test_verify_against import cli
from tests.audit.util import chain_of, create_employee, entries, tampering
from tests.conftest import Api, TenantFixture, make_settings, make_tenant, start_app
from unifocus.audit.verify import verify_url
from unifocus.settings import Settings

pytestmark = pytest.mark.audit


@pytest.fixture()
def fresh(owner_url: str, settings: Settings) -> TenantFixture:
    return make_tenant(owner_url, settings)


async def test_intact_log_verifies(api: Api, fresh: TenantFixture, owner_url: str) -> None:
    await chain_of(api, fresh, owner_url)
    report = await verify_url(owner_url, fresh.id)
    assert report.ok, report.bad
    assert report.entries == 5
    assert [(h.chain, h.seq) for h in report.heads] == [(0, 5)]


async def test_edited_entry_is_detected(api: Api, fresh: TenantFixture, tenant_b: TenantFixture,
                                        owner_url: str) -> None:
    rows = await chain_of(api, fresh, owner_url)
    await chain_of(api, tenant_b, owner_url, 2)
    with tampering(owner_url, fresh.id) as conn:
        conn.execute(
            "UPDATE audit_log SET changes = jsonb_set(changes, '{after,firstName}', '\"Mallory\"') "
            "WHERE tenant_id = %s AND id = %s", (fresh.id, rows[2]["id"]),
        )
        report = await verify_url(owner_url, fresh.id)
        assert not report.ok
        [bad] = report.bad
        assert (bad.entry_id, bad.seq) == (rows[2]["id"], 3)
        assert "edited" in bad.reason
        # Other tenants are untouched and still verify.
        assert (await verify_url(owner_url, tenant_b.id)).ok
    assert (await verify_url(owner_url, fresh.id)).ok  # restored


async def test_an_edit_relinked_without_rehashing_what_follows_is_detected(
    api: Api, fresh: TenantFixture, owner_url: str
) -> None:
    """A forger edits entry 3, recomputes its hash, and points entry 4's prev_hash at the new
    hash, but leaves entry 4's hash as it was. Each hash covers the previous entry's hash, so
    entry 4 no longer matches its own (a hash over the entry alone would let this edit pass
    unless everything after it were checked against an export)."""
    rows = await chain_of(api, fresh, owner_url)
    edited, following = rows[2]["id"], rows[3]["id"]
    with tampering(owner_url, fresh.id) as conn:
        conn.execute(
            "UPDATE audit_log SET changes = jsonb_set(changes, '{after,firstName}', '\"Mallory\"') "
            "WHERE tenant_id = %s AND id = %s", (fresh.id, edited),
        )
        conn.execute("UPDATE audit_log a SET hash = unifocus_audit_hash(a.prev_hash, a) "
                     "WHERE a.tenant_id = %s AND a.id = %s", (fresh.id, edited))
        conn.execute("UPDATE audit_log SET prev_hash = (SELECT hash FROM audit_log WHERE tenant_id = %s AND id = %s) "
                     "WHERE tenant_id = %s AND id = %s", (fresh.id, edited, fresh.id, following))
        [bad] = (await verify_url(owner_url, fresh.id)).bad
        assert (bad.entry_id, bad.seq) == (following, 4)
        assert "does not match its hash" in bad.reason


async def test_deleted_entry_is_detected(api: Api, fresh: TenantFixture, owner_url: str) -> None:
    rows = await chain_of(api, fresh, owner_url)
    with tampering(owner_url, fresh.id) as conn:
        conn.execute("DELETE FROM audit_log WHERE tenant_id = %s AND id = %s", (fresh.id, rows[2]["id"]))
        report = await verify_url(owner_url, fresh.id)
        [bad] = report.bad
        assert (bad.entry_id, bad.seq) == (rows[3]["id"], 4)
        assert "removed" in bad.reason


async def test_deleted_entry_is_detected_even_when_seqs_are_renumbered(
    api: Api, fresh: TenantFixture, owner_url: str
) -> None:
    rows = await chain_of(api, fresh, owner_url)
    with tampering(owner_url, fresh.id) as conn:
        conn.execute("DELETE FROM audit_log WHERE tenant_id = %s AND id = %s", (fresh.id, rows[2]["id"]))
        conn.execute("UPDATE audit_log SET seq = 1 - seq WHERE tenant_id = %s AND seq > 3", (fresh.id,))
        conn.execute("UPDATE audit_log SET seq = -seq WHERE tenant_id = %s AND seq < 0", (fresh.id,))
        [bad] = (await verify_url(owner_url, fresh.id)).bad
        assert bad.entry_id == rows[3]["id"]


async def test_reordered_entries_are_detected(api: Api, fresh: TenantFixture, owner_url: str) -> None:
    rows = await chain_of(api, fresh, owner_url)
    with tampering(owner_url, fresh.id) as conn:
        for old, new in ((2, 1000), (4, 2), (1000, 4)):
            conn.execute("UPDATE audit_log SET seq = %s WHERE tenant_id = %s AND seq = %s",
                         (new, fresh.id, old))
        [bad] = (await verify_url(owner_url, fresh.id)).bad
        assert (bad.entry_id, bad.seq) == (rows[3]["id"], 2)


async def test_cli_exit_codes(api: Api, fresh: TenantFixture, owner_url: str) -> None:
    rows = await chain_of(api, fresh, owner_url, 3)
    binary = Path(sys.executable).parent / "unifocus"
    env = {**os.environ, "DATABASE_URL": owner_url}

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(binary), "audit", "verify", "--tenant", str(fresh.id)],
                              env=env, capture_output=True, text=True, timeout=60)

    ok = await asyncio.to_thread(run)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "intact: 3 entries" in ok.stdout
    with tampering(owner_url, fresh.id) as conn:
        conn.execute("UPDATE audit_log SET request_id = 'forged' WHERE tenant_id = %s AND id = %s",
                     (fresh.id, rows[1]["id"]))
        bad = await asyncio.to_thread(run)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert str(rows[1]["id"]) in bad.stdout
    bogus = await asyncio.to_thread(subprocess.run, [str(binary), "audit", "verify", "--tenant", "nope"],
                                    env=env, capture_output=True, text=True, timeout=60)
    assert bogus.returncode == 2


async def test_a_tenant_whose_row_was_deleted_is_still_verified(api: Api, fresh: TenantFixture,
                                                                owner_url: str) -> None:
    """Deleting the tenants row (past the foreign keys, as the same bypass allows) does not
    take the tenant's entries out of the check: a full verify still names the edited one."""
    rows = await chain_of(api, fresh, owner_url, 3)
    with tampering(owner_url, fresh.id) as conn:
        conn.execute("UPDATE audit_log SET changes = jsonb_set(changes, '{after,firstName}', '\"Mallory\"') "
                     "WHERE tenant_id = %s AND id = %s", (fresh.id, rows[1]["id"]))
        conn.execute("CREATE TEMP TABLE tenant_backup AS SELECT * FROM tenants WHERE tenant_id = %s", (fresh.id,))
        conn.execute("DELETE FROM tenants WHERE tenant_id = %s", (fresh.id,))
        try:
            every = await cli(owner_url)
            one = await cli(owner_url, "--tenant", str(fresh.id))
        finally:
            conn.execute("INSERT INTO tenants SELECT * FROM tenant_backup")
            conn.execute("DROP TABLE tenant_backup")
    named = f"TAMPERED: tenant {fresh.id} chain 0: first bad entry {rows[1]['id']} (seq 2)"
    for done in (every, one):
        assert done.returncode == 1, done.stdout + done.stderr
        assert named in done.stdout, done.stdout


async def test_a_tenant_id_that_names_nothing_is_refused(owner_url: str, fresh: TenantFixture) -> None:
    """`--tenant` with an id that has neither a tenants row nor entries (a typo) is a bad
    option, exit 2, not "intact"; a tenant that exists but has no entries yet is intact."""
    nobody = uuid.uuid4()
    bad = await cli(owner_url, "--tenant", str(nobody))
    assert bad.returncode == 2, bad.stdout + bad.stderr
    assert f"no tenant {nobody}: no tenants row and no audit entries" in bad.stderr
    assert "intact" not in bad.stdout
    empty = await cli(owner_url, "--tenant", str(fresh.id))  # made by the fixture, no write yet
    assert empty.returncode == 0, empty.stdout + empty.stderr
    assert "audit log intact: 0 entries, 0 chains, 1 tenants" in empty.stdout


def _assert_contiguous(owner_url: str, tenant: uuid.UUID) -> int:
    rows = entries(owner_url, tenant)
    chains: dict[int, list[int]] = {}
    for e in rows:
        chains.setdefault(e["chain"], []).append(e["seq"])
    for seqs in chains.values():
        assert seqs == list(range(1, len(seqs) + 1))
    return len(chains)


async def _writers(api: Api, tenant: TenantFixture, writers: int, each: int) -> None:
    async def writer(w: int) -> None:
        for i in range(each):
            r = await create_employee(api, tenant.manager, f"W{w}-{i}")
            assert r.status_code == 201, r.text

    await asyncio.gather(*(writer(w) for w in range(writers)))


async def test_concurrent_writers_leave_a_verifiable_log(api: Api, fresh: TenantFixture,
                                                         owner_url: str) -> None:
    await _writers(api, fresh, 8, 12)
    report = await verify_url(owner_url, fresh.id)
    assert report.ok, report.bad
    assert report.entries == 96
    assert _assert_contiguous(owner_url, fresh.id) > 1  # spread over several chains


async def test_concurrent_writers_on_one_chain(owner_url: str, tmp_path: Path) -> None:
    """One chain per tenant: all 8 writers contend for the same chain lock."""
    one = make_settings(owner_url, tmp_path, audit_chains=1, db_pool_max=12)
    app, client, lifespan = await start_app(one)
    try:
        tenant = make_tenant(owner_url, one)
        await _writers(Api(client), tenant, 8, 10)
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)  # type: ignore[attr-defined]
    report = await verify_url(owner_url, tenant.id)
    assert report.ok, report.bad
    assert report.entries == 80
    assert _assert_contiguous(owner_url, tenant.id) == 1
