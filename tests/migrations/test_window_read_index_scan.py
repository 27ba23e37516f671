"""Migration 0011 adds `employee_id = E` beside the row comparisons of the punch window's reads.
The rows must not change: the same context from both read functions under 0010, under 0011
and after a downgrade, and never a row of the employee next to this one in the index (the row
comparisons' edges), whose punches and exceptions fall in the same window."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import psycopg
import pytest

from tests.migrations.conftest import migrated_to
from tests.migrations.test_lean_executor_start import DAY, FROM, TO, add_punch_owned_exceptions, context
from tests.tenancy.seed import seed
from unifocus.db.migrate import downgrade, upgrade

pytestmark = pytest.mark.tenants


def add_neighbour(owner: psycopg.Connection, tenant: uuid.UUID, employee: uuid.UUID, offset: int) -> set[str]:
    """An employee whose id sorts right beside `employee`, with punches in the window (one at
    its very start) and a punch-owned exception; returns the ids that must never be read."""
    other = uuid.UUID(int=employee.int + offset)
    owner.execute("INSERT INTO employees (tenant_id, id, first_name, last_name) VALUES (%s, %s, 'N', 'B')",
                  (tenant, other))
    ids: set[str] = set()
    for ts in (FROM, datetime.fromisoformat("2026-01-05T09:00:00+00:00")):
        punch = uuid.uuid4()
        owner.execute("INSERT INTO punches (tenant_id, id, employee_id, type, ts, source) "
                      "VALUES (%s, %s, %s, 'clock_in', %s, 'api')", (tenant, punch, other, ts))
        ids.add(str(punch))
    add_punch_owned_exceptions(owner, tenant, other, punch)
    ids.update(str(r[0]) for r in owner.execute("SELECT id FROM exceptions WHERE employee_id = %s", (other,)))
    return ids


def facts(runtime: str, tenant: uuid.UUID, employee: Any) -> dict[str, Any]:
    with psycopg.connect(runtime) as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant),))
        row = conn.execute(
            "SELECT unifocus_punch_facts(%s, %s, %s, %s, %s, %s, %s, %s)",
            (tenant, employee, FROM, TO, DAY.replace(day=1), DAY.replace(day=12), DAY.replace(day=3),
             DAY.replace(day=7))).fetchone()
        assert row is not None and row[0] is not None
        data = dict(row[0])
        data.pop("now"), data.pop("version")
        return data


def test_the_window_reads_answer_as_before(scratch_db: str) -> None:
    settings, runtime = migrated_to(scratch_db, "0010")
    with psycopg.connect(scratch_db, autocommit=True) as owner:
        a = seed(owner, uuid.uuid4())
        employee = uuid.UUID(str(a["employee"]))
        add_punch_owned_exceptions(owner, a.tenant, employee, a["punch"])
        owner.execute("INSERT INTO punches (tenant_id, employee_id, type, ts, source, voided, void_reason) "
                      "VALUES (%s, %s, 'clock_out', '2026-01-05T17:00:00Z', 'api', true, 'typo')",
                      (a.tenant, employee))
        foreign = add_neighbour(owner, a.tenant, employee, 1) | add_neighbour(owner, a.tenant, employee, -1)

    def observed() -> tuple[dict[str, Any], dict[str, Any]]:
        return context(runtime, a.tenant, employee), facts(runtime, a.tenant, employee)

    before = observed()
    for read in before:
        assert [p[0] for p in read["punches"]] == [str(a["punch"])], "the voided punch and the neighbours' are out"
        assert sorted(x["type"] for x in read["exceptions"]) == ["late_arrival", "missed_punch", "unscheduled_punch"]
        assert not foreign & {str(x["id"]) for x in read["exceptions"]}

    upgrade(scratch_db, settings, "0011")
    assert observed() == before
    downgrade(scratch_db, settings, "0010")
    assert observed() == before
