"""The code-review question "is this query scoped to the tenant?", asked of every query in the
service's code: each SQL text that reads, updates or deletes a tenant's rows filters on
`tenant_id` in that same text (an insert names it among its columns). Row-level security
would still confine a query that did not (tests/tenancy), but the tenant in the query is what
lets PostgreSQL use the (tenant_id, ...) indexes, and a query that leans on RLS alone is one
policy change away from reading every tenant. Migrations are out of scope (they run as the
owner, on the whole schema)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.tenancy.test_catalog import KNOWN_TENANT_TABLES

pytestmark = pytest.mark.tenants

SRC = Path(__file__).resolve().parents[2] / "src" / "unifocus"
TABLES = "|".join(sorted(KNOWN_TENANT_TABLES))
TOUCHES = re.compile(rf"\b(FROM|UPDATE|INSERT INTO|DELETE FROM|JOIN)\s+(ONLY\s+)?({TABLES})\b", re.IGNORECASE)
# A read, update or delete must filter on the tenant, not merely name the column (an INSERT
# names it in its column list): `tenant_id = ...`, `... = x.tenant_id`, or `tenant_id IN`.
FILTERS = re.compile(r"\btenant_id\s*(=|IN\b)|=\s*[\w.]*\btenant_id\b", re.IGNORECASE)
INSERT = re.compile(r"^\s*INSERT INTO\b", re.IGNORECASE)
# Queries that may span tenants, and why.
CROSS_TENANT = {
    "demo/seed.py": "the demo seeding runs as the owner and finds its demo tenant by name",
}


def sql_texts(tree: ast.AST) -> list[tuple[int, str]]:
    """Every string literal and f-string (its literal parts) that is not a docstring."""
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    parts = {id(v) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for v in node.values}
    out = []
    for node in ast.walk(tree):
        if id(node) in docstrings or id(node) in parts:  # an f-string is read whole, below
            continue
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            out.append((node.lineno, node.value))
        elif isinstance(node, ast.JoinedStr):
            out.append((node.lineno, "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)))
    return out


def test_every_query_of_a_tenant_table_names_tenant_id() -> None:
    checked, unscoped = 0, []
    for path in sorted(SRC.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        for line, text in sql_texts(ast.parse(path.read_text())):
            if TOUCHES.search(text):
                checked += 1
                scoped = FILTERS.search(text) or (INSERT.match(text) and "tenant_id" in text)
                if not scoped and str(path.relative_to(SRC)) not in CROSS_TENANT:
                    unscoped.append(f"{path.relative_to(SRC)}:{line}: {text[:120]!r}")
    assert checked > 40, f"only {checked} queries found: has the code moved out of src/unifocus?"
    assert not unscoped, "queries that do not filter on tenant_id:\n" + "\n".join(unscoped)


def test_the_check_sees_an_unscoped_query() -> None:
    """The scan itself: an f-string query with no tenant is found, a docstring is not."""
    source = ('"""Reads FROM punches, in prose."""\n'
              'def f(cols):\n    return f"SELECT {cols} FROM punches WHERE id = $1"\n')
    found = [text for _, text in sql_texts(ast.parse(source)) if TOUCHES.search(text)]
    assert found == ["SELECT {} FROM punches WHERE id = $1"]
    assert not FILTERS.search("SELECT tenant_id FROM tenants WHERE name = $1")  # names it, filters nothing
    assert FILTERS.search("SELECT 1 FROM punches p WHERE p.tenant_id = $1")
