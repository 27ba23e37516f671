"""The scheduled jobs of a running service (each runs in one replica at a time)."""

from __future__ import annotations

from unifocus.audit.export import nightly_export
from unifocus.db.pool import Database
from unifocus.idempotency.cleanup import cleanup_expired, refresh_stats
from unifocus.jobs.scheduler import Scheduler
from unifocus.settings import Settings
from unifocus.timeexceptions.sweep import sweep, sweep_late_punches


def build_scheduler(db: Database, settings: Settings) -> Scheduler:
    scheduler = Scheduler(db)
    batch = settings.idempotency_cleanup_batch
    scheduler.add("idempotency-cleanup", settings.idempotency_cleanup_cron, lambda d: cleanup_expired(d, batch),
                  run_at_start=True)
    scheduler.add("table-stats", "* * * * *", refresh_stats, run_at_start=True)
    scheduler.add("exception-sweep", settings.exception_sweep_cron, lambda d: sweep(d, chains=settings.audit_chains))
    # Same ticks, its own lock: a long pass over a late upload leaves the look-back's alone.
    scheduler.add("exception-sweep-late", settings.exception_sweep_cron,
                  lambda d: sweep_late_punches(d, chains=settings.audit_chains))
    if settings.audit_export_enabled:
        scheduler.add("audit-export", settings.audit_export_cron, lambda d: nightly_export(d, settings))
    return scheduler
