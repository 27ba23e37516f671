"""The code-review question "is this query scoped to the tenant?", asked of every query in the
service's code: each SQL text that reads or writes a tenant's table names `tenant_id` in that
same text. Row-level security would still confine a query that did not (tests/tenancy), but
the tenant in the query is what lets PostgreSQL use the (tenant_id, ...) indexes, and a query
that leans on RLS alone is one policy change away from reading every tenant. Migrations are
out of scope (they run as the owner, on the whole schema)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.tenants

SRC = Path(__file__).resolve().parents[2] / "src" / "unifocus"
TABLES = "tenants|employees|users|schedules|shifts|punches|exceptions|idempotency_records|audit_log"
TOUCHES = re.compile(rf"\b(FROM|UPDATE|INSERT INTO|DELETE FROM|JOIN)\s+(ONLY\s+)?({TABLES})\b", re.IGNORECASE)


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
                if "tenant_id" not in text:
                    unscoped.append(f"{path.relative_to(SRC)}:{line}: {text[:120]!r}")
    assert checked > 40, f"only {checked} queries found: has the code moved out of src/unifocus?"
    assert not unscoped, "queries that do not name tenant_id:\n" + "\n".join(unscoped)


def test_the_check_sees_an_unscoped_query() -> None:
    """The scan itself: an f-string query with no tenant is found, a docstring is not."""
    source = ('"""Reads FROM punches, in prose."""\n'
              'def f(cols):\n    return f"SELECT {cols} FROM punches WHERE id = $1"\n')
    found = [text for _, text in sql_texts(ast.parse(source)) if TOUCHES.search(text)]
    assert found == ["SELECT {} FROM punches WHERE id = $1"]
