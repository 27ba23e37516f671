"""Migration 0016: `unifocus audit verify` finds every tenant that has audit entries, one whose
tenants row was deleted included, also when the owner is not a superuser: row-level security
is forced on audit_log for the owner too, and the owner's other reads of it stay confined to
the tenant set (tests/audit/test_verify.py covers the command itself as a superuser)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from tests.conftest import drop_database
from tests.tenancy.seed import seed
from unifocus.audit.verify import verify_url
from unifocus.db.migrate import upgrade
from unifocus.db.urls import with_database, with_user
from unifocus.settings import Settings

pytestmark = pytest.mark.audit


@pytest.fixture()
def plain_owner(server_url: str, owner_url: str) -> Iterator[tuple[str, str]]:
    """(owner URL, superuser URL) of a database owned by a role that is neither superuser nor
    BYPASSRLS, migrated to head by it. (`owner_url`: the runtime role exists, which this
    owner may not create.)"""
    role, password = f"uf_owner_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    name = f"unifocus_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as su:
        su.execute(sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD {}")
                   .format(sql.Identifier(role), sql.Literal(password)))
        su.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(role)))
    superuser = with_database(server_url, name)
    try:
        owner = with_user(superuser, role, password)
        upgrade(owner, Settings(database_url=owner))
        yield owner, superuser
    finally:
        drop_database(server_url, superuser)
        with psycopg.connect(server_url, autocommit=True) as su:
            su.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def audit_rows_seen(owner: psycopg.Connection) -> int:
    row = owner.execute("SELECT count(*) FROM audit_log").fetchone()
    assert row is not None
    return int(row[0])


async def test_a_plain_owner_verifies_a_tenant_whose_row_was_deleted(plain_owner: tuple[str, str]) -> None:
    owner_url, superuser_url = plain_owner
    kept, gone = uuid.uuid4(), uuid.uuid4()
    with psycopg.connect(owner_url, autocommit=True) as owner:
        for tenant in (kept, gone):
            owner.execute("SELECT set_config('app.tenant_id', %s, false)", (str(tenant),))
            seed(owner, tenant)  # one audit entry each, chained by the trigger
        owner.execute("SELECT set_config('app.tenant_id', '', false)")
        assert audit_rows_seen(owner) == 0  # no tenant set: the owner sees no entry
    with psycopg.connect(superuser_url, autocommit=True) as su:
        su.execute("SET session_replication_role = replica")  # triggers and foreign keys off
        su.execute("UPDATE audit_log SET request_id = 'forged' WHERE tenant_id = %s", (gone,))
        su.execute("DELETE FROM tenants WHERE tenant_id = %s", (gone,))

    report = await verify_url(owner_url)
    assert report.tenants == 2 and report.entries == 2
    [bad] = report.bad
    assert bad.tenant_id == gone and "edited" in bad.reason

    with psycopg.connect(owner_url) as owner:  # one transaction
        assert {r[0] for r in owner.execute("SELECT unifocus_audit_tenant_ids()")} == {kept, gone}
        # The function opened the owner's view of audit_log for itself only.
        assert audit_rows_seen(owner) == 0
