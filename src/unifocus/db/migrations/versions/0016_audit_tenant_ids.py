"""`unifocus audit verify` walks every tenant that has audit entries, with or without a tenants row.

Revision ID: 0016
Revises: 0015

`audit verify` took its tenants from `unifocus_tenant_ids()`, the `tenants` table. A tenant
whose row was deleted (only possible past the foreign keys, e.g. a superuser with
`session_replication_role = replica`: the very bypass verify exists to catch) had its entries
never checked, and a rewrite of them was reported as an intact log.
`unifocus_audit_tenant_ids()` answers the ids of `tenants` and every `tenant_id` that
`audit_log` holds. The jobs keep `unifocus_tenant_ids()`: they serve live tenants only.

`audit_log` grows to millions of rows, so its tenant ids are found by a loose index scan, not
a DISTINCT over the table: one `tenant_id > <the previous one> ORDER BY tenant_id LIMIT 1`
per tenant, each a descent of an index led by tenant_id (the primary key, (tenant_id, id)),
so the cost follows the number of tenants, not of entries (1.5 million entries of 150
tenants: ~15 ms, against ~420 ms for count(DISTINCT tenant_id)). A PL/pgSQL loop rather than a recursive
CTE: under Citus (deploy/citus) a recursive CTE runs within one shard only, while each step
here is an ordinary ORDER BY ... LIMIT over all shards.

Row-level security is FORCE'd on `audit_log`, for the owner too, and this SECURITY DEFINER
function runs as the owner: unless the owner is a superuser it would see no row at all. The
policy `audit_log_owner_directory` lets the owner (the role running this migration) read
every row, but only while `unifocus.audit_directory` is 'on', which this function sets on
entry and clears before it returns: the owner's other reads of `audit_log` stay confined to
the tenant set, as before. (Not a `SET` clause of the function, which would restore the
setting by itself: PostgreSQL 15 allows only a superuser to attach a custom setting that
way.) Like `tenants_owner_directory` (0001), it is the owner's alone; the runtime role's
policies are unchanged.

The previous release's code does not call the function and is not affected by the policy (its
owner reads name the tenant): `unifocus_schema_compatible_from()` (0014) is left alone.
"""

from __future__ import annotations

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

# Volatile: it sets a setting. Every row is gathered before it returns (RETURN NEXT/QUERY
# fill the result first), so the directory is closed again before the caller reads a row; an
# error rolls the setting back with the (sub)transaction.
FUNCTION = r"""
CREATE FUNCTION unifocus_audit_tenant_ids() RETURNS SETOF uuid
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    t uuid;
BEGIN
    PERFORM set_config('unifocus.audit_directory', 'on', true);
    -- Every tenant_id of audit_log, one index descent each (ascending).
    t := (SELECT a.tenant_id FROM audit_log a ORDER BY a.tenant_id LIMIT 1);
    WHILE t IS NOT NULL LOOP
        RETURN NEXT t;
        t := (SELECT a.tenant_id FROM audit_log a WHERE a.tenant_id > t ORDER BY a.tenant_id LIMIT 1);
    END LOOP;
    -- Then the tenants with no entry.
    RETURN QUERY SELECT x.tenant_id FROM tenants x
        WHERE NOT EXISTS (SELECT 1 FROM audit_log a WHERE a.tenant_id = x.tenant_id);
    PERFORM set_config('unifocus.audit_directory', '', true);
END $$
"""


def upgrade() -> None:
    op.execute("CREATE POLICY audit_log_owner_directory ON audit_log FOR SELECT TO CURRENT_USER "
               "USING (current_setting('unifocus.audit_directory', true) = 'on')")
    op.execute(FUNCTION)
    # The owner's alone: `unifocus audit verify` runs as the owner, and the runtime role has no
    # need to list tenants that no longer exist.
    op.execute("REVOKE ALL ON FUNCTION unifocus_audit_tenant_ids() FROM PUBLIC")


def downgrade() -> None:
    op.execute("DROP FUNCTION unifocus_audit_tenant_ids()")
    op.execute("DROP POLICY audit_log_owner_directory ON audit_log")
