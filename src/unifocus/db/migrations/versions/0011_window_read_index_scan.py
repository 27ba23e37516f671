"""The punch window's reads name the employee twice: a plain index scan, not a bitmap scan.

Revision ID: 0011
Revises: 0010

`unifocus_punch_facts` (the two-statement write's read) and `unifocus_punch_context` (the
classic write's) read an employee's punches in the window with one row comparison,
`(employee_id, ts) >= (E, from) AND (employee_id, ts) < (E, to)`, so that only the (tenant,
employee, ts) index can serve it (migration 0003 says why). But the planner cannot see that
the comparison pins `employee_id`: it estimated ~4,900 rows for a window that holds a handful,
and ran a bitmap heap scan (a bitmap built, then the heap read through it) where a plain index
scan does. Adding `employee_id = E`, which the row comparison already implies (so the rows are
the same), gives the estimate of one employee: 2 rows, a plain index scan, and still the same
index (the comparison keeps the tenant-wide (tenant, ts) index out). Both reads of the window
get it: the punches, and the punch-owned half of the exceptions.

Measured (bench/README.md, "Sixth session"): `SELECT unifocus_read_punch(...)` alone under
pgbench, 16 clients on a kept bench database, 0010 and 0011 alternated 6 x 8 s: 474 against
519 us of PostgreSQL CPU per read on average (-9%, lower in 5 of the 6 pairs).
"""

from __future__ import annotations

import importlib

from alembic import op

from unifocus.db.migrations.sqltext import edited, or_replace

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_TWO = importlib.import_module("unifocus.db.migrations.versions.0010_two_statement_punch")

_WINDOW = "AND (p.employee_id, p.ts) >= (p_employee, p_from) AND (p.employee_id, p.ts) < (p_employee, p_to)"
_EDITS = [
    # the window's punches
    (f"              {_WINDOW}\n              AND NOT p.voided)),",
     f"              {_WINDOW}\n              AND p.employee_id = p_employee AND NOT p.voided)),"),
    # the window's punch-owned exceptions
    (f"                  {_WINDOW}\n                  AND NOT p.voided\n",
     f"                  {_WINDOW}\n                  AND p.employee_id = p_employee AND NOT p.voided\n"),
]
FACTS_BEFORE = or_replace(_TWO.PUNCH_FACTS, "unifocus_punch_facts")
PUNCH_CONTEXT = edited(_TWO.PUNCH_CONTEXT, _EDITS)
PUNCH_FACTS = edited(FACTS_BEFORE, _EDITS)


def upgrade() -> None:
    op.execute(PUNCH_CONTEXT)
    op.execute(PUNCH_FACTS)


def downgrade() -> None:
    op.execute(_TWO.PUNCH_CONTEXT)
    op.execute(FACTS_BEFORE)
