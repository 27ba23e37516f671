-- pgbench: what one punch write does in SQL, as the app role under row-level security, in one
-- transaction: the tenant setting (+ lock_timeout, as the write path sets it), the idempotency
-- record (claimed with its stored response in one INSERT; the service claims, then stores),
-- the punch, the audit entry (the audit_log_chain trigger takes the (tenant, chain) advisory
-- lock and computes seq/prev_hash/hash, as for the service). No reads: this is the floor.
-- Variables (pgbench -D): tenant, user, nemp, eoff (its employees: eoff .. eoff + nemp - 1, apart from
-- the HTTP loads' 0 .. nemp - 1), chains. Run with -M prepared (asyncpg prepares too).
\set e random(:eoff, :eoff + :nemp - 1)
\set chain random(0, :chains - 1)
\set day random(1, 3000)
BEGIN;
SELECT set_config('app.tenant_id', :tenant::text, true), set_config('lock_timeout', '2000ms', true);
INSERT INTO idempotency_records (tenant_id, user_id, method, path, key, fingerprint, expires_at,
                                 status_code, headers, body)
VALUES (:tenant::uuid, :user::uuid, 'POST', '/api/punches', 'pgb-' || gen_random_uuid()::text,
        sha256(convert_to(gen_random_uuid()::text, 'UTF8')), now() + interval '24 hours', 201,
        '{"content-type":"application/json","location":"/api/punches/x"}',
        convert_to(repeat('x', 420), 'UTF8'));
INSERT INTO punches (tenant_id, id, employee_id, type, ts, device, client_punch_id, source, shift_id, shift_date,
                     created_by)
VALUES (:tenant::uuid, gen_random_uuid(), ('00000000-0000-4000-8000-' || lpad(to_hex(:e::int), 12, '0'))::uuid,
        'clock_in', now() - make_interval(days => :day::int, secs => :e::int), NULL, NULL, 'api', NULL, NULL, :user::uuid);
INSERT INTO audit_log (tenant_id, chain, user_id, request_id, action, entity, entity_id, changes, employee_id,
                       punch_id, exception_id, seq, created_at, prev_hash, hash)
VALUES (:tenant::uuid, :chain::smallint, :user::uuid, 'pgb-' || :client_id::text, 'created', 'Punch', gen_random_uuid(),
        jsonb_build_object('before', NULL, 'after', jsonb_build_object(
            'id', gen_random_uuid(), 'employeeId', ('00000000-0000-4000-8000-' || lpad(to_hex(:e::int), 12, '0')),
            'type', 'clock_in', 'timestamp', now(), 'receivedAt', now(), 'device', NULL, 'clientPunchId', NULL,
            'source', 'api', 'shiftId', NULL, 'shiftDate', NULL, 'voided', false, 'voidReason', NULL)),
        ('00000000-0000-4000-8000-' || lpad(to_hex(:e::int), 12, '0'))::uuid, NULL, NULL, 0, now(), '\x'::bytea,
        '\x'::bytea);
COMMIT;
