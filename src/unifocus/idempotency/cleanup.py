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


async def refresh_stats(db: Database) -> int:
    """Table-size gauges (estimates from the catalog; cheap)."""
    async with db.connection() as conn:
        row = await conn.fetchrow(
            "SELECT (SELECT greatest(reltuples, 0)::bigint FROM pg_class "
            "        WHERE relname = 'idempotency_records') AS idem,"
            " pg_total_relation_size('audit_log') AS audit"
        )
    metrics.IDEMPOTENCY_RECORDS.set(row["idem"] or 0)
    metrics.AUDIT_TABLE_BYTES.set(row["audit"] or 0)
    return 0
