"""Instructions per punch of the service's in-process write path, counted by callgrind.

    DATABASE_URL=... .venv/bin/python bench/instructions.py [--src A/src --src B/src]
                                                           [--punches N] [--base M] [--repeat R]

`bench/inproc.py` times the same path, and on this shared 2-core machine its CPU times move by
15-30% between rounds (the machine's own speed drifts: a fixed Python loop timed between its
rounds took 150-257 ms). A change worth a few percent cannot be seen through that. valgrind's
callgrind counts the instructions the process executes instead, which do not depend on how
fast the machine runs: one checkout measured twice agrees within ~1-2%.

Each measurement runs `bench/inproc.py` under callgrind twice on one seeded database (kept for
the whole run, so every checkout writes to the same tables), once with `--base` punches and
once with `--base + --punches`, and divides the difference by `--punches`: start-up, imports
and the warm-up cancel out. Checkouts are alternated, `--repeat` times. Counted: user-space
instructions of the Python process only (the ASGI app, the engine, asyncpg, the asyncio loop;
not uvicorn's HTTP parsing, not the kernel, not PostgreSQL). About 2.5 minutes a measurement
with the defaults (callgrind runs Python ~50x slower). Needs valgrind (Debian's `valgrind`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(1, str(HERE))

import psycopg  # noqa: E402

from run import SECRET, seed  # noqa: E402
from unifocus.db.migrate import upgrade  # noqa: E402
from unifocus.db.urls import with_database  # noqa: E402
from unifocus.settings import Settings  # noqa: E402

TOTALS = re.compile(r"^totals:\s+(\d+)", re.MULTILINE)


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--src", action="append", help="a checkout's src (repeatable; default: this checkout's)")
    ap.add_argument("--punches", type=int, default=1000, help="punches the two runs of a measurement differ by")
    ap.add_argument("--base", type=int, default=200, help="punches of the shorter run")
    ap.add_argument("--repeat", type=int, default=2, help="measurements per checkout, alternated")
    ap.add_argument("--employees", type=int, default=1000)
    return ap.parse_args()


def instructions(src: str, db_name: str, punches: int, work: Path) -> int:
    """Instructions of one `inproc.py` run (warm-up, then one round of `punches`)."""
    out = work / f"callgrind.{uuid.uuid4().hex[:8]}.out"
    env = {**os.environ, "INPROC_DB": db_name, "PYTHONMALLOC": "malloc"}
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable,
           str(HERE / "inproc.py"), "--src", src, "--punches", str(punches), "--rounds", "1"]
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    found = TOTALS.search(out.read_text(errors="replace"))
    out.unlink()
    if found is None:
        raise RuntimeError(f"no totals in callgrind's output for {src}")
    return int(found.group(1))


def main() -> None:
    args = parse_args()
    server = os.environ.get("DATABASE_URL")
    if not server:
        sys.exit("bench/instructions.py needs DATABASE_URL")
    if shutil.which("valgrind") is None:
        sys.exit("bench/instructions.py needs valgrind (apt-get install valgrind)")
    srcs = [str(Path(s).resolve()) for s in (args.src or [str(ROOT / "src")])]
    name = f"unifocus_instr_{uuid.uuid4().hex[:10]}"
    db = with_database(server, name)
    work = Path(tempfile.mkdtemp(prefix="unifocus-instr-"))
    settings = Settings(database_url=db, jwt_secret=SECRET, data_dir=work, scheduler_enabled=False,
                        rate_limit_enabled=False, log_level="WARNING", redis_url=None)
    per_punch: dict[str, list[float]] = {src: [] for src in srcs}
    try:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        upgrade(db, settings)
        seed(db, args.employees)
        for r in range(args.repeat):
            for src in srcs:
                short = instructions(src, name, args.base, work)
                long = instructions(src, name, args.base + args.punches, work)
                per_punch[src].append((long - short) / args.punches)
                print(f"round {r + 1}: {src}: {per_punch[src][-1]:,.0f} instructions per punch", flush=True)
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        shutil.rmtree(work, ignore_errors=True)
    first = sum(per_punch[srcs[0]]) / len(per_punch[srcs[0]])
    summary = {}
    for src, figures in per_punch.items():
        mean = sum(figures) / len(figures)
        summary[src] = {"instructions_per_punch": figures, "mean": round(mean), "vs_first": round(mean / first, 4)}
        print(f"{src}: mean {mean:,.0f} instructions per punch ({mean / first:.3f} of the first)")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    result = {"timestamp": stamp, "params": {"punches": args.punches, "base": args.base, "repeat": args.repeat,
                                              "employees": args.employees}, "checkouts": summary}
    out = HERE / "results" / f"instructions-{stamp}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
