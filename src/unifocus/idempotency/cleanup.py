"""Delete expired idempotency records, tenant by tenant, in bounded batches."""

from __future__ import annotations

import time

from unifocus.db.pool import Database
from unifocus.jobs.scheduler import tenant_ids
from unifocus.observability import metrics

# SKIP LOCKED and the expiry re-check make concurrent runs safe on their own: each expired
# record is deleted once, and a record taken over by a new request meanwhile is kept.
DELETE_BATCH = """
WITH doomed AS (
    SELECT tenant_id, user_id, method, path, key FROM idempotency_records
    WHERE tenant_id = $1 AND expires_at <= now()
    LIMIT $2 FOR UPDATE SKIP LOCKED
)
DELETE FROM idempotency_records r USING doomed d
WHERE r.tenant_id = d.tenant_id AND r.user_id = d.user_id AND r.method = d.method
  AND r.path = d.path AND r.key = d.key AND r.expires_at <= now()
"""


async def cleanup_expired(db: Database, batch: int = 5000) -> int:
    removed = 0
    for tenant in await tenant_ids(db):
        while True:
            async with db.tenant_tx(tenant, readonly=False) as conn:  # type: ignore[arg-type]
                status = await conn.execute(DELETE_BATCH, tenant, batch)
            count = int(status.split()[-1])
            removed += count
            if count < batch:
                break
    metrics.IDEMPOTENCY_CLEANUP_LAST_SUCCESS.set(time.time())
    return removed


# Client connections on the whole server against what ordinary roles may open (the per-pod
# pool gauges cannot see other replicas, Jobs or other clients). The runtime role sees every
# row of pg_stat_activity, but PostgreSQL hides backend_type (with the query, state, ...) of
# other roles' sessions unless it has pg_read_all_stats: such a row counts when it has a
# database and a role, which every client backend has and no autovacuum worker or auxiliary
# process has. Other roles' parallel workers and logical walsenders (own slots, not
# max_connections') also match; they can only make the count high, never low.
# reserved_connections exists from PostgreSQL 16 on: current_setting(name, true) is NULL before.
STATS = """
SELECT (SELECT greatest(reltuples, 0)::bigint FROM pg_class
        WHERE relname = 'idempotency_records') AS idem,
       pg_total_relation_size('audit_log') AS audit,
       (SELECT count(*) FROM pg_stat_activity
        WHERE backend_type = 'client backend'
           OR (backend_type IS NULL AND datid IS NOT NULL AND usesysid IS NOT NULL)) AS connections,
       current_setting('max_connections')::int
         - current_setting('superuser_reserved_connections')::int
         - coalesce(nullif(current_setting('reserved_connections', true), '')::int, 0) AS connections_limit
"""


async def refresh_stats(db: Database) -> int:
    """Table-size gauges (estimates from the catalog; cheap) and the database server's
    connections against its limit, in one round trip."""
    async with db.connection() as conn:
        row = await conn.fetchrow(STATS)
    metrics.IDEMPOTENCY_RECORDS.set(row["idem"] or 0)
    metrics.AUDIT_TABLE_BYTES.set(row["audit"] or 0)
    metrics.DB_SERVER_CONNECTIONS.set(row["connections"])
    metrics.DB_SERVER_CONNECTIONS_LIMIT.set(row["connections_limit"])
    return 0
