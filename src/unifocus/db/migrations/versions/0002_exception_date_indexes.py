"""Indexes for exceptions by local date (the engine's per-employee zone lookup and the
tenant-wide timesheet export both filter on shift_date), and for the audit API filtered by
entity alone (without it, a frequent entity's page sorts all its rows).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE INDEX exceptions_tenant_employee_date ON exceptions (tenant_id, employee_id, shift_date)")
    op.execute("CREATE INDEX exceptions_tenant_date ON exceptions (tenant_id, shift_date)")
    op.execute("CREATE INDEX audit_log_tenant_entity_only ON audit_log (tenant_id, entity, created_at DESC, id DESC)")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS audit_log_tenant_entity_only")
    op.execute("DROP INDEX IF EXISTS exceptions_tenant_date")
    op.execute("DROP INDEX IF EXISTS exceptions_tenant_employee_date")
