"""The exception engine alone: `evaluate_context` over bench-shaped punch contexts, in-process.

    .venv/bin/python bench/engine.py [punches]

Each context is what `unifocus_enter_punch` returns for one punch of `make bench` (an
employee with a 09:00-17:00 shift every day, four punches in the window, no exceptions), in
the same order `bench/punch.lua` sends them (employee g mod 1000). Prints microseconds per
punch. The machine drifts between runs: compare two versions by alternating runs and taking
the best few of each.
"""

from __future__ import annotations

import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from unifocus.timeexceptions import engine
from unifocus.timeexceptions.pairing import PunchFact

TENANT = uuid.uuid4()
EMPLOYEES = 1000


def context(e: int, days_back: int) -> tuple[dict[str, Any], datetime]:
    base = datetime(2026, 6, 1, tzinfo=UTC) - timedelta(days=days_back)
    schedule = str(uuid.UUID(int=e))
    shifts = [[schedule, "2018-01-01", "2027-01-01", str(uuid.UUID(int=10**6 + e * 10 + d)), d, "09:00:00", "17:00:00"]
              for d in range(1, 8)]
    punches = []
    attributions = []  # as stored: each punch of a day attributed to that day's shift (migration 0015)
    for k in (1, 2):
        day = base - timedelta(days=k)
        pair = [[str(uuid.uuid4()), "clock_in", (day + timedelta(hours=9)).isoformat()],
                [str(uuid.uuid4()), "clock_out", (day + timedelta(hours=17)).isoformat()]]
        punches += pair
        shift = str(uuid.UUID(int=10**6 + e * 10 + day.isoweekday()))
        attributions += [[pid, shift, day.date().isoformat()] for pid, _, _ in pair]
    return ({"timezone": "UTC", "policy": None, "now": datetime.now(UTC).isoformat(), "punches": punches,
             "attributions": attributions, "shifts": shifts, "exceptions": []}, base)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 6000
    work = []
    for g in range(n):
        data, base = context(g % EMPLOYEES, (g // EMPLOYEES) // 2)
        ts = base + timedelta(hours=9 if (g // EMPLOYEES) % 2 == 0 else 17)
        work.append((data, uuid.UUID(int=g % EMPLOYEES), ts))
    start = time.perf_counter()
    for data, employee, ts in work:
        engine.evaluate_context(data, TENANT, employee, ts - engine.PUNCH_ZONE, ts + engine.PUNCH_ZONE,
                                extra=PunchFact(uuid.uuid4(), "clock_in", ts))
    print(f"evaluate_context: {(time.perf_counter() - start) / n * 1e6:.1f} us per punch ({n} punches)")


if __name__ == "__main__":
    main()
