"""Row-level security as the service's own database role sees it: fail closed without a
tenant, only the tenant's rows with one, no writes into another tenant, tenant_id fixed."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest

from tests.tenancy.seed import SEED_SQL, SEEDED_TABLES, Seeded, seed

pytestmark = pytest.mark.tenants


@pytest.fixture()
def two_tenants(owner_sql: psycopg.Connection) -> tuple[Seeded, Seeded]:
    return seed(owner_sql, uuid.uuid4()), seed(owner_sql, uuid.uuid4())


@pytest.fixture()
def runtime(runtime_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(runtime_url, autocommit=True) as conn:
        yield conn


def set_tenant(conn: psycopg.Connection, tenant: uuid.UUID | str) -> None:
    conn.execute("SELECT set_config('app.tenant_id', %s, false)", (str(tenant),))


def tenant_ids_visible(conn: psycopg.Connection, table: str) -> list[uuid.UUID]:
    return [r[0] for r in conn.execute(f"SELECT tenant_id FROM {table}").fetchall()]  # noqa: S608


def test_runtime_connection_is_the_unprivileged_role(runtime: psycopg.Connection) -> None:
    row = runtime.execute("SELECT current_user, current_setting('is_superuser')").fetchone()
    assert row == ("unifocus_app", "off")


@pytest.mark.parametrize("table", SEEDED_TABLES)
@pytest.mark.parametrize("tenant_setting", [None, ""], ids=["never-set", "reset-to-empty"])
def test_without_a_tenant_every_table_reads_empty(
    runtime: psycopg.Connection, two_tenants: tuple[Seeded, Seeded], table: str, tenant_setting: str | None
) -> None:
    if tenant_setting is not None:
        set_tenant(runtime, two_tenants[0].tenant)  # a pooled connection that served a tenant before
        set_tenant(runtime, tenant_setting)
    assert runtime.execute(f"SELECT * FROM {table}").fetchall() == []  # noqa: S608


@pytest.mark.parametrize("table", SEEDED_TABLES)
def test_with_tenant_a_set_no_row_of_tenant_b_is_visible(
    runtime: psycopg.Connection, two_tenants: tuple[Seeded, Seeded], table: str
) -> None:
    a, b = two_tenants
    set_tenant(runtime, a.tenant)
    visible = tenant_ids_visible(runtime, table)
    assert a.tenant in visible, "tenant A's own seeded row must be visible (else the test proves nothing)"
    assert set(visible) == {a.tenant}
    by_id = runtime.execute(f"SELECT count(*) FROM {table} WHERE tenant_id = %s", (b.tenant,)).fetchone()  # noqa: S608
    assert by_id == (0,)


@pytest.mark.parametrize("table, insert", SEED_SQL, ids=SEEDED_TABLES)
def test_inserting_a_row_of_another_tenant_is_refused(
    runtime: psycopg.Connection, two_tenants: tuple[Seeded, Seeded], table: str, insert: str
) -> None:
    a, b = two_tenants
    set_tenant(runtime, a.tenant)
    row_of_b = dict(b.values, **{k: uuid.uuid4() for k in ("employee", "user", "schedule", "shift", "punch",
                                                           "exception")})
    row_of_b.update(tenant=b.tenant if table != "tenants" else uuid.uuid4())
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
        runtime.execute(insert, row_of_b)


@pytest.mark.parametrize("table", [t for t in SEEDED_TABLES if t not in ("audit_log",)])
def test_runtime_role_cannot_move_a_row_to_another_tenant(
    runtime: psycopg.Connection, two_tenants: tuple[Seeded, Seeded], table: str
) -> None:
    a, b = two_tenants
    set_tenant(runtime, a.tenant)
    with pytest.raises(psycopg.Error, match="cannot change|row-level security"):
        runtime.execute(f"UPDATE {table} SET tenant_id = %s WHERE tenant_id = %s", (b.tenant, a.tenant))  # noqa: S608


@pytest.mark.parametrize("table", SEEDED_TABLES)
def test_even_the_owner_cannot_change_tenant_id(
    owner_sql: psycopg.Connection, two_tenants: tuple[Seeded, Seeded], table: str
) -> None:
    a, b = two_tenants
    # The owner in the tests is a superuser: RLS does not stop it, only the trigger can.
    expected = "append-only" if table == "audit_log" else f"tenant_id of {table} cannot change"
    target = b.tenant if table != "tenants" else uuid.uuid4()
    with pytest.raises(psycopg.Error, match=expected):
        owner_sql.execute(f"UPDATE {table} SET tenant_id = %s WHERE tenant_id = %s", (target, a.tenant))  # noqa: S608
    rows = owner_sql.execute(f"SELECT count(*) FROM {table} WHERE tenant_id = %s", (a.tenant,)).fetchone()  # noqa: S608
    assert rows == (1,)


def test_runtime_role_cannot_touch_the_audit_log(
    runtime: psycopg.Connection, two_tenants: tuple[Seeded, Seeded]
) -> None:
    a, _ = two_tenants
    set_tenant(runtime, a.tenant)
    for statement in ("UPDATE audit_log SET action = 'deleted'", "DELETE FROM audit_log", "TRUNCATE audit_log"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            runtime.execute(statement)
