"""The schema stays distributable by tenant_id (deploy/citus/distribute.sql, docs/scaling.md).

Citus can enforce a primary key, unique constraint/index or foreign key on a distributed
table only when it includes the distribution column; we keep tenant_id as the LEADING column
of every one of them (it also serves tenant lookups). These are catalog checks on the
migrated schema, so a new table or constraint that would break the script fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
import pytest

pytestmark = pytest.mark.tenants

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "citus" / "distribute.sql"
CALL = re.compile(
    r"create_distributed_table\(\s*'(?P<table>\w+)'\s*,\s*'(?P<column>\w+)'"
    r"(?:\s*,\s*colocate_with\s*=>\s*'(?P<colocate>\w+)')?\s*\)")


def _tables(owner_sql: psycopg.Connection) -> list[str]:
    rows = owner_sql.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND c.relname <> 'alembic_version' "
        "ORDER BY 1").fetchall()
    return [r[0] for r in rows]


def _with_tenant_id(owner_sql: psycopg.Connection) -> set[str]:
    rows = owner_sql.execute(
        "SELECT table_name FROM information_schema.columns WHERE table_schema = 'public' "
        "AND column_name = 'tenant_id'").fetchall()
    return {r[0] for r in rows}


def _calls() -> list[re.Match[str]]:
    text = "\n".join(line.split("--", 1)[0] for line in SCRIPT.read_text().splitlines())
    return list(CALL.finditer(text))


def test_every_table_has_tenant_id(owner_sql: psycopg.Connection) -> None:
    tables = _tables(owner_sql)
    assert tables, "the migrated schema has no tables"
    assert set(tables) <= _with_tenant_id(owner_sql), set(tables) - _with_tenant_id(owner_sql)


def test_every_key_and_foreign_key_leads_with_tenant_id(owner_sql: psycopg.Connection) -> None:
    rows = owner_sql.execute("""
        SELECT c.conrelid::regclass::text, c.conname, c.contype,
               (SELECT attname FROM pg_attribute WHERE attrelid = c.conrelid AND attnum = c.conkey[1]),
               (SELECT attname FROM pg_attribute WHERE attrelid = c.confrelid AND attnum = c.confkey[1])
        FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
        JOIN pg_namespace n ON n.oid = t.relnamespace
        WHERE n.nspname = 'public' AND t.relname <> 'alembic_version' AND c.contype IN ('p', 'u', 'f')
    """).fetchall()
    kinds = {r[2] for r in rows}
    assert {"p", "u", "f"} <= kinds, kinds
    bad = [(table, name) for table, name, kind, first, ref_first in rows
           if first != "tenant_id" or (kind == "f" and ref_first != "tenant_id")]
    assert not bad, f"keys not led by tenant_id (Citus cannot enforce them): {bad}"
    # every table has a primary key (Citus distributes tables without one, but the service
    # and the distributed constraints rely on them)
    with_pk = {r[0] for r in rows if r[2] == "p"}
    assert set(_tables(owner_sql)) == with_pk


def test_every_unique_index_leads_with_tenant_id(owner_sql: psycopg.Connection) -> None:
    """Unique indexes that are not constraints (expression or partial ones) too."""
    rows = owner_sql.execute("""
        SELECT t.relname, i.relname,
               (SELECT attname FROM pg_attribute WHERE attrelid = x.indrelid AND attnum = x.indkey[0])
        FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
        JOIN pg_namespace n ON n.oid = t.relnamespace
        WHERE n.nspname = 'public' AND t.relname <> 'alembic_version' AND x.indisunique
    """).fetchall()
    assert len(rows) >= len(_tables(owner_sql))
    bad = [(table, index) for table, index, first in rows if first != "tenant_id"]
    assert not bad, f"unique indexes not led by tenant_id: {bad}"


def test_distribute_script_names_every_tenant_table(owner_sql: psycopg.Connection) -> None:
    calls = _calls()
    named = [m["table"] for m in calls]
    assert len(named) == len(set(named)), "a table is distributed twice"
    assert set(named) == _with_tenant_id(owner_sql) - {"alembic_version"}, (
        set(named) ^ _with_tenant_id(owner_sql))
    assert all(m["column"] == "tenant_id" for m in calls)
    assert named[0] == "tenants" and calls[0]["colocate"] is None
    assert all(m["colocate"] == "tenants" for m in calls[1:]), "every table colocated with tenants"


def test_distribute_script_orders_parents_first(owner_sql: psycopg.Connection) -> None:
    """A foreign key between distributed tables needs the referenced one distributed first."""
    order = {m["table"]: i for i, m in enumerate(_calls())}
    refs = owner_sql.execute("""
        SELECT c.conrelid::regclass::text, c.confrelid::regclass::text FROM pg_constraint c
        JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = 'public' AND c.contype = 'f'
    """).fetchall()
    assert refs
    late = [(child, parent) for child, parent in refs if child != parent and order[parent] > order[child]]
    assert not late, late
