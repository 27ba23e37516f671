"""The timesheet CSV: RFC 4180 (comma, CRLF, quotes doubled), UTF-8, one header row.

Columns (documented in the README and the OpenAPI description):
employee_id, external_id, last_name, first_name, date (YYYY-MM-DD, local), scheduled_minutes,
worked_minutes, break_minutes, overtime_minutes, exception_count (non-withdrawn exceptions of
the day), exception_types (the distinct types, sorted, joined by `;`).

Names and external ids are user input that ends up in a spreadsheet: a cell starting with
`=`, `+`, `-`, `@` (or a tab / carriage return, which some spreadsheets skip before a
formula) gets a leading apostrophe so it is shown as text and never evaluated (OWASP
"CSV injection").
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

HEADER = (
    "employee_id",
    "external_id",
    "last_name",
    "first_name",
    "date",
    "scheduled_minutes",
    "worked_minutes",
    "break_minutes",
    "overtime_minutes",
    "exception_count",
    "exception_types",
)
MEDIA_TYPE = "text/csv; charset=utf-8"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """The cell's text, neutralised when a spreadsheet would read it as a formula."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    if text.startswith(_FORMULA_START):
        return "'" + text
    return text


def render(rows: Iterable[Sequence[object]]) -> str:
    """The CSV text. Every cell goes through `safe_cell`; callers may pre-neutralise cells
    (service.iter_rows does, once per employee) and pass them as `SafeText`, which is kept."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(HEADER)
    writer.writerows([v if _inert(v) else safe_cell(v) for v in row] for row in rows)
    return buf.getvalue()


def _inert(value: object) -> bool:
    """Cells that cannot start a formula: pre-neutralised text, non-negative integers."""
    kind = type(value)
    return kind is SafeText or (kind is int and value >= 0)  # type: ignore[operator]


class SafeText(str):
    """A cell already passed through `safe_cell` (so a 14,000-row export neutralises each
    employee's names once, not once per day)."""

    __slots__ = ()


def safe_text(value: object) -> SafeText:
    return SafeText(safe_cell(value))


def filename(from_date: object, to_date: object) -> str:
    return f"timesheets-{from_date}-{to_date}.csv"
