"""The scheduled jobs of a running service (each runs in one replica at a time)."""

from __future__ import annotations

from unifocus.db.pool import Database
from unifocus.idempotency.cleanup import cleanup_expired, refresh_stats
from unifocus.jobs.scheduler import Scheduler
from unifocus.settings import Settings


def build_scheduler(db: Database, settings: Settings) -> Scheduler:
    scheduler = Scheduler(db)
    batch = settings.idempotency_cleanup_batch
    scheduler.add("idempotency-cleanup", settings.idempotency_cleanup_cron, lambda d: cleanup_expired(d, batch))
    scheduler.add("table-stats", "* * * * *", refresh_stats)
    return scheduler
