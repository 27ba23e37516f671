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

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# The canonical serialisation (0001_schema.py): one field per '|', '~' for NULL, timestamps at
# the microsecond precision the column stores.
CANONICAL = r"""
    sha256(prev || convert_to(
        coalesce(e.tenant_id::text, '~') || '|' || coalesce(e.id::text, '~') || '|' ||
        e.chain::text || '|' || e.seq::text || '|' || coalesce(e.user_id::text, '~') || '|' ||
        e.action || '|' || e.entity || '|' || e.entity_id::text || '|' || e.changes::text || '|' ||
        coalesce(e.employee_id::text, '~') || '|' || coalesce(e.punch_id::text, '~') || '|' ||
        coalesce(e.exception_id::text, '~') || '|' || coalesce(e.request_id, '~') || '|' ||
        to_char(e.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'UTF8'))
"""


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
