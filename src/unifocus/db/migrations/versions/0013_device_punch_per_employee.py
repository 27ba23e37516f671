"""A device's `clientPunchId` names a punch of one employee: the repeat check includes the employee.

Revision ID: 0013
Revises: 0012

Until now a punch's device key was (tenant, device, clientPunchId): a second punch with the
same `device` and `clientPunchId` was a repeat whoever it named. `device` is free text in the
body, so an employee could send their own punch with a kiosk's next id (`kiosk-1`, `1043`);
when the kiosk then sent a coworker's punch with that id, it was answered with the employee's
punch (200, or 409 to an employee's token, or `duplicate` in a batch) and the coworker's punch
was never stored. A genuine repeat always names the employee of the punch it repeats (a
device resends what it sent), so the key is now (tenant, device, clientPunchId, employee):
the same id naming another employee is another punch, stored as such, and nothing anyone
sends can stop a device's punch for someone else from being stored.

The unique index gains the employee (built CONCURRENTLY: clocks keep writing meanwhile; a
build that fails leaves an INVALID index, which the migration run again replaces: drop it
first, `DROP INDEX CONCURRENTLY punches_tenant_device_client_employee`), and both reads of a
device's repeat
(`unifocus_enter_punch`, the classic write; `unifocus_read_punch`, the two-statement write)
match it. Downgrading restores the old index, which fails if two employees' punches now share
a device and clientPunchId: those are two real punches, and the old key cannot hold them.
"""

from __future__ import annotations

import importlib

from alembic import op

from unifocus.db.migrations.sqltext import edited, or_replace

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_ENTER_ROW = importlib.import_module("unifocus.db.migrations.versions.0009_enter_returns_a_row")
_TWO = importlib.import_module("unifocus.db.migrations.versions.0010_two_statement_punch")

_REPEAT = """WHERE p.tenant_id = p_tenant AND coalesce(p.device, '') = coalesce(p_device, '')
                  AND p.client_punch_id = p_client_punch_id"""
_COMMENT = """            -- A device's retry of a punch it already sent (its own dedupe key, not ours). Read
            -- even when the employee is not found: the stored punch is the answer then too."""
_EDITS = [
    (_REPEAT, _REPEAT + " AND p.employee_id = p_employee"),
    (_COMMENT, """            -- A device's retry of a punch it already sent for this employee (its own
            -- dedupe key, not ours; the same id for another employee is another punch)."""),
]

ENTER_PUNCH_BEFORE = _ENTER_ROW.ENTER_PUNCH  # already CREATE OR REPLACE
READ_PUNCH_BEFORE = or_replace(_TWO.READ_PUNCH, "unifocus_read_punch")
ENTER_PUNCH = edited(ENTER_PUNCH_BEFORE, _EDITS)
READ_PUNCH = edited(READ_PUNCH_BEFORE, _EDITS)

INDEX = "punches_tenant_device_client_employee"
OLD_INDEX = "punches_tenant_device_client"


def upgrade() -> None:
    # CONCURRENTLY, outside the migration's transaction: `punches` is the table every clock
    # writes to, and a plain CREATE INDEX would block its inserts for the whole build.
    with op.get_context().autocommit_block():
        op.execute(f"CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS {INDEX} ON punches (tenant_id, "
                   "(coalesce(device, '')), client_punch_id, employee_id) WHERE client_punch_id IS NOT NULL")
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {OLD_INDEX}")
    op.execute(ENTER_PUNCH)
    op.execute(READ_PUNCH)


def downgrade() -> None:
    op.execute(ENTER_PUNCH_BEFORE)
    op.execute(READ_PUNCH_BEFORE)
    with op.get_context().autocommit_block():
        op.execute(f"CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS {OLD_INDEX} ON punches (tenant_id, "
                   "(coalesce(device, '')), client_punch_id) WHERE client_punch_id IS NOT NULL")
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}")
