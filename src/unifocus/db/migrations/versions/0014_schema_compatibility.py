"""The schema says which code it still serves: rolling back the code without rolling back the schema.

Revision ID: 0014
Revises: 0013

Until now `/ready` required the database to be at exactly the code's head revision. A
release with a migration therefore made every replica of the previous release unready the
moment the migration Job ran (no ready pod until the new ones started), and `kubectl rollout
undo` after it gave pods that never became ready. Migrations here are written expand first
(a release's migration keeps the previous release's code working; a column is dropped a
release after the code stops using it), so the previous code can serve a newer schema; it
only needs to know that it may.

`unifocus_schema_compatible_from()` answers the oldest revision whose code works on this
schema. A migration that keeps the previous code working leaves it alone; one that breaks it
(a contract step) replaces it with its own revision. The code is ready on its own head, and
on a newer schema whose answer is at or below its head (`unifocus.db.migrate.schema_check`,
docs/rollback.md). This one keeps 0013's code working: it only adds the function.
"""

from __future__ import annotations

from alembic import op

from unifocus.db.migrations.roles import grant_execute

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

COMPATIBLE_FROM = "0013"


def upgrade() -> None:
    op.execute(f"""CREATE FUNCTION unifocus_schema_compatible_from() RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT '{COMPATIBLE_FROM}'::text $$""")
    grant_execute("unifocus_schema_compatible_from()")


def downgrade() -> None:
    op.execute("DROP FUNCTION unifocus_schema_compatible_from()")
