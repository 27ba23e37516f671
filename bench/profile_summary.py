"""Summarise py-spy collapsed stacks (`py-spy record --format raw`) of the service workers.

    .venv/bin/python bench/profile_summary.py bench/results/profile-worker0.txt [...]

py-spy drops samples of a thread blocked in epoll (idle), so the shares are of the time a
worker was running or runnable. Prints the inclusive shares of the write path's steps and of
the layers around them, then the top frames by self time.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

# (label, substring a frame must contain); inclusive: a sample counts once per label
# A sample whose innermost Python frame is asyncio's Runner.run is uvloop's C loop (epoll,
# callbacks, transport writes): no Python frame of ours is on the stack.
IDLE_LEAF = "Runner.run (asyncio/runners.py"

MARKERS = [
    ("request: whole ASGI app", "__call__ (starlette/applications.py"),
    ("  middleware stack (observability, request id, limits)", "unifocus/observability/middleware.py"),
    ("  rate-limit middleware (token verify)", "unifocus/ratelimit/middleware.py"),
    ("  FastAPI dependency solving + body validation", "solve_dependencies"),
    ("  bearer token verification (jwt)", "jwt/api_jwt.py"),
    ("  write path: WriteRequest.run", "run (unifocus/db/writepath.py"),
    ("    enter (tenant + caller + idempotency claim)", "_enter"),
    ("    evaluate_zone (lock + facts in one call + rules)", "evaluate_zone"),
    ("      occurrences() expansion", "occurrences (unifocus/schedules/occurrences.py"),
    ("      rules.evaluate", "evaluate (unifocus/timeexceptions/rules.py"),
    ("    occurrence_of (pairing again)", "occurrence_of"),
    ("    reconcile (inserts/withdrawals)", "reconcile"),
    ("    _finish (audit insert + idempotency store)", "_finish"),
    ("    Result.encode (pydantic dump)", "encode (unifocus/db/writepath.py"),
    ("  fingerprint (sha256 of the request)", "fingerprint"),
    ("  pydantic (validation + serialisation)", "pydantic"),
    ("  asyncpg (protocol, codecs, pool)", "asyncpg"),
    ("    leaf inside asyncpg's Cython protocol (send/encode/decode)", "@LEAF:asyncpg/connection.py"),
    ("    BEGIN (Transaction.start)", "Transaction.start"),
    ("    COMMIT", "Transaction.commit"),
    ("    pool release: reset query", "Connection.reset"),
    ("    per-query metrics (observe_query)", "observe_query"),
    ("  prometheus_client (metrics)", "prometheus_client"),
    ("  logging", "logging/__init__.py"),
    ("  orjson / json", "json"),
    ("  zoneinfo / datetime", "zoneinfo"),
    ("uvicorn HTTP response send (RequestResponseCycle.send)", "RequestResponseCycle.send"),
]


def load(paths: list[Path]) -> Counter[str]:
    stacks: Counter[str] = Counter()
    for path in paths:
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if stack and count.isdigit():
                stacks[stack] += int(count)
    return stacks


def summarise(paths: list[Path]) -> str:
    stacks = load([p for p in paths if p.exists()])
    total = sum(stacks.values()) or 1
    lines = [f"samples: {total} (files: {', '.join(p.name for p in paths)})", "", "inclusive share of samples:"]
    for label, needle in MARKERS:
        if needle.startswith("@LEAF:"):
            n = sum(c for s, c in stacks.items() if needle[6:] in s.rsplit(";", 1)[-1])
        else:
            n = sum(c for s, c in stacks.items() if needle in s)
        lines.append(f"  {label:<62} {100 * n / total:5.1f}%")
    busy = {s: c for s, c in stacks.items() if not s.rsplit(";", 1)[-1].startswith(IDLE_LEAF)}
    busy_total = sum(busy.values()) or 1
    lines.insert(1, f"in uvloop's C loop (no Python frame): {100 * (total - busy_total) / total:.1f}%")
    selfs: Counter[str] = Counter()
    for s, c in busy.items():
        selfs[s.rsplit(";", 1)[-1]] += c
    lines += ["", "top 25 frames by self time (share of samples outside the C loop):"]
    for frame, c in selfs.most_common(25):
        lines.append(f"  {100 * c / busy_total:5.1f}%  {frame[:140]}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(summarise([Path(a) for a in sys.argv[1:]]))
