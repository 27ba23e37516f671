"""Pass/fail rows with evidence, and the table `smoke` and `gate verify` print."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"


@dataclass
class Row:
    """One step (smoke) or gate: its outcome and the evidence behind it."""

    name: str
    status: str = PASS
    evidence: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status != FAIL

    def check(self, condition: bool, what: str) -> bool:
        """Record one claim; a false one fails the row."""
        self.evidence.append(("ok    " if condition else "FAILED ") + what)
        if not condition:
            self.status = FAIL
        return condition

    def note(self, what: str) -> None:
        self.evidence.append("      " + what)

    def error(self, exc: BaseException) -> None:
        self.status = FAIL
        self.evidence.append(f"FAILED {type(exc).__name__}: {exc}")


class Timer:
    def __init__(self, row: Row) -> None:
        self.row = row

    def __enter__(self) -> Row:
        self.start = time.perf_counter()
        return self.row

    def __exit__(self, *exc: object) -> None:
        self.row.seconds = time.perf_counter() - self.start


def render(title: str, rows: list[Row], verbose: bool = True) -> str:
    width = max([len(r.name) for r in rows] + [4])
    lines = [title, f"{'STEP'.ljust(width)}  RESULT  TIME     EVIDENCE", "-" * (width + 60)]
    for r in rows:
        first = r.evidence[0] if r.evidence else ""
        lines.append(f"{r.name.ljust(width)}  {r.status:<6}  {r.seconds * 1000:6.0f}ms {first}")
        if verbose or not r.ok:
            lines.extend(f"{'':{width}}  {'':6}  {'':8} {e}" for e in r.evidence[1:])
    passed = sum(1 for r in rows if r.status == PASS)
    failed = sum(1 for r in rows if r.status == FAIL)
    skipped = sum(1 for r in rows if r.status == SKIP)
    lines.append("-" * (width + 60))
    lines.append(f"{'FAILED' if failed else 'PASSED'}: {passed} passed, {failed} failed, {skipped} skipped")
    return "\n".join(lines)
