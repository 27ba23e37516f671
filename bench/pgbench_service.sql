-- pgbench: the statements the service sends for one punch write (bench/README.md, "Round trips
-- of one punch write: now 2"), without Python: unifocus_read_punch (tenant, caller, a repeated
-- key's stored answer, the exception engine's reads and the employee's version), then
-- unifocus_write_punch (claim, version check, punch, audit entry, stored response), each an
-- autocommit statement. What the service's SQL costs PostgreSQL, beside pgbench_punch.sql's
-- floor, in the same run.
-- Variables (pgbench -D): tenant, user, nemp, eoff (its employees: eoff .. eoff + nemp - 1, apart from
-- the HTTP loads' 0 .. nemp - 1), chains. The user's token subject is its id.
-- Each client punches employees of its own (client_id modulo 16), as a clock punches one employee
-- at a time: two clients on one employee would make the second write stale (SQLSTATE UF001,
-- which the service answers with its classic write and pgbench with an aborted client).
\set e :eoff + (random(0, :nemp - 16) / 16) * 16 + :client_id % 16
\set chain random(0, :chains - 1)
\set day random(1, 3000)
\set r random(1, 1000000000000)
SELECT (unifocus_read_punch(:tenant::uuid, :user::text, '2000ms', 'POST',
    '/api/punches', 'pgs-' || :client_id || '-' || :r, sha256(convert_to(:r::text, 'UTF8')), 86400,
    ('00000000-0000-4000-8000-' || lpad(to_hex(:e::int), 12, '0'))::uuid,
    now() - make_interval(days => :day::int + 3), now() - make_interval(days => :day::int - 3),
    (now() - make_interval(days => :day::int + 5))::date, (now() - make_interval(days => :day::int - 4))::date,
    (now() - make_interval(days => :day::int + 3))::date, (now() - make_interval(days => :day::int - 2))::date,
    NULL, NULL)).o_context->>'version' AS seen \gset
SELECT unifocus_write_punch(:tenant::uuid, :user::uuid, '2000ms',
    ('00000000-0000-4000-8000-' || lpad(to_hex(:e::int), 12, '0'))::uuid, :seen,
    'POST', '/api/punches', 'pgs-' || :client_id || '-' || :r, sha256(convert_to(:r::text, 'UTF8')), 86400,
    gen_random_uuid(), 'clock_in', now() - make_interval(days => :day::int, secs => :r::bigint % 80000), now(),
    NULL, NULL, 'api', NULL, NULL,
    '{}'::uuid[], '{}'::text[], '{}'::uuid[], '{}'::date[], '{}'::uuid[], '{}'::text[], '{}'::jsonb[],
    '{}'::timestamptz[],
    :chain::smallint, 'pgs-' || :client_id::text, ARRAY['created'], ARRAY['Punch'], ARRAY[gen_random_uuid()],
    ARRAY[jsonb_build_object('before', NULL, 'after', jsonb_build_object('id', gen_random_uuid(), 'employeeId', ('00000000-0000-4000-8000-' || lpad(to_hex(:e::int), 12, '0')), 'type', 'clock_in', 'timestamp', now(), 'receivedAt', now(), 'device', NULL, 'clientPunchId', NULL, 'source', 'api', 'shiftId', NULL, 'shiftDate', NULL, 'voided', false, 'voidReason', NULL))],
    ARRAY[('00000000-0000-4000-8000-' || lpad(to_hex(:e::int), 12, '0'))::uuid], ARRAY[NULL::uuid], ARRAY[NULL::uuid],
    201, '{"content-type":"application/json","location":"/api/punches/x"}', convert_to(repeat('x', 420), 'UTF8'));
