"""The audit hash as a plpgsql function: the same bytes, without a parse and plan per entry.

Revision ID: 0006
Revises: 0005

`unifocus_audit_hash` was a LANGUAGE sql function declared IMMUTABLE whose body calls
`to_char(timestamp, text)`, which is only STABLE, so PostgreSQL never inlines it. Called from
the chain trigger, a non-inlined SQL function is parsed, analysed and planned again in every
transaction (its cached state lives in the trigger's per-transaction expression state): a
profile of the punch write (`perf record` on the backends during `bench/pgbench_service.sql`)
put 11% of PostgreSQL's CPU in `fmgr_sql`, the parser and the planner under this one call.
plpgsql keeps the expression's plan for the life of the connection.

The serialisation is the same text, so every hash already stored re-computes to the same
value (`tests/migrations/test_audit_hash.py` checks entries written under 0005 after the
upgrade); `CREATE OR REPLACE` keeps the function's grants.
"""

from __future__ import annotations

import importlib

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# The canonical serialisation, taken from 0001's function body itself so both hash alike.
_BASE = importlib.import_module("unifocus.db.migrations.versions.0001_schema")
_SQL_BODY = _BASE.SCHEMA[_BASE.SCHEMA.index("CREATE FUNCTION unifocus_audit_hash"):]
CANONICAL = _SQL_BODY[_SQL_BODY.index("SELECT sha256(") + len("SELECT "):_SQL_BODY.index("\n$$;")]


def upgrade() -> None:
    op.execute(f"""
CREATE OR REPLACE FUNCTION unifocus_audit_hash(prev bytea, e audit_log) RETURNS bytea
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN {CANONICAL};
END $$;
""")


def downgrade() -> None:
    # Changing a function's language in place is allowed; its signature and grants stay.
    op.execute(f"""
CREATE OR REPLACE FUNCTION unifocus_audit_hash(prev bytea, e audit_log) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$
    SELECT {CANONICAL}
$$;
""")
