-- pgbench: the statements the service sends for one punch write (bench/README.md, "Round trips
-- of one punch write: now 4"), without Python: BEGIN; unifocus_enter_punch (tenant, caller,
-- idempotency claim, employee lock, the exception engine's reads); the folded last statement
-- (punch, audit entry, stored response, as `compose_finish` builds it); COMMIT. What the
-- service's SQL costs PostgreSQL, beside pgbench_punch.sql's floor, in the same run.
-- Variables (pgbench -D): tenant, user, nemp, eoff (its employees: eoff .. eoff + nemp - 1, apart from
-- the HTTP loads' 0 .. nemp - 1), chains. The user's token subject is its id.
\set e random(:eoff, :eoff + :nemp - 1)
\set chain random(0, :chains - 1)
\set day random(1, 3000)
\set r random(1, 1000000000000)
BEGIN;
SELECT * FROM unifocus_enter_punch(:tenant::uuid, :user::text, '2000ms', 'POST', '/api/punches',
    'pgs-' || :client_id || '-' || :r, sha256(convert_to(:r::text, 'UTF8')), 86400,
    ('00000000-0000-4000-8000-' || lpad(to_hex(:e::int), 12, '0'))::uuid,
    now() - make_interval(days => :day::int + 3), now() - make_interval(days => :day::int - 3),
    (now() - make_interval(days => :day::int + 5))::date, (now() - make_interval(days => :day::int - 4))::date,
    (now() - make_interval(days => :day::int + 3))::date, (now() - make_interval(days => :day::int - 2))::date,
    NULL, NULL);
WITH d0 AS (INSERT INTO punches (tenant_id, id, employee_id, type, ts, received_at, device, client_punch_id, source, shift_id, shift_date, created_by) VALUES (:tenant::uuid, gen_random_uuid(), ('00000000-0000-4000-8000-' || lpad(to_hex(:e::int), 12, '0'))::uuid, 'clock_in', now() - make_interval(days => :day::int, secs => :r::bigint % 80000), now(), NULL, NULL, 'api', NULL, NULL, :user::uuid)), s0 AS (INSERT INTO audit_log (tenant_id, chain, user_id, request_id, action, entity, entity_id, changes, employee_id, punch_id, exception_id, seq, created_at, prev_hash, hash)
SELECT :tenant::uuid, :chain::smallint, :user::uuid, 'pgs-' || :client_id::text, x.action, x.entity, x.entity_id, x.changes, x.employee_id, x.punch_id, x.exception_id, 0, now(), '\x'::bytea, '\x'::bytea
FROM unnest(ARRAY['created'], ARRAY['Punch'], ARRAY[gen_random_uuid()], ARRAY[jsonb_build_object('before', NULL, 'after', jsonb_build_object('id', gen_random_uuid(), 'employeeId', ('00000000-0000-4000-8000-' || lpad(to_hex(:e::int), 12, '0')), 'type', 'clock_in', 'timestamp', now(), 'receivedAt', now(), 'device', NULL, 'clientPunchId', NULL, 'source', 'api', 'shiftId', NULL, 'shiftDate', NULL, 'voided', false, 'voidReason', NULL))], ARRAY[('00000000-0000-4000-8000-' || lpad(to_hex(:e::int), 12, '0'))::uuid], ARRAY[NULL::uuid], ARRAY[NULL::uuid]) WITH ORDINALITY AS x(action, entity, entity_id, changes, employee_id, punch_id, exception_id, n) ORDER BY x.n)
UPDATE idempotency_records SET status_code = 201, headers = '{"content-type":"application/json","location":"/api/punches/x"}', body = convert_to(repeat('x', 420), 'UTF8')
WHERE tenant_id = :tenant::uuid AND user_id = :user::uuid AND method = 'POST' AND path = '/api/punches' AND key = 'pgs-' || :client_id || '-' || :r;
COMMIT;
