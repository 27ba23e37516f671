"""Late punches indexed, so the sweep can re-evaluate what a late upload left behind.

Revision ID: 0017
Revises: 0016

The sweep raises the exceptions that need time to pass (absence, a shift or break left open)
for occurrences of the last few days only (`sweep.LOOKBACK`), and a punch write raises only
the ones its punch decides. A punch that arrives days after its time (an offline clock's
upload, a manager's correction) can leave such an exception due in a range the sweep never
looks at: a lone clock_in uploaded a week late was never flagged as left open. The sweep now
also re-evaluates, with the time-based rules, the days of every employee's late punches
received since its last pass (`sweep.late_pages`).

A punch is late when its instant is more than a day before it was received: the sweep's own
range then no longer holds every occurrence it can touch. The index is partial, so a clock's
ordinary punch adds nothing to it; it is built CONCURRENTLY (clocks keep writing meanwhile),
and an INVALID index that a failed build left behind is dropped and built again (IF NOT
EXISTS alone would keep it, and the planner never uses one).

`tenants.late_swept_until` is where the sweep's last pass over a tenant's late punches
reached: each pass reads the late punches received since then (less a margin for
transactions still open at that moment), so a late punch is evaluated by a pass or two, not
by every pass of the look-back. Bookkeeping, like `employees.facts_version`: not audited.

The previous release ignores both (it names its columns): `unifocus_schema_compatible_from()`
(0014) is left alone.
"""

from __future__ import annotations

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

INDEX = "punches_late_received"
# Keep in step with `sweep.LATE_QUERY`, whose predicate must imply this one for the planner.
PREDICATE = "received_at - ts > interval '1 day' AND NOT voided"


def upgrade() -> None:
    op.execute("ALTER TABLE tenants ADD COLUMN IF NOT EXISTS late_swept_until timestamptz")
    with op.get_context().autocommit_block():
        valid = op.get_bind().exec_driver_sql(
            "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            f"WHERE c.relname = '{INDEX}' AND pg_table_is_visible(c.oid)").scalar()
        if valid is False:  # a failed CONCURRENTLY build's leftover
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}")
        op.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {INDEX} ON punches (tenant_id, received_at) "
                   f"WHERE {PREDICATE}")


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}")
    op.execute("ALTER TABLE tenants DROP COLUMN IF EXISTS late_swept_until")
