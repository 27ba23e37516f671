"""The punch context reads an employee's exceptions through indexes only.

Revision ID: 0007
Revises: 0006

`unifocus_punch_context` read the zone's live exceptions with one predicate, `shift_date in
the zone OR (no shift AND the punch is in the window)`. No index serves an OR with a subquery,
so PostgreSQL read every exception the employee ever had (by the (tenant, employee) index) and
filtered: a cost that grows with tenure, on every punch. Worse, while the table is young the
cached plan is a sequential scan of the whole table (auto_explain in a `make bench` run: 129
of the context read's 147 buffer hits, 0.42 of its 0.6 ms).

Now the two halves are read apart and united (UNION removes a row both halves find, so the set
is the same): the zone's dated exceptions by (tenant, employee, shift_date), and the window's
punch-owned ones from the window's punches through a new partial index on (tenant, punch_id)
of the rows without a shift. The rows are ordered by id, so the engine sees them in a stable
order (it was unspecified).
"""

from __future__ import annotations

import importlib

from alembic import op

from unifocus.db.migrations.sqltext import edited, or_replace

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_OLD = importlib.import_module("unifocus.db.migrations.versions.0003_round_trip_functions")

EXCEPTIONS_BEFORE = _OLD.PUNCH_CONTEXT[_OLD.PUNCH_CONTEXT.index("        'exceptions', ("):]
EXCEPTIONS_AFTER = r"""        'exceptions', (
            SELECT coalesce(jsonb_agg(to_jsonb(z) ORDER BY z.id), '[]'::jsonb)
            FROM (
                SELECT x.* FROM exceptions x
                WHERE x.tenant_id = p_tenant AND x.employee_id = p_employee AND x.status <> 'withdrawn'
                  AND x.shift_date BETWEEN p_zone_first AND p_zone_last
                UNION
                SELECT x.* FROM punches p
                JOIN exceptions x ON x.tenant_id = p.tenant_id AND x.punch_id = p.id AND x.shift_id IS NULL
                WHERE p.tenant_id = p_tenant
                  AND (p.employee_id, p.ts) >= (p_employee, p_from) AND (p.employee_id, p.ts) < (p_employee, p_to)
                  AND NOT p.voided
                  AND x.employee_id = p_employee AND x.status <> 'withdrawn') z));
END $$;
"""

PUNCH_CONTEXT_BEFORE = or_replace(_OLD.PUNCH_CONTEXT, "unifocus_punch_context")
PUNCH_CONTEXT = edited(PUNCH_CONTEXT_BEFORE, [(EXCEPTIONS_BEFORE, EXCEPTIONS_AFTER)])


def upgrade() -> None:
    op.execute("CREATE INDEX exceptions_tenant_punch ON exceptions (tenant_id, punch_id) WHERE shift_id IS NULL")
    op.execute(PUNCH_CONTEXT)


def downgrade() -> None:
    op.execute(PUNCH_CONTEXT_BEFORE)
    op.execute("DROP INDEX IF EXISTS exceptions_tenant_punch")
