"""The punch window's reads also return a clock_in left open before the window.

Revision ID: 0018
Revises: 0017

Contract section 5: a `missed_punch` is raised "when the next `clock_in` arrives" after one
left open. A session that matched a shift is also flagged as time passes (the sweep's
`still_open_after_end`), but one that matched no shift has no end to measure against: only the
next clock_in reveals it. The engine reads facts 48 h either side of the zone it reconciles,
so a clock_in left open more than about two days earlier was never read, and never flagged:
a casual worker who forgot to clock out on Monday and clocked in on Friday got nothing.

Both window reads (`unifocus_punch_facts`, the two-statement write's; `unifocus_punch_context`,
the classic write's, voids', the sweep's) gain one key, `opened_before`: the employee's last
live punch before the window as `[id, type, ts]` when it is a clock_in stored with no shift,
else null; and the exceptions they return include that punch's own (so a finding already
stored is not inserted twice). One more probe of the (tenant, employee, ts) index per read,
backwards from the window's start, and a probe of the punch-owned exceptions only when such
a clock_in is found. Every other key is unchanged and the previous release reads only the
keys it knows: `unifocus_schema_compatible_from()` (0014) is left alone.
"""

from __future__ import annotations

import importlib

from alembic import op

from unifocus.db.migrations.sqltext import edited

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

_WINDOW_READ = importlib.import_module("unifocus.db.migrations.versions.0011_window_read_index_scan")
_ATTRIBUTIONS = importlib.import_module("unifocus.db.migrations.versions.0015_punch_attributions")

_DECLARE = "DECLARE\n    head jsonb;\n"
_AFTER_HEAD = "    IF head IS NULL THEN\n        RETURN NULL;\n    END IF;\n"
_READ_BEFORE = r"""    -- The employee's last live punch before the window, kept only when it is a clock_in that
    -- matched no shift: a session left open there, however long ago, is revealed by the
    -- window's next clock_in (migration 0018). A backward probe of (tenant, employee, ts).
    SELECT CASE WHEN b.type = 'clock_in' AND b.shift_id IS NULL THEN b.id END,
           jsonb_build_array(b.id, b.type, b.ts)
        INTO before_id, before_punch
        FROM (SELECT p.id, p.type, p.ts, p.shift_id FROM punches p
              WHERE p.tenant_id = p_tenant AND (p.employee_id, p.ts) < (p_employee, p_from)
                AND p.employee_id = p_employee AND NOT p.voided
              ORDER BY p.employee_id DESC, p.ts DESC LIMIT 1) b;
"""
_RETURN = "    RETURN head || jsonb_build_object(\n"
_UNDATED = "                  AND (x.shift_date IS NULL OR x.shift_date NOT BETWEEN p_zone_first AND p_zone_last)"
_OWNED_END = _UNDATED + ") z\n"
_OWNED_BEFORE = _UNDATED + r"""
                UNION ALL
                -- the punch-owned rows of the open clock_in before the window (above)
                SELECT x.* FROM exceptions x
                WHERE before_id IS NOT NULL AND x.tenant_id = p_tenant AND x.punch_id = before_id
                  AND x.shift_id IS NULL AND x.employee_id = p_employee AND x.status <> 'withdrawn'
                  AND (x.shift_date IS NULL OR x.shift_date NOT BETWEEN p_zone_first AND p_zone_last)) z
"""
_EDITS = [
    (_DECLARE, _DECLARE + "    before_id uuid;\n    before_punch jsonb;\n"),
    (_AFTER_HEAD, _AFTER_HEAD + _READ_BEFORE),
    (_RETURN, _RETURN + "        'opened_before', CASE WHEN before_id IS NULL THEN NULL ELSE before_punch END,\n"),
    (_OWNED_END, _OWNED_BEFORE),
]

PUNCH_CONTEXT_BEFORE = _ATTRIBUTIONS.PUNCH_CONTEXT
PUNCH_FACTS_BEFORE = _WINDOW_READ.PUNCH_FACTS  # both CREATE OR REPLACE already
PUNCH_CONTEXT = edited(PUNCH_CONTEXT_BEFORE, _EDITS)
PUNCH_FACTS = edited(PUNCH_FACTS_BEFORE, _EDITS)


def upgrade() -> None:
    op.execute(PUNCH_CONTEXT)
    op.execute(PUNCH_FACTS)


def downgrade() -> None:
    op.execute(PUNCH_CONTEXT_BEFORE)
    op.execute(PUNCH_FACTS_BEFORE)
