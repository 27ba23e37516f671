"""Where a benchmark's CPU goes: per process group, from /proc, while a load runs.

Used by `bench/run.py` to report, for pgbench, the bare baseline and the service, the CPU
milliseconds one punch write costs PostgreSQL's backends and the HTTP workers: the figures
that say which side bounds the throughput on a shared machine.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path


class CpuMeter(threading.Thread):
    """CPU seconds (user + system) used while it runs by the processes `match(pid, cmdline)`
    picks, from /proc/<pid>/stat. Polled every `period`, so a process that exits before the
    end (pgbench's backends) counts up to its last poll: at most `period` of it is lost. Only
    processes of this machine: with a remote DATABASE_URL the PostgreSQL figure is None."""

    def __init__(self, match: Callable[[int, bytes], bool], period: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.match, self.period = match, period
        self.ticks = os.sysconf("SC_CLK_TCK")
        self.started_at = self._uptime_ticks()
        self.first: dict[int, int] = {}
        self.last: dict[int, int] = {}
        self.seen: dict[int, bool] = {}
        self.stopping = threading.Event()

    @staticmethod
    def _uptime_ticks() -> float:
        return float(Path("/proc/uptime").read_text().split()[0]) * os.sysconf("SC_CLK_TCK")

    def _scan(self) -> None:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            try:
                # Asked again until it matches: a process may exec into the one we look for
                # under the same pid (Debian's /usr/bin/pgbench is a Perl wrapper that does).
                if not self.seen.get(pid):
                    self.seen[pid] = self.match(pid, (entry / "cmdline").read_bytes())
                if not self.seen[pid]:
                    continue
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            used, start = int(fields[11]) + int(fields[12]), int(fields[19])
            # a process started after the meter counts from zero
            self.first.setdefault(pid, used if start <= self.started_at else 0)
            self.last[pid] = used

    def run(self) -> None:
        while True:
            self._scan()
            if self.stopping.wait(self.period):
                return

    def stop(self) -> float | None:
        """CPU seconds used since start; None if no matching process was seen."""
        self.stopping.set()
        self.join()
        self._scan()
        if not self.last:
            return None
        return sum(self.last[p] - self.first[p] for p in self.last) / self.ticks


def postgres_backends(database: str) -> Callable[[int, bytes], bool]:
    """PostgreSQL backends connected to `database` (their title names it)."""
    needle = f" {database} ".encode()
    return lambda _pid, cmd: cmd.startswith(b"postgres:") and needle in cmd


def pids_of(pids: set[int]) -> Callable[[int, bytes], bool]:
    return lambda pid, _cmd: pid in pids


def command(name: bytes) -> Callable[[int, bytes], bool]:
    return lambda _pid, cmd: cmd.split(b"\0", 1)[0].rsplit(b"/", 1)[-1] == name


class MachineShare:
    """How the whole machine's CPU time went while a load ran, from /proc/stat's `cpu` line:
    `busy` (every state but idle and iowait, steal included) and `steal` (time the hypervisor
    gave this virtual machine's cores to someone else), each a share of all cores' time. A
    saturated machine is busy near 1.0; steal is time no process of the run could have had,
    so a high steal explains a slow run that the code does not."""

    def __init__(self) -> None:
        self.first = self._read()

    @staticmethod
    def _read() -> list[int]:
        with open("/proc/stat") as f:
            return [int(x) for x in f.readline().split()[1:]]

    def stop(self) -> dict[str, float]:
        delta = [b - a for a, b in zip(self.first, self._read(), strict=False)]
        delta += [0] * (8 - len(delta))  # kernels before 2.6.11 had no steal column
        # user nice system idle iowait irq softirq steal (guest time is inside user already)
        total = sum(delta[:8]) or 1
        idle = delta[3] + delta[4]
        return {"busy": round((total - idle) / total, 3), "steal": round(delta[7] / total, 4)}


def cpu_model() -> str | None:
    """The processor's name as /proc/cpuinfo gives it (None where it gives none)."""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return None


def python_loop_ms(rounds: int = 5) -> float:
    """One core's speed for pure Python, before any load: the best of `rounds` timings of a
    fixed loop (integer arithmetic, a dict, a list) in milliseconds. Recorded to see whether
    it explains the differences between runs (the workers' Python is the larger half of a
    punch's CPU); a short probe taken once, it does not follow the machine during the load."""
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        seen: dict[int, int] = {}
        acc: list[int] = []
        for i in range(300_000):
            seen[i & 1023] = i
            if i % 7 == 0:
                acc.append(i)
        best = min(best, time.perf_counter() - started)
    return round(best * 1000, 1)
