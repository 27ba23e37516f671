"""A/B the service against itself: configurations alternated on one database, same load.

    .venv/bin/python bench/ab.py '{"UNIFOCUS_DB_POOL_MAX": "10"}' '{"UNIFOCUS_DB_POOL_MAX": "4"}' \
        [--rounds 2] [--duration 12] [--clients 16] [--warmup 8] [--series]

Each argument is a JSON object of environment variables for `unifocus serve --workers 2` (`{}`:
the defaults; `{"PYTHONPATH": "/path/to/other/checkout/src"}` runs another checkout's code;
`{database}` in a value is the A/B's database, so `{"DATABASE_URL":
"postgresql://postgres@/{database}?host=/var/run/postgresql"}` runs the service over the
server's Unix socket). Rounds alternate the variants (A B A B ...), so a drift of this shared
machine's speed falls on both; each run is a fresh server, a warm-up (`--warmup`, default 8 s
as in `make bench`), then `--duration` s of wrk with `punch.lua` on days no earlier run used.
Per run: writes/s (counted in the database), p50 / p99, the CPU per write of the bench
database's PostgreSQL backends and of the server's processes (`cpu.py`), how the measured
run's punches were written (`write_paths`: the service's `unifocus_punch_writes_total` by
outcome and the mean group of group commit; before the fifteenth session these counts
included the warm-up) and, with `--series`, each second's punches and share within 25 ms
(`seconds`). `make bench` is the reference measurement; this answers "is B better than A"
when the difference is smaller than the machine's drift between two `make bench` runs. The
figures are printed and written to `bench/results/ab-<UTC>.json` (files without
`params.warmup_s` had a 2 s warm-up).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg

from cpu import cpu_model, pids_of
from run import (
    SECRET,
    WARMUP_S,
    Meters,
    Server,
    Settings,
    analyze,
    code_version,
    database_name,
    metric_families,
    midnight_days_ago,
    mint_token,
    punch_count,
    punches_within,
    run_wrk,
    seed,
    start_service,
    upgrade,
    warm_up,
    with_database,
    write_result,
)

# The counters `write_counters` reads; a punch write's outcome is its own key.
_WRITE_COUNTERS = ("unifocus_punch_writes_total", "unifocus_write_groups_total", "unifocus_write_group_items_total")


def write_counters(base: str) -> dict[str, float]:
    """The service's `unifocus_punch_writes_total` by outcome and its group-commit counters."""
    counts: dict[str, float] = {}
    for family in metric_families(base):
        for sample in family.samples:
            if sample.name in _WRITE_COUNTERS:
                key = sample.labels.get("outcome") or sample.name
                counts[key] = counts.get(key, 0.0) + sample.value
    return counts


def write_paths(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """How the measured run's punches were written (`write_counters` around it): by outcome
    (all but written and replayed fell back to the classic transaction) and the mean group of
    group commit."""
    counts = {k: v - before.get(k, 0.0) for k, v in after.items()}
    groups = counts.pop("unifocus_write_groups_total", 0.0)
    items = counts.pop("unifocus_write_group_items_total", 0.0)
    counts["mean_group"] = round(items / groups, 2) if groups else 0.0
    return counts


class SecondBySecond(threading.Thread):
    """`--series`: each second of a run, the punches the service answered in it and the share
    of them within 25 ms, from its own histogram (`punches_within`: one `/metrics` scrape per
    second, about what the probes of `make bench` add). Shows whether a run's tail is spread
    over it or bunched in a few seconds (its start, a full garbage collection, the machine).
    The first scrape is made here, in the caller's thread, so that a service without the 25 ms
    bucket stops the run; a failed scrape later is counted and its second merged into the next."""

    def __init__(self, base: str) -> None:
        super().__init__(daemon=True)
        self.base = base
        self.seconds: list[tuple[int, float | None]] = []
        self.failures = 0
        self.halt = threading.Event()
        self.last = punches_within(base)

    def _tick(self) -> None:
        try:
            now = punches_within(self.base)
        except httpx.HTTPError:
            self.failures += 1
            return
        answered = now[1] - self.last[1]
        self.seconds.append((int(answered), round((now[0] - self.last[0]) / answered, 4) if answered else None))
        self.last = now

    def run(self) -> None:
        nxt = time.monotonic() + 1.0
        while not self.halt.wait(max(0.0, nxt - time.monotonic())):
            self._tick()
            nxt += 1.0

    def stop(self) -> list[tuple[int, float | None]]:
        """Stop at once and count the part-second since the last tick (its own entry)."""
        self.halt.set()
        self.join()
        self._tick()
        return self.seconds


def run_variant(env_vars: dict[str, str], db: str, token: str, work: Path, prefix: str,
                day0: int, args: argparse.Namespace) -> dict[str, Any]:
    started: list[Server] = []
    database = database_name(db)  # the URL's path: a socket URL carries `?host=/dir` after it
    env_vars = {k: v.replace("{database}", database) for k, v in env_vars.items()}
    server, _ = start_service(work, db, "WARNING", started, extra_env=env_vars)
    series: SecondBySecond | None = None
    try:
        # a day per 2000 punches (1000 employees, in and out): up to 2000/s over the longer load
        load = {"BENCH_TOKEN": token, "BENCH_EMPLOYEES": str(args.employees), "BENCH_COUNTS": str(work / "counts"),
                "BENCH_SPAN": str(span_days(args)), "BENCH_ORDER": args.order}
        warm_up(server.base, load, f"{prefix}w", day0 - 1500 * 86400, args.warmup, args.clients, work)
        analyze(db)
        before = punch_count(db)
        counters = write_counters(server.base)
        meters = Meters(db, {"http_workers": pids_of({server.proc.pid, *server.workers()})})
        if args.series:
            series = SecondBySecond(server.base)
            series.start()
        result = run_wrk(server.base, {**load, "BENCH_PREFIX": prefix, "BENCH_DAY0": str(day0)}, args.duration,
                         args.clients, work / "run.json")
        seconds = series.stop() if series else None
        share = meters.machine_share()
        writes = punch_count(db) - before
        return {"writes_per_s": round(writes / result["duration_s"], 1), "p50_ms": result["p50_ms"],
                "p99_ms": result["p99_ms"], "cpu_ms_per_write": meters.per_write(writes),
                "machine_share": share,
                "write_paths": write_paths(counters, write_counters(server.base)),
                **({"seconds": seconds, "series_failures": series.failures} if series else {})}
    finally:
        if series is not None and series.is_alive():
            series.halt.set()
        server.stop()


def span_days(args: argparse.Namespace) -> int:
    """Days each run's load (and, 1500 days back, its warm-up) may punch: 2000 punches a day at
    most, so up to 2000/s for the longer of the two, and 2 days to spare."""
    return max(args.duration, args.warmup) + 2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("variants", nargs="+", help="JSON objects of environment variables, one per variant")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--duration", type=int, default=12)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--employees", type=int, default=1000)
    ap.add_argument("--warmup", type=int, default=WARMUP_S, help="seconds of wrk before each measured run")
    ap.add_argument("--series", action="store_true",
                    help="per second of each run: punches answered and the share within 25 ms (`seconds`)")
    ap.add_argument("--order", choices=("forward", "backward"), default="forward", help="as make bench's --order")
    args = ap.parse_args()
    variants = [json.loads(v) for v in args.variants]
    server_url = os.environ.get("DATABASE_URL")
    if not server_url:
        sys.exit("bench/ab.py needs DATABASE_URL (a PostgreSQL server on this machine)")
    database = f"unifocus_ab_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    db = with_database(server_url, database)
    work = Path(tempfile.mkdtemp(prefix="unifocus-ab-"))
    results: list[list[dict[str, Any]]] = [[] for _ in variants]
    try:
        settings = Settings(database_url=db, jwt_secret=SECRET, data_dir=work / "data")
        upgrade(db, settings)
        tenant, user = seed(db, args.employees)
        token = mint_token(settings, tenant, str(user), ttl_minutes=120)
        days_back = 2
        for r in range(args.rounds):
            for i, env_vars in enumerate(variants):
                # fresh days for every run (`span_days`), 8 days apart
                days_back += span_days(args) + 8
                out = run_variant(env_vars, db, token, work, f"ab{r}v{i}", midnight_days_ago(days_back),
                                  args)
                results[i].append(out)
                print(f"round {r + 1} variant {i} {json.dumps(env_vars)}: {json.dumps(out)}", flush=True)
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    print()
    for env_vars, runs in zip(variants, results, strict=True):
        rates = ", ".join(str(x["writes_per_s"]) for x in runs)
        pg = ", ".join(str(x["cpu_ms_per_write"]["postgres"]) for x in runs)
        print(f"{json.dumps(env_vars)}: writes/s {rates}; PostgreSQL CPU ms per write {pg}")
    write_result("ab", {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"), "code": code_version(),
        "machine": {"cpus": os.cpu_count(), "cpu_model": cpu_model()},
        "params": {"rounds": args.rounds, "warmup_s": args.warmup, "series": args.series,
                   "duration_s": args.duration, "clients": args.clients,
                   "employees": args.employees, "order": args.order},
        # each variant's runs, round 1 first (the rounds alternated the variants)
        "variants": [{"env": env_vars, "runs": runs} for env_vars, runs in zip(variants, results, strict=True)],
    })


if __name__ == "__main__":
    main()
