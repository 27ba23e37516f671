"""An index of late punches, so the sweep can re-evaluate what a late upload left behind.

Revision ID: 0017
Revises: 0016

The sweep raises the exceptions that need time to pass (absence, a shift or break left open)
for occurrences of the last few days only (`sweep.LOOKBACK`), and a punch write raises only
the ones its punch decides. A punch that arrives days after its time (an offline clock's
upload, a manager's correction) can leave such an exception due in a range the sweep never
looks at: a lone clock_in uploaded a week late was never flagged as left open. The sweep now
also re-evaluates, with the time-based rules, the range of every employee's late punches
received within its look-back (`sweep.late_ranges`).

A punch is late when its instant is more than a day before it was received: the sweep's own
range then no longer holds every occurrence it can touch. The index is partial, so a clock's
ordinary punch adds nothing to it; it is built CONCURRENTLY (clocks keep writing meanwhile;
a build that fails leaves an INVALID index: `DROP INDEX CONCURRENTLY punches_late_received`,
then migrate again). The previous release ignores it: `unifocus_schema_compatible_from()`
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
    with op.get_context().autocommit_block():
        op.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {INDEX} ON punches (tenant_id, received_at) "
                   f"WHERE {PREDICATE}")


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}")
