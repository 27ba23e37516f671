"""Less executor start-up in every statement: plain tenant policies, leaner punch reads.

Revision ID: 0008
Revises: 0007

A profile of PostgreSQL during `bench/pgbench_service.sql` (`perf record -a -g`, the
service's own statements for one punch) put ~20% of the backends' CPU in `ExecutorStart`:
building the executor state of every statement (and of every statement inside our plpgsql
functions) again on every execution, plan nodes and expressions alike. Three things made it
larger than it needs to be:

1. The tenant policy wrapped `current_setting` in a sub-SELECT, so every reference to a
   tenant table, in every statement, carried an InitPlan (a Result node of its own to start
   and run). The plain expression means the same (`current_setting` is STABLE: an index
   condition evaluates it once per scan, and the explicit `tenant_id = $tenant` the code
   always adds is what the indexes use). `ExecInitResult` alone was ~10% of the profile.
2. `unifocus_enter` set the tenant and lock_timeout with `PERFORM set_config(...)`: PERFORM
   runs a whole SELECT through the executor; an assignment is a plpgsql simple expression,
   evaluated without one.
3. `unifocus_punch_context` built its three lists with `jsonb_agg` (an Agg node each to start)
   and united the exceptions' two halves with UNION (an Append, a Sort and a Unique). The lists
   are now `ARRAY(...)` sub-links, and the halves are disjoint (the punch-owned half leaves
   out rows the dated half already has), so UNION ALL gives the same set; both stay ordered.

Measured (bench/README.md): `pgbench_service.sql` at 16 clients on one kept bench database,
downgraded to 0007 and upgraded to 0008 in turn, 6 x 10 s each: 2.34 ms of PostgreSQL CPU per
write on average against 2.51 (-7%), 703 against 663 writes/s (+6%); 0008 was lower in 5 of
the 6 pairs. The JSON the functions return is unchanged
(`tests/migrations/test_lean_executor_start.py`).
"""

from __future__ import annotations

import importlib

from alembic import op

from unifocus.db.migrations.sqltext import edited, or_replace

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_SCHEMA = importlib.import_module("unifocus.db.migrations.versions.0001_schema")
_ROUND_TRIP = importlib.import_module("unifocus.db.migrations.versions.0003_round_trip_functions")
_CONTEXT = importlib.import_module("unifocus.db.migrations.versions.0007_punch_context_exceptions")

TENANT_OF_SETTING = "NULLIF(current_setting('app.tenant_id', true), '')::uuid"
TENANT_OF_SETTING_BEFORE = "NULLIF((SELECT current_setting('app.tenant_id', true)), '')::uuid"


def _policy(table: str, tenant: str) -> str:
    return (f"ALTER POLICY tenant_isolation ON {table} "
            f"USING (tenant_id = {tenant}) WITH CHECK (tenant_id = {tenant})")


ENTER_BEFORE = or_replace(_ROUND_TRIP.ENTER, "unifocus_enter")
ENTER = edited(ENTER_BEFORE, [
    ("    u record;\n", "    u record;\n    ignored text;\n"),
    ("    PERFORM set_config('app.tenant_id', p_tenant::text, true);",
     "    ignored := set_config('app.tenant_id', p_tenant::text, true);"),
    ("        PERFORM set_config('lock_timeout', p_lock_timeout, true);",
     "        ignored := set_config('lock_timeout', p_lock_timeout, true);"),
])

_READS_BEFORE = _CONTEXT.PUNCH_CONTEXT[_CONTEXT.PUNCH_CONTEXT.index("    RETURN head || jsonb_build_object("):]
READS = r"""    RETURN head || jsonb_build_object(
        'punches', to_jsonb(ARRAY(
            SELECT jsonb_build_array(p.id, p.type, p.ts)
            FROM punches p
            -- One row comparison on (employee_id, ts): only (tenant_id, employee_id, ts) can
            -- serve it (see migration 0003).
            WHERE p.tenant_id = p_tenant
              AND (p.employee_id, p.ts) >= (p_employee, p_from) AND (p.employee_id, p.ts) < (p_employee, p_to)
              AND NOT p.voided)),
        'shifts', to_jsonb(ARRAY(
            SELECT jsonb_build_array(s.id, s.start_date, s.end_date, sh.id, sh.day_of_week, sh.start_time,
                                     sh.end_time)
            FROM schedules s
            JOIN shifts sh ON sh.tenant_id = s.tenant_id AND sh.schedule_id = s.id
            WHERE s.tenant_id = p_tenant AND s.employee_id = p_employee
              AND s.deleted_at IS NULL AND sh.deleted_at IS NULL
              AND s.start_date <= p_last AND s.end_date >= p_first)),
        'exceptions', to_jsonb(ARRAY(
            SELECT to_jsonb(z) FROM (
                SELECT x.* FROM exceptions x
                WHERE x.tenant_id = p_tenant AND x.employee_id = p_employee AND x.status <> 'withdrawn'
                  AND x.shift_date BETWEEN p_zone_first AND p_zone_last
                UNION ALL
                -- the punch-owned rows the dated half above has not already read
                SELECT x.* FROM punches p
                JOIN exceptions x ON x.tenant_id = p.tenant_id AND x.punch_id = p.id AND x.shift_id IS NULL
                WHERE p.tenant_id = p_tenant
                  AND (p.employee_id, p.ts) >= (p_employee, p_from) AND (p.employee_id, p.ts) < (p_employee, p_to)
                  AND NOT p.voided
                  AND x.employee_id = p_employee AND x.status <> 'withdrawn'
                  AND (x.shift_date IS NULL OR x.shift_date NOT BETWEEN p_zone_first AND p_zone_last)) z
            ORDER BY z.id)));
END $$;
"""
PUNCH_CONTEXT = edited(_CONTEXT.PUNCH_CONTEXT, [(_READS_BEFORE, READS)])


def upgrade() -> None:
    for table in _SCHEMA.TENANT_TABLES:
        op.execute(_policy(table, TENANT_OF_SETTING))
    op.execute(ENTER)
    op.execute(PUNCH_CONTEXT)


def downgrade() -> None:
    op.execute(_CONTEXT.PUNCH_CONTEXT)
    op.execute(ENTER_BEFORE)
    for table in _SCHEMA.TENANT_TABLES:
        op.execute(_policy(table, TENANT_OF_SETTING_BEFORE))
