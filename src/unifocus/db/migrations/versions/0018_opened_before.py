"""A read of the clock_in left open before a punch's window, for the rare punch that needs it.

Revision ID: 0018
Revises: 0017

Contract section 5: a `missed_punch` is raised "when the next `clock_in` arrives" after one
left open. A session that matched a shift is also flagged as time passes (the sweep), but one
that matched no shift has no end to measure against: only the next clock_in reveals it. The
engine reads facts 48 h either side of the zone it reconciles, so a clock_in left open more
than about two days before the next one was never read, and never flagged.

`unifocus_opened_before(tenant, employee, before)`: the employee's last live clock_in or
clock_out before `before` when it is a clock_in stored with no shift (a session still open
there, its breaks included), with its own exceptions, as
`{"punch": [id, type, ts], "exceptions": [...]}`; null otherwise. A backward probe of the
(tenant, employee, ts) index. A punch write asks only when the punch itself is the window's first clock_in
or clock_out and a clock_in (`engine.opened_before_needed`): not when the employee clocked
in or out in the two days before, so not on an ordinary working day's punch; the window
reads themselves are unchanged. It sets the tenant itself, as the write path's other
functions do, so the two-statement write can call it between its statements, outside a
transaction. A new function: the previous release is not affected
(`unifocus_schema_compatible_from()`, 0014, is left alone).
"""

from __future__ import annotations

from alembic import op

from unifocus.db.migrations.roles import grant_execute

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

SIGNATURE = "unifocus_opened_before(uuid, uuid, timestamptz)"
FUNCTION = r"""
CREATE FUNCTION unifocus_opened_before(p_tenant uuid, p_employee uuid, p_before timestamptz)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY INVOKER AS $$
DECLARE
    ignored text;
BEGIN
    ignored := set_config('app.tenant_id', p_tenant::text, true);
    RETURN (
        SELECT jsonb_build_object('punch', jsonb_build_array(b.id, b.type, b.ts), 'exceptions', to_jsonb(ARRAY(
            SELECT to_jsonb(x) FROM exceptions x
            WHERE x.tenant_id = p_tenant AND x.punch_id = b.id AND x.shift_id IS NULL
              AND x.employee_id = p_employee AND x.status <> 'withdrawn'
            ORDER BY x.id)))
        -- The last clock_in or clock_out (break punches neither open nor close a session; at
        -- one instant the pairing takes the clock_out first, so the clock_in is the later).
        FROM (SELECT p.id, p.type, p.ts, p.shift_id FROM punches p
              WHERE p.tenant_id = p_tenant AND (p.employee_id, p.ts) < (p_employee, p_before)
                AND p.employee_id = p_employee AND NOT p.voided AND p.type IN ('clock_in', 'clock_out')
              ORDER BY p.employee_id DESC, p.ts DESC, p.type = 'clock_in' DESC LIMIT 1) b
        WHERE b.type = 'clock_in' AND b.shift_id IS NULL);
END $$;
"""


def upgrade() -> None:
    op.execute(FUNCTION)
    grant_execute(SIGNATURE)


def downgrade() -> None:
    op.execute(f"DROP FUNCTION {SIGNATURE}")
