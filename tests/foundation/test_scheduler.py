"""The in-process scheduler: a long job holds back neither the other jobs nor their ticks."""

from __future__ import annotations

import asyncio
import uuid

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
