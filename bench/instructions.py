"""Instructions per punch of the service's in-process write path, counted by callgrind.

    DATABASE_URL=... .venv/bin/python bench/instructions.py [--src A/src --src B/src]
                                          [--employees E] [--base M] [--punches N] [--repeat R]

`bench/inproc.py` times the same path, and on this shared 2-core machine its CPU times move by
15-30% between rounds (the machine's own speed drifts: a fixed Python loop timed between its
rounds took 150-257 ms). A change worth a few percent cannot be seen through that. valgrind's
callgrind counts the instructions the process executes instead, which do not depend on how
fast the machine runs: one checkout measured twice agrees within ~0.5-1.6%.

A measurement runs `bench/inproc.py` under callgrind twice on one seeded database (kept for
the whole run, so every checkout writes to the same tables): a warm-up and `--base` punches,
then a warm-up and `--base + --punches`; the difference divided by `--punches` leaves out
start-up, imports and the warm-up. The warm-up, `--base` and `--punches` are whole cycles of
`punch.lua`'s workload over `--employees` (a clock_in and a clock_out of every employee), so
the punches counted are the steady mix, every employee's caches warm. Checkouts are
alternated, `--repeat` times; each result names its checkout's commit.

What is counted: user-space instructions of the Python process only (the ASGI app, the
engine, asyncpg, the asyncio loop; not uvicorn's HTTP parsing, not the kernel, not
PostgreSQL). Python's own allocator and a fixed hash seed, as in production but repeatable.
callgrind runs Python ~50x slower and PostgreSQL at full speed, so what depends on timing
(how many writes a group commit carries, how often a task waits) is what it is at that speed,
not at the service's. About 3 minutes a measurement with the defaults. Needs valgrind
(Debian's `valgrind`).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(1, str(HERE))

from run import SECRET, bench_database, code_version, seed, write_result  # noqa: E402
from unifocus.db.migrate import upgrade  # noqa: E402
from unifocus.db.urls import database_name  # noqa: E402
from unifocus.settings import Settings  # noqa: E402

TOTALS = re.compile(r"^totals:\s+(\d+)", re.MULTILINE)


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--src", action="append", help="a checkout's src (repeatable; default: this checkout's)")
    ap.add_argument("--employees", type=int, default=250, help="employees punched; a cycle is twice this")
    ap.add_argument("--base", type=int, default=500, help="punches of the shorter run, after the warm-up")
    ap.add_argument("--punches", type=int, default=1000, help="punches the two runs of a measurement differ by")
    ap.add_argument("--repeat", type=int, default=2, help="measurements per checkout, alternated")
    args = ap.parse_args()
    cycle = 2 * args.employees
    if args.base % cycle or args.punches % cycle or not args.punches:
        ap.error(f"--base and --punches must be whole cycles of 2 x --employees = {cycle} punches")
    return args


def instructions(src: str, db_name: str, args: argparse.Namespace, punches: int, work: Path) -> int:
    """Instructions of one `inproc.py` run: the warm-up (one cycle), then `punches`."""
    run_dir = Path(tempfile.mkdtemp(dir=work))
    env = {**os.environ, "INPROC_DB": db_name, "PYTHONHASHSEED": "0"}
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={run_dir}/callgrind.%p.out", sys.executable,
           str(HERE / "inproc.py"), "--src", src, "--employees", str(args.employees),
           "--warmup", str(2 * args.employees), "--punches", str(punches), "--rounds", "1"]
    log = run_dir / "output.txt"
    with log.open("w") as out:
        done = subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-20:]
        raise RuntimeError(f"inproc.py under callgrind failed ({done.returncode}) for {src}:\n" + "\n".join(tail))
    # The Python process's own file: the one whose name has the lowest pid (valgrind's own
    # children, if any, come after it).
    outs = sorted(run_dir.glob("callgrind.*.out"), key=lambda p: int(p.name.split(".")[1]))
    found = TOTALS.search(outs[0].read_text(errors="replace")) if outs else None
    if found is None:
        raise RuntimeError(f"no totals in callgrind's output for {src}")
    shutil.rmtree(run_dir, ignore_errors=True)
    return int(found.group(1))


def main() -> None:
    args = parse_args()
    if not os.environ.get("DATABASE_URL"):
        sys.exit("bench/instructions.py needs DATABASE_URL")
    if shutil.which("valgrind") is None:
        sys.exit("bench/instructions.py needs valgrind (apt-get install valgrind)")
    srcs = [str(Path(s).resolve()) for s in (args.src or [str(ROOT / "src")])]
    runs: dict[str, list[dict[str, Any]]] = {src: [] for src in srcs}
    # The database and work directory `make bench` uses, dropped and removed at the end;
    # inproc.py (INPROC_DB) writes to it on DATABASE_URL's server.
    with bench_database("unifocus-instr-", keep=False) as (db, work, _):
        settings = Settings(database_url=db, jwt_secret=SECRET, data_dir=work, scheduler_enabled=False,
                            rate_limit_enabled=False, log_level="WARNING", redis_url=None)
        upgrade(db, settings)
        seed(db, args.employees)
        for r in range(args.repeat):
            for src in srcs:
                short = instructions(src, database_name(db), args, args.base, work)
                long = instructions(src, database_name(db), args, args.base + args.punches, work)
                per_punch = (long - short) / args.punches
                runs[src].append({"short": short, "long": long, "per_punch": round(per_punch)})
                print(f"round {r + 1}: {src}: {per_punch:,.0f} instructions per punch", flush=True)
    means = {src: sum(m["per_punch"] for m in measured) / args.repeat for src, measured in runs.items()}
    first = means[srcs[0]]
    checkouts = []
    for src, measured in runs.items():
        checkouts.append({"src": src, "code": code_version(Path(src)), "measurements": measured,
                          "mean_per_punch": round(means[src]), "vs_first": round(means[src] / first, 4)})
        print(f"{src} ({checkouts[-1]['code']}): mean {means[src]:,.0f} instructions per punch "
              f"({means[src] / first:.3f} of the first)")
    write_result("instructions", {"code": code_version(), "params": {
        "employees": args.employees, "warmup": 2 * args.employees, "base": args.base, "punches": args.punches,
        "repeat": args.repeat}, "checkouts": checkouts})


if __name__ == "__main__":
    main()
