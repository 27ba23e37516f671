"""Migrations round-trip on a database of their own: head -> base -> head, empty and with
data, and after each upgrade the catalog gate holds and the schema works for the app role."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from tests.tenancy import catalog
from tests.tenancy.seed import SEEDED_TABLES, seed
from unifocus.db.migrate import downgrade, head_revision, upgrade
from unifocus.db.urls import app_url
from unifocus.settings import Settings

pytestmark = pytest.mark.tenants


def settings_for(url: str) -> Settings:
    return Settings(database_url=url)


def public_objects(url: str) -> tuple[list[str], list[str]]:
    with psycopg.connect(url) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1").fetchall()]
        functions = [r[0] for r in conn.execute(
            "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = 'public' ORDER BY 1").fetchall()]
    return tables, functions


def assert_at_head_and_gated(url: str) -> None:
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(head_revision(),)]
        assert catalog.gate_violations(conn, settings_for(url).app_db_role) == []
        assert set(catalog.tenant_tables(conn)) == set(SEEDED_TABLES)


def assert_at_base(url: str) -> None:
    tables, functions = public_objects(url)
    assert tables == ["alembic_version"], tables
    assert functions == [], functions
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == []


def assert_app_role_can_work(url: str) -> None:
    """The runtime role writes and reads a tenant's rows, and sees only them."""
    tenant = uuid.uuid4()
    with psycopg.connect(app_url(settings_for(url), url), autocommit=True) as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, false)", (str(tenant),))
        seeded = seed(conn, tenant)
        for table in SEEDED_TABLES:
            rows = conn.execute(f"SELECT tenant_id FROM {table}").fetchall()  # noqa: S608
            assert rows == [(tenant,)], (table, rows)
        entry = conn.execute("SELECT seq, length(hash) FROM audit_log WHERE entity_id = %s",
                             (seeded["employee"],)).fetchone()
        assert entry == (1, 32), "the audit chain trigger did not run"


def fill(url: str) -> None:
    """Two tenants with a row in every table (audit entries included), as the owner."""
    with psycopg.connect(url, autocommit=True) as conn:
        for _ in range(2):
            seed(conn, uuid.uuid4())


def test_empty_database_round_trips(scratch_db: str) -> None:
    upgrade(scratch_db, settings_for(scratch_db))
    assert_at_head_and_gated(scratch_db)
    downgrade(scratch_db, settings_for(scratch_db))
    assert_at_base(scratch_db)
    upgrade(scratch_db, settings_for(scratch_db))
    assert_at_head_and_gated(scratch_db)
    assert_app_role_can_work(scratch_db)


def test_filled_database_round_trips(scratch_db: str) -> None:
    upgrade(scratch_db, settings_for(scratch_db))
    assert_app_role_can_work(scratch_db)
    fill(scratch_db)
    downgrade(scratch_db, settings_for(scratch_db))  # append-only audit rows included
    assert_at_base(scratch_db)
    upgrade(scratch_db, settings_for(scratch_db))
    assert_at_head_and_gated(scratch_db)
    assert_app_role_can_work(scratch_db)


def test_upgrading_an_up_to_date_database_changes_nothing(scratch_db: str) -> None:
    upgrade(scratch_db, settings_for(scratch_db))
    fill(scratch_db)
    upgrade(scratch_db, settings_for(scratch_db))
    assert_at_head_and_gated(scratch_db)
    with psycopg.connect(scratch_db) as conn:
        assert conn.execute("SELECT count(*) FROM tenants").fetchone() == (2,)
