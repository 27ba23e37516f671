"""Property: for any punches, a timesheet's totals are the sum of its days, and its days are
exactly that employee's rows of the CSV export (both paths load and compute independently)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Api, TenantFixture
from tests.timesheets.support import insert_punches, new_employee, parse_csv, schedule, timesheet

FIRST, LAST = "2026-03-02", "2026-03-10"  # across the New York spring-forward (03-08)
# punches from two days before the range to two days after it, so edges are exercised
ORIGIN = datetime(2026, 2, 28, 0, 0, tzinfo=UTC)
SPAN_MINUTES = 14 * 24 * 60

punch_lists = st.lists(
    st.tuples(
        st.sampled_from(["clock_in", "clock_out", "break_start", "break_end"]),
        st.integers(0, SPAN_MINUTES),
        st.booleans() | st.just(False),
    ),
    max_size=40,
)
FIGURES = ("scheduledMinutes", "workedMinutes", "breakMinutes", "overtimeMinutes")
COLUMNS = ("scheduled_minutes", "worked_minutes", "break_minutes", "overtime_minutes")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    punches=punch_lists,
    tz=st.sampled_from([None, "Europe/London", "Asia/Tokyo", "America/Los_Angeles"]),
    seconds=st.integers(0, 59),
)
async def test_totals_equal_sum_of_days_and_export_rows(
    api: Api,
    tenant_a: TenantFixture,
    owner_sql,
    punches: list[tuple[str, int, bool]],
    tz: str | None,
    seconds: int,
) -> None:
    emp = await new_employee(api, tenant_a, timezone=tz)
    await schedule(
        api,
        tenant_a,
        emp,
        "2026-03-01",
        "2026-03-12",
        (1, "09:00", "17:00"),
        (3, "22:00", "06:00"),
        (6, "22:00", "06:00"),
        (7, "12:00", "20:00"),
    )
    insert_punches(
        owner_sql,
        tenant_a,
        emp,
        [
            (kind, ORIGIN + timedelta(minutes=minute, seconds=seconds * (minute % 2)), voided)
            for kind, minute, voided in punches
        ],
    )
    sheet = await timesheet(api, tenant_a.manager, emp, FIRST, LAST)
    for fig in FIGURES:
        assert sheet["totals"][fig] == sum(d[fig] for d in sheet["days"])
    assert all(d[f] >= 0 for d in sheet["days"] for f in FIGURES)

    r = await api.req("GET", f"/api/timesheets/export?from={FIRST}&to={LAST}", tenant_a.manager)
    assert r.status_code == 200
    rows = [row for row in parse_csv(r.text) if row["employee_id"] == str(emp)]
    assert [row["date"] for row in rows] == [d["date"] for d in sheet["days"]]
    for row, d in zip(rows, sheet["days"], strict=True):
        assert tuple(int(row[c]) for c in COLUMNS) == tuple(d[f] for f in FIGURES)
        assert int(row["exception_count"]) == len(d["exceptions"])
    for col, fig in zip(COLUMNS, FIGURES, strict=True):
        assert sum(int(row[col]) for row in rows) == sheet["totals"][fig]
