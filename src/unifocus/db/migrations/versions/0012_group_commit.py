"""Group commit: the two-statement writes of several punches in one statement, one transaction.

Revision ID: 0012
Revises: 0011

A worker's punch writes that become ready while another write of the same tenant is in flight
are sent together when it returns (`db/groupcommit.py`): one statement and one commit for
the group instead of one each. `unifocus_write_punches` takes the arguments of 0010's
`unifocus_write_punch` for every item as arrays (an item's exceptions and audit entries
flattened, each row naming its item) and answers one outcome per item, in item order:
`written`, `key_taken` (nothing of it written) or `stale` (its facts changed since they were
read; nothing of it written, its claim removed). The service sends every item that is not
`written` to the classic transaction, exactly as it does a single write's false or UF001.

Lock order, so that a group never deadlocks with single writes or with other groups: a
single write takes its key, then its employee, then its audit chain. A group takes all its
keys first (in key order), then all its employees (in employee order), then one audit chain
(every entry of the group on it). Two groups claiming the same keys (a retry storm split
across workers) or the same employees wait on each other in one order.

No subtransaction: a taken key and stale facts do not raise (the claim is an upsert that
matches nothing, the version check an update that matches nothing), so the group needs no
savepoint per item. Anything that does raise (a lock timeout, a unique violation of a device's
punch) rolls the whole group back, and the service sends every item to the classic write.
"""

from __future__ import annotations

from alembic import op

from unifocus.db.migrations.roles import grant_execute

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

WRITE_PUNCHES_ARGS = (
    "uuid, text, smallint, "
    "uuid[], uuid[], text[], text[], text[], text[], bytea[], double precision[], "
    "uuid[], text[], timestamptz[], timestamptz[], text[], text[], text[], uuid[], date[], "
    "integer[], jsonb[], bytea[], "
    "integer[], uuid[], text[], uuid[], date[], uuid[], text[], jsonb[], timestamptz[], "
    "integer[], text[], text[], text[], uuid[], jsonb[], uuid[], uuid[], uuid[]")

WRITE_PUNCHES = r"""
CREATE FUNCTION unifocus_write_punches(
    p_tenant uuid, p_lock_timeout text, p_chain smallint,
    i_users uuid[], i_employees uuid[], i_seen text[], i_methods text[], i_paths text[], i_keys text[],
    i_fingerprints bytea[], i_ttl_seconds double precision[],
    i_punch_ids uuid[], i_types text[], i_ts timestamptz[], i_received_at timestamptz[], i_devices text[],
    i_client_punch_ids text[], i_sources text[], i_shift_ids uuid[], i_shift_dates date[],
    i_status integer[], i_headers jsonb[], i_bodies bytea[],
    x_items integer[], x_ids uuid[], x_types text[], x_shift_ids uuid[], x_shift_dates date[], x_punch_ids uuid[],
    x_dedupe_keys text[], x_details jsonb[], x_created_at timestamptz[],
    a_items integer[], a_request_ids text[], a_actions text[], a_entities text[], a_entity_ids uuid[],
    a_changes jsonb[], a_employee_ids uuid[], a_punch_ids uuid[], a_exception_ids uuid[])
RETURNS text[]
LANGUAGE plpgsql VOLATILE SECURITY INVOKER AS $$
-- One outcome per item (i_* arrays, 1-based), in item order: written, key_taken or stale.
-- x_items and a_items name the item of each exception and audit row.
DECLARE
    outcome text[] := array_fill('written'::text, ARRAY[cardinality(i_employees)]);
    i integer;
    ignored text;
BEGIN
    ignored := set_config('app.tenant_id', p_tenant::text, true);
    IF p_lock_timeout IS NOT NULL THEN
        ignored := set_config('lock_timeout', p_lock_timeout, true);
    END IF;
    -- 1. Every claim, in key order, with the answer already in it (0010's insert).
    FOR i IN SELECT k.n FROM unnest(i_keys, i_users, i_methods, i_paths) WITH ORDINALITY AS k(key, u, m, p, n)
             WHERE k.key IS NOT NULL ORDER BY k.key, k.u, k.m, k.p, k.n LOOP
        INSERT INTO idempotency_records AS r (tenant_id, user_id, method, path, key, fingerprint, expires_at,
                                              status_code, headers, body)
            VALUES (p_tenant, i_users[i], i_methods[i], i_paths[i], i_keys[i], i_fingerprints[i],
                    now() + make_interval(secs => i_ttl_seconds[i]), i_status[i], i_headers[i], i_bodies[i])
            ON CONFLICT (tenant_id, user_id, method, path, key) DO UPDATE
                SET fingerprint = EXCLUDED.fingerprint, status_code = EXCLUDED.status_code,
                    headers = EXCLUDED.headers, body = EXCLUDED.body, created_at = now(),
                    expires_at = EXCLUDED.expires_at
                WHERE r.expires_at <= now();
        IF NOT FOUND THEN
            outcome[i] := 'key_taken';
        END IF;
    END LOOP;
    -- 2. Every version check of a claimed item, in employee order. Two items of one employee:
    -- the first moves the version, so the second is stale (its facts lack the first punch).
    FOR i IN SELECT e.n FROM unnest(i_employees) WITH ORDINALITY AS e(id, n) ORDER BY e.id, e.n LOOP
        CONTINUE WHEN outcome[i] <> 'written';
        UPDATE employees SET facts_version = facts_version + 1
            WHERE tenant_id = p_tenant AND id = i_employees[i] AND xmin = i_seen[i]::xid;
        IF NOT FOUND THEN
            outcome[i] := 'stale';
            IF i_keys[i] IS NOT NULL THEN  -- this statement's own claim: the classic write claims again
                DELETE FROM idempotency_records
                    WHERE tenant_id = p_tenant AND user_id = i_users[i] AND method = i_methods[i]
                      AND path = i_paths[i] AND key = i_keys[i];
            END IF;
        END IF;
    END LOOP;
    -- 3. The rows of the written items: one insert per table.
    INSERT INTO punches (tenant_id, id, employee_id, type, ts, received_at, device, client_punch_id, source,
                         shift_id, shift_date, created_by)
        SELECT p_tenant, i_punch_ids[g.i], i_employees[g.i], i_types[g.i], i_ts[g.i], i_received_at[g.i],
               i_devices[g.i], i_client_punch_ids[g.i], i_sources[g.i], i_shift_ids[g.i], i_shift_dates[g.i],
               i_users[g.i]
        FROM generate_subscripts(i_employees, 1) AS g(i)
        WHERE outcome[g.i] = 'written';
    IF cardinality(x_items) > 0 THEN
        INSERT INTO exceptions (tenant_id, id, employee_id, type, shift_id, shift_date, punch_id, dedupe_key,
                                details, created_at)
            SELECT p_tenant, x.id, i_employees[x.item], x.type, x.shift_id, x.shift_date, x.punch_id,
                   x.dedupe_key, x.details, x.created_at
            FROM unnest(x_items, x_ids, x_types, x_shift_ids, x_shift_dates, x_punch_ids, x_dedupe_keys,
                        x_details, x_created_at)
                 AS x(item, id, type, shift_id, shift_date, punch_id, dedupe_key, details, created_at)
            WHERE outcome[x.item] = 'written';
    END IF;
    -- On one chain (p_chain): the chain trigger takes its lock once, after every employee.
    INSERT INTO audit_log (tenant_id, chain, user_id, request_id, action, entity, entity_id, changes,
                           employee_id, punch_id, exception_id, seq, created_at, prev_hash, hash)
        SELECT p_tenant, p_chain, i_users[x.item], x.request_id, x.action, x.entity, x.entity_id, x.changes,
               x.employee_id, x.punch_id, x.exception_id, 0, now(), '\x'::bytea, '\x'::bytea
        FROM unnest(a_items, a_request_ids, a_actions, a_entities, a_entity_ids, a_changes, a_employee_ids,
                    a_punch_ids, a_exception_ids) WITH ORDINALITY
             AS x(item, request_id, action, entity, entity_id, changes, employee_id, punch_id, exception_id, n)
        WHERE outcome[x.item] = 'written'
        ORDER BY x.n;
    RETURN outcome;
END $$;
"""


def upgrade() -> None:
    op.execute(WRITE_PUNCHES)
    grant_execute(f"unifocus_write_punches({WRITE_PUNCHES_ARGS})")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION unifocus_write_punches({WRITE_PUNCHES_ARGS})")
