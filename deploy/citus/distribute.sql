-- Distribute the Unifocus schema over a Citus cluster by tenant_id (docs/scaling.md, "Citus").
--
-- Run once, as the owner, on the coordinator, right after `unifocus migrate` created the
-- (empty) schema there and before any data is loaded:
--     psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -f deploy/citus/distribute.sql
-- The citus extension must already exist in the database (CREATE EXTENSION citus; needs
-- shared_preload_libraries = 'citus' on every node).
--
-- Every table is hash-distributed on tenant_id and colocated with `tenants`, so all rows of
-- one tenant live in the same shard group on one worker: every query of the service names
-- tenant_id (router queries, one worker), every transaction touches one tenant (single-node
-- transactions, no 2PC), and every primary, unique and foreign key leads with tenant_id
-- (tests/scale/test_citus_ready.py keeps it so), which Citus requires for distributed
-- constraints. Parents are distributed before the tables whose foreign keys point at them.
--
-- Caveats (check them against the Citus version you run before going live):
-- * Row-level security: the tenant_isolation policies are propagated to the shards
--   (Citus >= 11.1), and they read current_setting('app.tenant_id') ON THE WORKER. The
--   service sets it with set_config(..., true) on the coordinator; Citus does not forward
--   function calls, only SET LOCAL when citus.propagate_set_commands = 'local'. So before
--   serving from Citus, either switch the tenant setting to `SET LOCAL app.tenant_id = '<uuid>'`
--   with citus.propagate_set_commands = 'local' (uuids are validated, so the literal is safe),
--   or rely on tenant-named queries + the response guard and disable FORCE RLS on shards.
--   Without one of them the fail-closed policy answers zero rows on the workers.
-- * Triggers on distributed tables run on the shards and are off by default: the audit
--   chain trigger (audit_log_chain) and the append-only / tenant-fixed triggers need
--   citus.enable_unsafe_triggers = on (set below for this session; set it in the cluster
--   config too). audit_log_chain reads the chain head from `audit_log` inside the trigger:
--   on a worker that name must resolve to the colocated shard, which holds because the row
--   and its chain share tenant_id (same shard). Its pg_advisory_xact_lock is node-local,
--   which is enough for the same reason: all appends of one (tenant, chain) run on the one
--   worker holding the tenant's shard. Verify with `unifocus audit verify` after a load test.
-- * unifocus_tenant_ids() (SECURITY DEFINER, used by the jobs) and the tenants_owner_directory
--   policy run on the coordinator and fan out over all shards of `tenants`: fine for jobs.
-- * unifocus_audit_tenant_ids() (migration 0016, `audit verify`) opens the owner's policy
--   audit_log_owner_directory with set_config('unifocus.audit_directory', ...), which Citus
--   does not forward either: run `audit verify` there as a superuser (RLS does not apply),
--   or verify the tenants one by one with --tenant.
-- * Tenant moves between workers use citus_move_shard_placement / rebalancer (shard groups
--   move together because everything is colocated); a very large tenant can be isolated on
--   its own shard with isolate_tenant_to_new_shard('tenants', '<tenant uuid>', 'CASCADE').
-- * TRUNCATE of audit_log is refused by a statement trigger; Citus statement triggers are
--   not propagated to shards: keep the runtime role without TRUNCATE (it has none).

SET citus.enable_unsafe_triggers = on;
SET citus.multi_shard_modify_mode = 'sequential';

BEGIN;
SELECT create_distributed_table('tenants', 'tenant_id');
SELECT create_distributed_table('employees', 'tenant_id', colocate_with => 'tenants');
SELECT create_distributed_table('users', 'tenant_id', colocate_with => 'tenants');
SELECT create_distributed_table('schedules', 'tenant_id', colocate_with => 'tenants');
SELECT create_distributed_table('shifts', 'tenant_id', colocate_with => 'tenants');
SELECT create_distributed_table('punches', 'tenant_id', colocate_with => 'tenants');
SELECT create_distributed_table('exceptions', 'tenant_id', colocate_with => 'tenants');
SELECT create_distributed_table('idempotency_records', 'tenant_id', colocate_with => 'tenants');
SELECT create_distributed_table('audit_log', 'tenant_id', colocate_with => 'tenants');
COMMIT;

-- alembic_version stays a local table on the coordinator (the service reads it for /ready).
