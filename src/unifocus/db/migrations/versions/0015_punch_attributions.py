"""The punch window's reads also answer each punch's stored attribution.

Revision ID: 0015
Revises: 0014

A punch's `shift_id`/`shift_date` were set when it was inserted and never changed, while the
exception engine and the timesheets pair the employee's punches again every time (a punch
inside a session takes the occurrence of the clock_in that opened it). A clock_in that
arrives late (an offline device) or a void moves the punches after it to another occurrence,
and the stored attribution then disagreed with the one the exceptions and timesheets use.
The engine now re-attributes them: every evaluation compares, in Python, the pairing's
attribution of each punch of its zone with the stored one, and updates the rows that differ
(`engine.reconcile`). For that it needs the stored attribution, which the window's reads did
not return.

`unifocus_punch_context` (the classic write, voids, the sweep, batch items) gains one key,
`attributions`: one `[id, shift_id, shift_date]` per live punch of the window, read with the
same predicate as `punches` (the same index, in the same statement, so from the same
snapshot). `punches` keeps its three-element rows and every other key is unchanged, so the
previous release's code (which reads only the keys it knows) still works on this schema:
`unifocus_schema_compatible_from()` (0014) is left alone.

`unifocus_punch_facts`, the two-statement write's read, does not: the second look at the
window's rows cost that read ~5% more PostgreSQL CPU per punch (`make bench`'s pgbench of the
service's statements, 1.48-1.53 against 1.35-1.41 times the floor), for a comparison whose
answer is known without it. A punch's attribution depends only on the punches before it, so
a punch that arrives after every stored punch of its zone (every clock, nearly always)
cannot move another; the two-statement write sends a punch with a later stored punch in its
zone to the classic write, which reads the attributions (`punches.service.record_prefetched`).
"""

from __future__ import annotations

import importlib

from alembic import op

from unifocus.db.migrations.sqltext import edited

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_WINDOW_READ = importlib.import_module("unifocus.db.migrations.versions.0011_window_read_index_scan")

_PUNCHES_END = "              AND p.employee_id = p_employee AND NOT p.voided)),\n"
_ATTRIBUTIONS = r"""        -- Each live punch's stored attribution (the engine re-attributes the ones that differ
        -- from its pairing's): the same rows as 'punches', which keeps its three-element rows.
        'attributions', to_jsonb(ARRAY(
            SELECT jsonb_build_array(p.id, p.shift_id, p.shift_date)
            FROM punches p
            WHERE p.tenant_id = p_tenant
              AND (p.employee_id, p.ts) >= (p_employee, p_from) AND (p.employee_id, p.ts) < (p_employee, p_to)
              AND p.employee_id = p_employee AND NOT p.voided)),
"""
_EDITS = [(_PUNCHES_END, _PUNCHES_END + _ATTRIBUTIONS)]

PUNCH_CONTEXT_BEFORE = _WINDOW_READ.PUNCH_CONTEXT  # already CREATE OR REPLACE
PUNCH_CONTEXT = edited(PUNCH_CONTEXT_BEFORE, _EDITS)


def upgrade() -> None:
    op.execute(PUNCH_CONTEXT)


def downgrade() -> None:
    op.execute(PUNCH_CONTEXT_BEFORE)
