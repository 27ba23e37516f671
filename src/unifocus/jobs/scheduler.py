"""An in-process cron scheduler whose jobs run in exactly one replica at a time.

Every replica runs the same schedule; when a job is due, each tries a PostgreSQL advisory
lock for it, held by an open transaction on a dedicated connection (transaction-scoped, so
it is safe behind PgBouncer's transaction pooling). The replica that gets it runs the job;
the others skip this occurrence.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from croniter import croniter

from unifocus.db.pool import Database
from unifocus.errors import one_line
from unifocus.observability import hooks

log = logging.getLogger("unifocus.jobs")

JobFn = Callable[[Database], Awaitable[int]]


@dataclass
class Job:
    name: str
    cron: str
    fn: JobFn
    run_at_start: bool = False


async def run_exclusive(db: Database, name: str, fn: JobFn) -> int | None:
    """Run `fn` if no other replica is running job `name`; None when it was skipped. A failure
    is logged and counted here, the job's own or the lock connection's (the database down)."""
    ran = False
    try:
        async with db.connection() as lock_conn:
            async with lock_conn.transaction():
                got = await lock_conn.fetchval(
                    "SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))", f"unifocus.job:{name}"
                )
                if not got:
                    log.info("job %s is running in another replica; skipped", name)
                    return None
                ran = True
                result = await fn(db)
    except Exception as exc:
        hooks.job_run(name, False, time.time())
        if ran:
            log.exception("job %s failed", name)
        else:  # its lock's connection: the database, whose own alerts say more than a traceback
            log.warning("job %s could not start: %s", name, one_line(exc))
        raise
    hooks.job_run(name, True, time.time())
    log.info("job %s done: %s", name, result)
    return result


class Scheduler:
    """Each due job runs as a task of its own: a long one (the sweep's pass over a year's
    upload) delays neither the others' ticks nor its own replica's other jobs. A job whose
    previous run in this replica has not finished skips the tick (as it would in another
    replica, which finds its lock taken). At most `MAX_RUNNING` jobs run at once, each with
    two connections of the jobs' own pool (`Database.for_jobs`)."""

    MAX_RUNNING = 2
    # A run at start that failed (the database unreachable while the pod started) is retried
    # this often until one succeeds: its gauges (the last cleanup time) would otherwise stay
    # at 0 until the job's next cron tick, 02:00 for the idempotency cleanup, and
    # IdempotencyTableGrowth's "no success for 26 h" would read that 0 as a cleanup long overdue.
    START_RETRY_SECONDS = 60.0

    def __init__(self, db: Database) -> None:
        self.db = db
        self.jobs: list[Job] = []
        self._task: asyncio.Task[None] | None = None
        self._running: dict[str, asyncio.Task[bool | None]] = {}
        self._slots = asyncio.Semaphore(self.MAX_RUNNING)

    def add(self, name: str, cron: str, fn: JobFn, run_at_start: bool = False) -> None:
        """`run_at_start`: also run once when the service starts (so gauges such as the last
        cleanup time are true right after a restart, not only after the next cron tick),
        retried every START_RETRY_SECONDS until it succeeds (or another replica runs it)."""
        if not croniter.is_valid(cron):
            raise ValueError(f"job {name}: invalid cron expression {cron!r}")
        self.jobs.append(Job(name, cron, fn, run_at_start))
        hooks.job_declared(name)

    def start(self) -> None:
        if self.jobs:
            self._task = asyncio.create_task(self._loop(), name="unifocus-scheduler")

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._running.values()) if t is not None]
        for task in tasks:
            task.cancel()
        # Every task is awaited whatever one of them raised, so the caller goes on to close
        # the pool.
        await asyncio.gather(*tasks, return_exceptions=True)

    def _launch(self, job: Job, at_start: bool = False) -> None:
        running = self._running.get(job.name)
        if running is not None and not running.done():
            log.info("job %s is still running in this replica; tick skipped", job.name)
            return
        run = self._run_at_start(job) if at_start else self._run(job)
        self._running[job.name] = asyncio.create_task(run, name=f"unifocus-job-{job.name}")

    async def _run(self, job: Job) -> bool:
        """Whether the run succeeded, or was another replica's to make (skipped)."""
        async with self._slots:
            try:
                await run_exclusive(self.db, job.name, job.fn)
            except Exception:  # logged and counted in run_exclusive; the other jobs go on
                return False
        return True

    async def _run_at_start(self, job: Job) -> None:
        # Until it succeeds once. Meanwhile the job's cron ticks in this replica are skipped
        # (this task is its run), and the retries hold no slot while they wait.
        while not await self._run(job):
            log.info("job %s: its run at start failed; retried in %.0f s", job.name, self.START_RETRY_SECONDS)
            await asyncio.sleep(self.START_RETRY_SECONDS)

    async def _loop(self) -> None:
        for job in self.jobs:
            if job.run_at_start:
                self._launch(job, at_start=True)
        now = datetime.now(UTC)
        due = {job.name: croniter(job.cron, now).get_next(datetime) for job in self.jobs}
        while True:
            name = min(due, key=lambda n: due[n])
            delay = (due[name] - datetime.now(UTC)).total_seconds()
            if delay > 0:
                await asyncio.sleep(min(delay, 60))
                continue
            job = next(j for j in self.jobs if j.name == name)
            due[name] = croniter(job.cron, datetime.now(UTC)).get_next(datetime)
            self._launch(job)


async def tenant_ids(db: Database) -> list[object]:
    """Every tenant id (the jobs' only cross-tenant read; see unifocus_tenant_ids())."""
    async with db.connection() as conn:
        return [r[0] for r in await conn.fetch("SELECT unifocus_tenant_ids()")]
