"""Migration 0006 rewrites `unifocus_audit_hash` in plpgsql (a parse and plan per audit entry
saved). It must hash exactly as before: chains written under 0005 verify after the upgrade,
chains continued under 0006 verify, and both still verify after a downgrade."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from tests.tenancy.seed import seed
from unifocus.audit.verify import verify_url
from unifocus.db.migrate import downgrade, upgrade
from unifocus.settings import Settings

pytestmark = pytest.mark.audit


def language(url: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT l.lanname FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang "
                           "WHERE p.proname = 'unifocus_audit_hash'").fetchone()
        assert row is not None
        return str(row[0])


def write_entries(url: str, tenant: uuid.UUID) -> int:
    """A row in every tenant table, each insert appending audit entries through the trigger."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, false)", (str(tenant),))
        seed(conn, tenant)
        row = conn.execute("SELECT count(*) FROM audit_log WHERE tenant_id = %s", (tenant,)).fetchone()
        assert row is not None
        return int(row[0])


def append(url: str, tenant: uuid.UUID) -> None:
    """More entries on the tenant's existing chains (the trigger sets seq, links and hash)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, false)", (str(tenant),))
        chains = [r[0] for r in conn.execute("SELECT DISTINCT chain FROM audit_log WHERE tenant_id = %s",
                                             (tenant,)).fetchall()]
        for chain in chains:
            conn.execute(
                "INSERT INTO audit_log (tenant_id, chain, request_id, action, entity, entity_id, changes, seq, "
                "created_at, prev_hash, hash) VALUES (%s, %s, 'after-0006', 'updated', 'Employee', %s, "
                "'{\"after\": {\"note\": \"\u00e9t\u00e9\"}}', 0, now(), '', '')", (tenant, chain, uuid.uuid4()))


async def verified(url: str, tenant: uuid.UUID) -> bool:
    return (await verify_url(url, tenant)).ok


async def test_the_plpgsql_hash_verifies_chains_of_the_sql_one_and_back(scratch_db: str) -> None:
    settings = Settings(database_url=scratch_db)
    upgrade(scratch_db, settings, "0005")
    assert language(scratch_db) == "sql"
    tenant = uuid.uuid4()
    before = write_entries(scratch_db, tenant)
    assert before > 0 and await verified(scratch_db, tenant)

    upgrade(scratch_db, settings)
    assert language(scratch_db) == "plpgsql"
    assert await verified(scratch_db, tenant), "entries hashed by the SQL function no longer verify"
    append(scratch_db, tenant)  # the same chains, continued under 0006
    assert await verified(scratch_db, tenant)

    downgrade(scratch_db, settings, "0005")
    assert language(scratch_db) == "sql"
    assert await verified(scratch_db, tenant), "entries hashed by the plpgsql function do not verify under 0005"


async def test_a_changed_entry_still_fails_verification(scratch_db: str) -> None:
    settings = Settings(database_url=scratch_db)
    upgrade(scratch_db, settings)
    tenant = uuid.uuid4()
    write_entries(scratch_db, tenant)
    with psycopg.connect(scratch_db, autocommit=True) as conn:
        # as the owner, with the append-only trigger out of the way: what an attacker with the
        # owner's rights could do, which the chain must reveal
        conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update")
        conn.execute("UPDATE audit_log SET action = 'deleted' WHERE tenant_id = %s AND seq = 1", (tenant,))
        conn.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update")
    assert not await verified(scratch_db, tenant)
