"""The in-process scheduler: a long job holds back neither the other jobs nor their ticks, and
a job runs in one replica at a time."""

from __future__ import annotations

import asyncio
import logging
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
