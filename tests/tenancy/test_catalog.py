"""The catalog gate on the migrated test database: RLS on every tenant table, a runtime role
that can neither bypass it nor rewrite history, and tenant-leading keys."""

from __future__ import annotations

import psycopg
import pytest

from tests.tenancy import catalog
from tests.tenancy.seed import SEEDED_TABLES
from unifocus.settings import Settings

pytestmark = pytest.mark.tenants

# What migration 0001 creates; the gate must at least cover these (a catalog query that
# silently found nothing would prove nothing).
KNOWN_TENANT_TABLES = {"tenants", "employees", "users", "schedules", "shifts", "punches", "exceptions",
                       "idempotency_records", "audit_log"}


def test_every_known_table_is_found_as_a_tenant_table(owner_sql: psycopg.Connection) -> None:
    assert KNOWN_TENANT_TABLES <= set(catalog.tenant_tables(owner_sql))


def test_every_table_carries_tenant_id(owner_sql: psycopg.Connection) -> None:
    assert catalog.tables_without_tenant_id(owner_sql) == []


def test_every_tenant_table_has_forced_rls_and_a_tenant_policy(
    owner_sql: psycopg.Connection, settings: Settings
) -> None:
    assert catalog.rls_violations(owner_sql, settings.app_db_role) == []


def test_runtime_role_cannot_bypass_rls_own_objects_or_rewrite_the_audit_log(
    owner_sql: psycopg.Connection, settings: Settings
) -> None:
    assert settings.app_db_role == "unifocus_app"
    assert catalog.runtime_role_violations(owner_sql, settings.app_db_role) == []


def test_tenant_id_leads_every_primary_unique_and_foreign_key(owner_sql: psycopg.Connection) -> None:
    assert catalog.key_violations(owner_sql) == []


def test_every_tenant_table_is_seeded_by_the_isolation_tests(owner_sql: psycopg.Connection) -> None:
    """The RLS tests below read every tenant table with rows of two tenants in it; a new table
    needs a seed line in tests/tenancy/seed.py, or its isolation is untested."""
    assert set(catalog.tenant_tables(owner_sql)) == set(SEEDED_TABLES)


@pytest.mark.parametrize(
    "break_it, expected",
    [
        ("ALTER TABLE employees NO FORCE ROW LEVEL SECURITY", "employees: row-level security is not forced"),
        ("ALTER TABLE punches DISABLE ROW LEVEL SECURITY", "punches: row-level security is not enabled"),
        ("CREATE POLICY leak ON shifts FOR SELECT USING (true)", "shifts.leak: USING (true)"),
        ("GRANT UPDATE ON audit_log TO {role}", "has UPDATE on audit_log"),
        ("ALTER TABLE audit_log OWNER TO {role}", "owns table audit_log"),
        # (subject, id) is unique whatever other tests stored; (email) alone is not across tenants
        ("CREATE UNIQUE INDEX leak ON users (subject, id)", "unique index leak starts with subject"),
    ],
)
def test_the_gate_catches_a_broken_schema(
    owner_sql: psycopg.Connection, settings: Settings, break_it: str, expected: str
) -> None:
    """The checks themselves: each breakage, made inside a rolled-back transaction, is reported."""
    role = settings.app_db_role
    with owner_sql.transaction(force_rollback=True):
        owner_sql.execute(break_it.format(role=role))
        violations = catalog.gate_violations(owner_sql, role)
    assert any(expected in v for v in violations), violations
