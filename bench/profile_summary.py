"""Summarise py-spy collapsed stacks (`py-spy record --format raw`) of the service workers.

    .venv/bin/python bench/profile_summary.py bench/results/profile-worker0.txt [...]

py-spy drops samples of a thread blocked in epoll (idle), but keeps those of a thread that is
runnable and waiting for a core. On this 2-core machine a worker that writes a query to
PostgreSQL's socket (or a response to the client's) wakes a process that often takes the
worker's core at once; until it gets a core back, every sample shows the worker inside the
write, whose innermost Python frame is asyncpg's `_do_execute` (or `execute` for BEGIN and
COMMIT, or uvicorn's `send`). `py-spy --native` shows what is below: uvloop's
`UVStream._try_write` -> `write()`. The workers' /proc CPU times agree: those samples are
waiting, not CPU (bench/README.md). They are counted apart ("descheduled in a socket write")
and the shares below are of the remaining samples: the workers' CPU.
Prints the inclusive shares of the write path's steps and of the layers around them, then the
top frames by self time.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

# (label, substring a frame must contain); inclusive: a sample counts once per label
# A sample whose innermost Python frame is asyncio's Runner.run is uvloop's C loop (epoll,
# callbacks, transport writes): no Python frame of ours is on the stack.
IDLE_LEAF = "Runner.run (asyncio/runners.py"
# Innermost frames of a worker that wrote to a socket and lost its core (see above): a query to
# PostgreSQL, or the response to the client (the transport's write wakes wrk the same way):
# uvicorn's own writes (runs before 2026-11-30's sixth session), or the one `writelines` of
# unifocus/httpserver.py that sends a response's header block and body together.
WRITE_LEAVES = (
    "Connection._do_execute (asyncpg/connection.py:2069", "Connection.execute (asyncpg/connection.py:375",
    "RequestResponseCycle.send (uvicorn/protocols/http/httptools_impl.py:524",
    "RequestResponseCycle.send (uvicorn/protocols/http/httptools_impl.py:551",
    "CoalescingTransport.flush (unifocus/httpserver.py:",
)

MARKERS = [
    ("request: whole ASGI app", "__call__ (starlette/applications.py"),
    ("  observability middleware (request id, metrics, access line)", "ObservabilityMiddleware.__call__"),
    ("  request limits middleware (body size, depth, UTF-8)", "RequestLimitsMiddleware.__call__"),
    ("  rate-limit middleware (token verify)", "unifocus/ratelimit/middleware.py"),
    ("  FastAPI dependency solving + body validation", "solve_dependencies"),
    ("  bearer token verification (jwt)", "jwt/api_jwt.py"),
    ("  fingerprint (sha256 of the request)", "fingerprint"),
    ("  write path: WriteRequest.run", "run (unifocus/db/writepath.py"),
    ("    enter (+ the punch's reads: unifocus_enter_punch)", "_enter"),
    ("    record_prefetched (the punch handler)", "record_prefetched"),
    ("      evaluate_context (the exception rules)", "evaluate_context"),
    ("        _spans (schedule rows -> patterns)", "_spans"),
    ("        occurrences() expansion", "occurrences (unifocus/schedules/occurrences.py"),
    ("        pair_punches", "pair_punches"),
    ("        rules.evaluate", "evaluate (unifocus/timeexceptions/rules.py"),
    ("    _finish (deferred writes + audit + stored response)", "_finish"),
    ("    BEGIN (Transaction.start)", "Transaction.start"),
    ("    COMMIT", "Transaction.commit"),
    ("  pydantic (validation + serialisation)", "pydantic"),
    ("  asyncpg (Python side: pool, statement cache, codecs)", "asyncpg"),
    ("    per-query metrics (observe_query)", "observe_query"),
    ("  prometheus_client (metrics)", "prometheus_client"),
    ("  orjson / json", "json"),
    ("  uuid (parse, str, uuid4)", "uuid.py"),
    ("uvicorn HTTP response send (RequestResponseCycle.send)", "RequestResponseCycle.send"),
    ("  of which the one writev of header block and body (httpserver.py)", "CoalescingTransport.flush"),
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
    waiting = sum(c for s, c in stacks.items() if s.rsplit(";", 1)[-1].startswith(WRITE_LEAVES))
    cpu = {s: c for s, c in stacks.items() if not s.rsplit(";", 1)[-1].startswith(WRITE_LEAVES)}
    cpu_total = sum(cpu.values()) or 1
    loop = sum(c for s, c in cpu.items() if s.rsplit(";", 1)[-1].startswith(IDLE_LEAF))
    lines = [
        f"samples: {total} (files: {', '.join(p.name for p in paths)})",
        f"descheduled in a socket write (waiting for a core, not CPU): {100 * waiting / total:.1f}% of samples",
        "",
        "shares of the other samples (the workers' CPU):",
        f"  in uvloop's C loop (no Python frame: sockets, HTTP parsing, callbacks)   {100 * loop / cpu_total:5.1f}%",
    ]
    for label, needle in MARKERS:
        n = sum(c for s, c in cpu.items() if needle in s)
        lines.append(f"  {label:<72} {100 * n / cpu_total:5.1f}%")
    selfs: Counter[str] = Counter()
    for s, c in cpu.items():
        leaf = s.rsplit(";", 1)[-1]
        if not leaf.startswith(IDLE_LEAF):
            selfs[leaf] += c
    lines += ["", "top 25 frames by self time (share of the workers' CPU samples):"]
    for frame, c in selfs.most_common(25):
        lines.append(f"  {100 * c / cpu_total:5.1f}%  {frame[:140]}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(summarise([Path(a) for a in sys.argv[1:]]))
