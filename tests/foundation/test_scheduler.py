"""The in-process scheduler: a long job holds back neither the other jobs nor their ticks, and
a job runs in one replica at a time."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable

import pytest

from unifocus.db.pool import Database
from unifocus.jobs.scheduler import Scheduler
from unifocus.settings import Settings

EVERY_SECOND = "* * * * * *"  # croniter's sixth field: seconds


async def test_a_long_job_holds_back_neither_the_other_jobs_nor_its_own_ticks(
    runtime_url: str, settings: Settings
) -> None:
    """The sweep's pass over a year's upload can take minutes: meanwhile the look-back and the
    other jobs keep their ticks, and the long job is not started again in this replica while
    it runs (its ticks are skipped, as another replica's are by its lock)."""
    db = Database(runtime_url, settings)
    await db.open()
    release = asyncio.Event()
    slow_runs: list[int] = []
    quick_runs: list[int] = []

    async def slow(_: Database) -> int:
        slow_runs.append(1)
        await release.wait()
        return 0

    async def quick(_: Database) -> int:
        quick_runs.append(1)
        return 0

    scheduler = Scheduler(db)
    tag = uuid.uuid4().hex
    scheduler.add(f"slow-{tag}", EVERY_SECOND, slow, run_at_start=True)
    scheduler.add(f"quick-{tag}", EVERY_SECOND, quick)
    scheduler.start()
    try:
        for _ in range(100):
            if len(quick_runs) >= 3:
                break
            await asyncio.sleep(0.1)
        assert len(quick_runs) >= 3  # three ticks of the quick job while the slow one runs
        assert slow_runs == [1]  # its own ticks meanwhile were skipped, not queued nor doubled
        release.set()
        for _ in range(50):
            if len(slow_runs) >= 2:
                break
            await asyncio.sleep(0.1)
        assert len(slow_runs) >= 2  # once it has finished, its next tick runs it again
    finally:
        release.set()
        await scheduler.stop()
        await db.close()


async def test_a_job_runs_in_one_replica_at_a_time(runtime_url: str, settings: Settings,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    """Every replica runs the same schedule: when a job is due, each tries the job's advisory
    lock, one runs it, and the others skip the tick, however many ticks pass while it runs."""
    dbs = [Database(runtime_url, settings) for _ in range(2)]
    for db in dbs:
        await db.open()
    release = asyncio.Event()
    starts: list[int] = []

    def job_of(replica: int) -> Callable[[Database], Awaitable[int]]:
        async def job(_: Database) -> int:
            starts.append(replica)
            await release.wait()
            return 0
        return job

    name = f"exclusive-{uuid.uuid4().hex}"
    schedulers = [Scheduler(db) for db in dbs]
    for replica, scheduler in enumerate(schedulers):
        scheduler.add(name, EVERY_SECOND, job_of(replica), run_at_start=True)
    for scheduler in schedulers:
        scheduler.start()
    caplog.set_level(logging.INFO, logger="unifocus.jobs")
    try:
        for _ in range(30):
            if starts:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(2.5)  # two or three more ticks in each replica
        assert len(starts) == 1, f"the job ran in {len(starts)} places at once: {starts}"
        # The other replica did try, and found the lock taken (not, say, no connection).
        assert f"job {name} is running in another replica; skipped" in caplog.text
    finally:
        release.set()
        for scheduler in schedulers:
            await scheduler.stop()
        for db in dbs:
            await db.close()


async def test_a_run_at_start_that_failed_is_retried_until_it_succeeds(
    owner_url: str, settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The pod started while the database was unreachable: the idempotency cleanup's run at
    start failed. Once the database is back it succeeds within a retry, not at its next cron
    tick (02:00): until then its last-success gauge read 0, which IdempotencyTableGrowth
    counts as a cleanup 26 h overdue."""
    from prometheus_client import REGISTRY

    from tests.health.proxy import TcpProxy, postgres_address, url_through
    from unifocus.idempotency.cleanup import cleanup_expired

    proxy = TcpProxy(postgres_address(owner_url))  # not started yet: connections are refused
    through = url_through(proxy.port, owner_url, settings.app_db_role, settings.app_db_password)
    db = Database.for_jobs(through, settings.model_copy(update={"db_timeout_seconds": 1.0}))
    await db.open()
    name = f"idempotency-cleanup-{uuid.uuid4().hex}"
    scheduler = Scheduler(db)
    scheduler.START_RETRY_SECONDS = 0.2
    scheduler.add(name, "0 2 * * *", lambda d: cleanup_expired(d, 100), run_at_start=True)

    def runs(result: str) -> float:
        return REGISTRY.get_sample_value("unifocus_job_runs_total", {"job": name, "result": result}) or 0.0

    def last_success() -> float:
        return REGISTRY.get_sample_value("unifocus_job_last_success_timestamp_seconds", {"job": name}) or 0.0

    started = time.time()
    scheduler.start()
    try:
        for _ in range(100):
            if runs("failure") >= 2:
                break
            await asyncio.sleep(0.05)
        assert runs("failure") >= 2 and runs("success") == 0  # retried while the database is away
        await proxy.start()
        for _ in range(100):
            if runs("success"):
                break
            await asyncio.sleep(0.05)
        assert runs("success") == 1 and last_success() >= started
        cleaned = REGISTRY.get_sample_value("unifocus_idempotency_cleanup_last_success_timestamp_seconds")
        assert cleaned is not None and cleaned >= started
        failures = runs("failure")
        await asyncio.sleep(0.6)
        assert (runs("failure"), runs("success")) == (failures, 1)  # one success ends the retries
    finally:
        await scheduler.stop()
        await db.close()
        if proxy.server is not None and proxy.server.is_serving():
            await proxy.stop()
