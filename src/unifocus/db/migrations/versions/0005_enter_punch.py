"""The first statement of a punch write: enter and the exception engine's reads together.

Revision ID: 0005
Revises: 0004

A punch write needed `unifocus_enter` (tenant, caller, claim), then `unifocus_punch_context`
(employee lock, facts), then a lookup of a device's `clientPunchId`: three round trips, each
costing the API worker more CPU than the statement costs PostgreSQL (bench/README.md).
`unifocus_enter_punch` makes the same calls, in the same order, in one. The context is read
only when the write is going ahead: an active caller who may punch for this employee (staff,
or an employee user for their own record) and, for a keyed write, who now owns the key. In
every other case the row says why and the context is NULL, so no other employee's facts are
read or locked on behalf of a caller who is about to be refused. The context is also NULL when
the employee is not found (with a `clientPunchId`, it is then `{"existing": ...}` only).
"""

from __future__ import annotations

from alembic import op

from unifocus.db.migrations.roles import grant_execute

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SIGNATURE = ("unifocus_enter_punch(uuid, text, text, text, text, text, bytea, double precision, uuid, "
             "timestamptz, timestamptz, date, date, date, date, text, text)")

ENTER_PUNCH = r"""
CREATE FUNCTION unifocus_enter_punch(
    p_tenant uuid, p_subject text, p_lock_timeout text,
    p_method text, p_path text, p_key text, p_fingerprint bytea, p_ttl_seconds double precision,
    p_employee uuid, p_from timestamptz, p_to timestamptz,
    p_first date, p_last date, p_zone_first date, p_zone_last date,
    p_device text, p_client_punch_id text)
RETURNS TABLE (o_user_id uuid, o_email text, o_role text, o_employee_id uuid, o_active boolean,
               o_claimed boolean, o_fingerprint bytea, o_status integer, o_headers jsonb, o_body bytea,
               o_context jsonb)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER AS $$
DECLARE
    e record;
BEGIN
    SELECT * INTO e FROM unifocus_enter(p_tenant, p_subject, p_lock_timeout, p_method, p_path, p_key,
                                        p_fingerprint, p_ttl_seconds);
    IF NOT FOUND OR e.o_user_id IS NULL THEN
        RETURN;  -- unknown user: no row, as unifocus_enter
    END IF;
    o_user_id := e.o_user_id; o_email := e.o_email; o_role := e.o_role; o_employee_id := e.o_employee_id;
    o_active := e.o_active; o_claimed := e.o_claimed; o_fingerprint := e.o_fingerprint;
    o_status := e.o_status; o_headers := e.o_headers; o_body := e.o_body;
    IF e.o_active AND coalesce(e.o_claimed, true)
       AND (e.o_role <> 'employee' OR e.o_employee_id IS NOT DISTINCT FROM p_employee) THEN
        o_context := unifocus_punch_context(p_tenant, p_employee, p_from, p_to, p_first, p_last,
                                            p_zone_first, p_zone_last);
        IF p_client_punch_id IS NOT NULL THEN
            -- A device's retry of a punch it already sent (its own dedupe key, not ours). Read
            -- even when the employee is not found: the stored punch is the answer then too.
            o_context := coalesce(o_context, '{}'::jsonb) || jsonb_build_object('existing', (
                SELECT to_jsonb(p) FROM punches p
                WHERE p.tenant_id = p_tenant AND coalesce(p.device, '') = coalesce(p_device, '')
                  AND p.client_punch_id = p_client_punch_id));
        END IF;
    END IF;
    RETURN NEXT;
END $$;
"""


def upgrade() -> None:
    op.execute(ENTER_PUNCH)
    grant_execute(SIGNATURE)


def downgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {SIGNATURE}")
