"""Per-worker housekeeping for the metrics: refresh this process's gauges every 15 s (a
scrape only reaches one worker), time database queries, and drop this worker's live gauges
when it exits (multiprocess mode)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any

from unifocus.db.pool import Database
from unifocus.observability import metrics

REFRESH_SECONDS = 15.0


def refresh(db: Database) -> None:
    metrics.sweep_dead_processes()  # a killed sibling's live gauges (its replacement starts here)
    in_use, size = db.in_use()
    metrics.DB_POOL_CONNECTIONS_IN_USE.set(in_use)
    metrics.DB_POOL_CONNECTIONS_MAX.set(size)
    metrics.update_process_metrics()


def observe_query(record: Any) -> None:
    """asyncpg query logger: database time by statement kind (never the SQL text itself)."""
    query = record.query.lstrip()
    operation = query[:6].lower()  # label values in lower case, as the metric's help says
    if operation not in ("select", "insert", "update", "delete"):
        operation = "with" if operation.startswith("with") else "other"
    metrics.child(metrics.DB_QUERY_DURATION, operation).observe(record.elapsed)


@contextlib.asynccontextmanager
async def worker_metrics(db: Database) -> AsyncIterator[None]:
    async def loop() -> None:
        while True:
            refresh(db)
            await asyncio.sleep(REFRESH_SECONDS)

    task = asyncio.create_task(loop(), name="unifocus-process-metrics")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        metrics.mark_process_dead(os.getpid())
