"""A punch written in two autocommit statements: read the facts, then write if they still hold.

Revision ID: 0010
Revises: 0009

The classic write is four round trips: BEGIN, `unifocus_enter_punch` (claim the key, lock the
employee, read the facts), the last statement (punch, exceptions, audit, stored answer),
COMMIT. The employee lock and the claim are held while the worker evaluates the rules, and
BEGIN and COMMIT cost the worker as much as a statement each (bench/README.md). This
migration adds the functions of an optimistic write with no transaction held across Python:

1. `unifocus_read_punch` (same arguments as `unifocus_enter_punch`, its columns as one
   composite value, `unifocus_read`): tenant and caller as `unifocus_enter` reads them, a
   repeated key's stored answer (nothing is claimed), and the facts, read without a lock
   (`unifocus_punch_facts`), with the employee row's version: its `xmin`, which changes with
   every committed update of the row.
2. `unifocus_write_punch`: in one statement, so in one transaction that commits as it ends,
   the claim with the answer to store already in it (first, as in the classic write, so both
   take their locks in one order: key, employee, audit chain; and one insert where the
   classic write inserts the claim and updates it), then the check that the facts still hold
   (`UPDATE employees ... WHERE xmin = seen`; in READ COMMITTED a concurrent evaluation makes
   it match nothing), then the punch, its exceptions and the audit entries. A key already taken
   answers false with nothing written; stale facts raise SQLSTATE UF001, which rolls back the
   claim. Either way the service falls back to the classic write.

For the check to mean anything, every evaluation must update the employee row, not only lock
it: `unifocus_punch_context` (the classic punch, voids, the sweep, batch items) now bumps
`employees.facts_version` where it took `FOR UPDATE`, and so does a schedule's creation. Any
other update of the row (its time zone, say) changes `xmin` as well.
"""

from __future__ import annotations

import importlib

from alembic import op

from unifocus.db.migrations.roles import grant_execute
from unifocus.db.migrations.sqltext import edited

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_ENTER_PUNCH = importlib.import_module("unifocus.db.migrations.versions.0005_enter_punch")
_LEAN = importlib.import_module("unifocus.db.migrations.versions.0008_lean_executor_start")

# The head of 0003's unifocus_punch_context (unchanged since): the comment, then the read under
# FOR UPDATE.
_LOCK_BEFORE = _LEAN.PUNCH_CONTEXT[
    _LEAN.PUNCH_CONTEXT.index("    -- The employee lock first, alone"):
    _LEAN.PUNCH_CONTEXT.index("        FOR UPDATE OF e;\n") + len("        FOR UPDATE OF e;\n")]
_BUMP = """    -- The employee lock first, alone: it serialises every evaluation of this employee, and
    -- the reads below run after it, each in a snapshot that sees the previous holder's work.
    -- An update, not FOR UPDATE: a new row version tells a two-statement write
    -- (unifocus_write_punch) that the facts it read may have changed.
    UPDATE employees e SET facts_version = e.facts_version + 1
        FROM tenants t
        WHERE t.tenant_id = e.tenant_id AND e.tenant_id = p_tenant AND e.id = p_employee
        RETURNING jsonb_build_object('timezone', coalesce(e.timezone, t.timezone), 'policy', t.policy,
                                     'now', now())
        INTO head;
"""
_READ_UNLOCKED = """    -- No lock: the version (xmin) is read first, so anything committed after it changes it.
    SELECT jsonb_build_object('timezone', coalesce(e.timezone, t.timezone), 'policy', t.policy,
                              'now', now(), 'version', e.xmin::text)
        INTO head
        FROM employees e JOIN tenants t ON t.tenant_id = e.tenant_id
        WHERE e.tenant_id = p_tenant AND e.id = p_employee;
"""
PUNCH_CONTEXT = edited(_LEAN.PUNCH_CONTEXT, [(_LOCK_BEFORE, _BUMP)])
PUNCH_FACTS = edited(_LEAN.PUNCH_CONTEXT, [
    ("CREATE OR REPLACE FUNCTION unifocus_punch_context(", "CREATE FUNCTION unifocus_punch_facts("),
    ("LANGUAGE plpgsql VOLATILE", "LANGUAGE plpgsql STABLE"),
    (_LOCK_BEFORE, _READ_UNLOCKED),
])
FACTS_ARGS = "uuid, uuid, timestamptz, timestamptz, date, date, date, date"

READ_ARGS = ("uuid, text, text, text, text, text, bytea, double precision, uuid, timestamptz, timestamptz, "
             "date, date, date, date, text, text")
# A device's repeated clientPunchId, read as 0005's unifocus_enter_punch reads it.
_DEVICE_REPEAT = _ENTER_PUNCH.ENTER_PUNCH[_ENTER_PUNCH.ENTER_PUNCH.index("        IF p_client_punch_id IS NOT NULL"):
                                         _ENTER_PUNCH.ENTER_PUNCH.index("    RETURN NEXT;")].replace(
    "o_context", "o.o_context")
# unifocus_enter_punch's parameters, as 0005 declared them.
_PARAMETERS = _ENTER_PUNCH.ENTER_PUNCH[_ENTER_PUNCH.ENTER_PUNCH.index("(\n    p_tenant uuid"):
                                      _ENTER_PUNCH.ENTER_PUNCH.index("RETURNS TABLE")]
READ_PUNCH = "\nCREATE FUNCTION unifocus_read_punch" + _PARAMETERS + r"""RETURNS unifocus_read
LANGUAGE plpgsql VOLATILE SECURITY INVOKER AS $$
-- The arguments of unifocus_enter_punch, and its columns as one composite value (called as
-- `SELECT unifocus_read_punch(...)`: no function scan, no tuplestore). o_claimed true means
-- the key is free (not yet claimed: unifocus_write_punch claims it), false that its stored
-- answer follows. An unknown user is NULL. p_lock_timeout and p_ttl_seconds are not used:
-- nothing is locked or claimed here.
DECLARE
    e unifocus_entered;
    o unifocus_read;
BEGIN
    e := unifocus_enter(p_tenant, p_subject);
    IF e.o_user_id IS NULL THEN
        RETURN NULL;  -- unknown user
    END IF;
    o.o_user_id := e.o_user_id; o.o_email := e.o_email; o.o_role := e.o_role;
    o.o_employee_id := e.o_employee_id; o.o_active := e.o_active;
    IF p_key IS NOT NULL AND e.o_active THEN
        SELECT x.fingerprint, x.status_code, x.headers, x.body
            INTO o.o_fingerprint, o.o_status, o.o_headers, o.o_body
            FROM idempotency_records x
            WHERE x.tenant_id = p_tenant AND x.user_id = e.o_user_id AND x.method = p_method
              AND x.path = p_path AND x.key = p_key AND x.expires_at > now();
        o.o_claimed := NOT FOUND;
    END IF;
    IF e.o_active AND coalesce(o.o_claimed, true)
       AND (e.o_role <> 'employee' OR e.o_employee_id IS NOT DISTINCT FROM p_employee) THEN
        o.o_context := unifocus_punch_facts(p_tenant, p_employee, p_from, p_to, p_first, p_last,
                                            p_zone_first, p_zone_last);
""" + _DEVICE_REPEAT + r"""    RETURN o;
END $$;
"""
READ_COLUMNS = ("o_user_id uuid, o_email text, o_role text, o_employee_id uuid, o_active boolean, "
                "o_claimed boolean, o_fingerprint bytea, o_status integer, o_headers jsonb, o_body bytea, "
                "o_context jsonb")

WRITE_ARGS = ("uuid, uuid, text, uuid, text, text, text, text, bytea, double precision, "
              "uuid, text, timestamptz, timestamptz, text, text, text, uuid, date, "
              "uuid[], text[], uuid[], date[], uuid[], text[], jsonb[], timestamptz[], "
              "smallint, text, text[], text[], uuid[], jsonb[], uuid[], uuid[], uuid[], "
              "integer, jsonb, bytea")
WRITE_PUNCH = r"""
CREATE FUNCTION unifocus_write_punch(
    p_tenant uuid, p_user uuid, p_lock_timeout text, p_employee uuid, p_seen text,
    p_method text, p_path text, p_key text, p_fingerprint bytea, p_ttl_seconds double precision,
    p_punch_id uuid, p_type text, p_ts timestamptz, p_received_at timestamptz, p_device text,
    p_client_punch_id text, p_source text, p_shift_id uuid, p_shift_date date,
    x_ids uuid[], x_types text[], x_shift_ids uuid[], x_shift_dates date[], x_punch_ids uuid[],
    x_dedupe_keys text[], x_details jsonb[], x_created_at timestamptz[],
    a_chain smallint, a_request_id text, a_actions text[], a_entities text[], a_entity_ids uuid[],
    a_changes jsonb[], a_employee_ids uuid[], a_punch_ids uuid[], a_exception_ids uuid[],
    p_status integer, p_headers jsonb, p_body bytea)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY INVOKER AS $$
-- True: all written (committed when the statement ends). False: the key is taken, nothing
-- written. SQLSTATE UF001: the facts changed since unifocus_read_punch read them (rolled back).
DECLARE
    ignored text;
BEGIN
    ignored := set_config('app.tenant_id', p_tenant::text, true);
    IF p_lock_timeout IS NOT NULL THEN
        ignored := set_config('lock_timeout', p_lock_timeout, true);
    END IF;
    IF p_key IS NOT NULL THEN
        -- unifocus_claim's insert, with the answer already in it: the record is written once.
        -- A live record of the key (an original in flight blocks this until it ends) wins.
        INSERT INTO idempotency_records AS r (tenant_id, user_id, method, path, key, fingerprint, expires_at,
                                              status_code, headers, body)
            VALUES (p_tenant, p_user, p_method, p_path, p_key, p_fingerprint,
                    now() + make_interval(secs => p_ttl_seconds), p_status, p_headers, p_body)
            ON CONFLICT (tenant_id, user_id, method, path, key) DO UPDATE
                SET fingerprint = EXCLUDED.fingerprint, status_code = EXCLUDED.status_code,
                    headers = EXCLUDED.headers, body = EXCLUDED.body, created_at = now(),
                    expires_at = EXCLUDED.expires_at
                WHERE r.expires_at <= now();
        IF NOT FOUND THEN
            RETURN false;
        END IF;
    END IF;
    UPDATE employees SET facts_version = facts_version + 1
        WHERE tenant_id = p_tenant AND id = p_employee AND xmin = p_seen::xid;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'the facts of employee % changed since they were read', p_employee
            USING ERRCODE = 'UF001';
    END IF;
    INSERT INTO punches (tenant_id, id, employee_id, type, ts, received_at, device, client_punch_id, source,
                         shift_id, shift_date, created_by)
        VALUES (p_tenant, p_punch_id, p_employee, p_type, p_ts, p_received_at, p_device, p_client_punch_id,
                p_source, p_shift_id, p_shift_date, p_user);
    IF cardinality(x_ids) > 0 THEN
        INSERT INTO exceptions (tenant_id, id, employee_id, type, shift_id, shift_date, punch_id, dedupe_key,
                                details, created_at)
            SELECT p_tenant, x.id, p_employee, x.type, x.shift_id, x.shift_date, x.punch_id, x.dedupe_key,
                   x.details, x.created_at
            FROM unnest(x_ids, x_types, x_shift_ids, x_shift_dates, x_punch_ids, x_dedupe_keys, x_details,
                        x_created_at) AS x(id, type, shift_id, shift_date, punch_id, dedupe_key, details,
                                           created_at);
    END IF;
    INSERT INTO audit_log (tenant_id, chain, user_id, request_id, action, entity, entity_id, changes,
                           employee_id, punch_id, exception_id, seq, created_at, prev_hash, hash)
        SELECT p_tenant, a_chain, p_user, a_request_id, x.action, x.entity, x.entity_id, x.changes,
               x.employee_id, x.punch_id, x.exception_id, 0, now(), '\x'::bytea, '\x'::bytea
        FROM unnest(a_actions, a_entities, a_entity_ids, a_changes, a_employee_ids, a_punch_ids,
                    a_exception_ids) WITH ORDINALITY
             AS x(action, entity, entity_id, changes, employee_id, punch_id, exception_id, n)
        ORDER BY x.n;
    RETURN true;
END $$;
"""

def upgrade() -> None:
    # A constant default: no table rewrite.
    op.execute("ALTER TABLE employees ADD COLUMN facts_version bigint NOT NULL DEFAULT 0")
    op.execute(PUNCH_CONTEXT)
    op.execute(PUNCH_FACTS)
    op.execute(f"CREATE TYPE unifocus_read AS ({READ_COLUMNS})")
    op.execute(READ_PUNCH)
    op.execute(WRITE_PUNCH)
    grant_execute(f"unifocus_punch_facts({FACTS_ARGS})", f"unifocus_read_punch({READ_ARGS})",
                  f"unifocus_write_punch({WRITE_ARGS})")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION unifocus_write_punch({WRITE_ARGS})")
    op.execute(f"DROP FUNCTION unifocus_read_punch({READ_ARGS})")
    op.execute(f"DROP FUNCTION unifocus_punch_facts({FACTS_ARGS})")
    op.execute("DROP TYPE unifocus_read")
    op.execute(_LEAN.PUNCH_CONTEXT)
    op.execute("ALTER TABLE employees DROP COLUMN facts_version")
