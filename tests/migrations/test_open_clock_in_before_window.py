"""Migration 0018 adds `opened_before` to both window reads: the employee's last live punch
before the window when it is a clock_in stored with no shift (a session left open that the
window's next clock_in reveals), with that punch's own exceptions among `exceptions`. Never
another employee's punch, nothing else changed, and a downgrade gives the 0017 answer."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.migrations.conftest import migrated_to
from tests.migrations.test_lean_executor_start import context
from tests.migrations.test_window_read_index_scan import facts
from tests.tenancy.seed import seed
from unifocus.db.migrate import downgrade, upgrade

pytestmark = pytest.mark.tenants


def open_clock_in(owner: psycopg.Connection, tenant: uuid.UUID, employee: uuid.UUID, ts: str) -> str:
    """An unattributed clock_in at `ts` with its own missed_punch; returns its id."""
    punch = uuid.uuid4()
    owner.execute("INSERT INTO punches (tenant_id, id, employee_id, type, ts, source) "
                  "VALUES (%s, %s, %s, 'clock_in', %s, 'api')", (tenant, punch, employee, ts))
    owner.execute("INSERT INTO exceptions (tenant_id, employee_id, type, punch_id, dedupe_key, details) "
                  "VALUES (%s, %s, 'missed_punch', %s, %s, %s)",
                  (tenant, employee, punch, f"punch:{punch}", Jsonb({"reason": "clock_in_while_open"})))
    return str(punch)


def test_both_reads_add_the_open_clock_in_before_the_window_and_nothing_else(scratch_db: str) -> None:
    settings, runtime = migrated_to(scratch_db, "0017")
    with psycopg.connect(scratch_db, autocommit=True) as owner:
        a = seed(owner, uuid.uuid4())
        employee = uuid.UUID(str(a["employee"]))
        opened = open_clock_in(owner, a.tenant, employee, "2025-12-01T09:00:00Z")  # a month before
        # the employee whose id sorts just below: its later open clock_in must never be read
        neighbour = uuid.UUID(int=employee.int - 1)
        owner.execute("INSERT INTO employees (tenant_id, id, first_name, last_name) VALUES (%s, %s, 'N', 'B')",
                      (a.tenant, neighbour))
        foreign = open_clock_in(owner, a.tenant, neighbour, "2025-12-31T09:00:00Z")

    def observed() -> tuple[dict[str, Any], dict[str, Any]]:
        return context(runtime, a.tenant, employee), facts(runtime, a.tenant, employee)

    before = observed()
    assert all("opened_before" not in read for read in before)
    upgrade(scratch_db, settings, "0018")
    after = observed()
    for read_before, read_after in zip(before, after, strict=True):
        assert read_after.pop("opened_before") == [opened, "clock_in", "2025-12-01T09:00:00+00:00"]
        owned = [x for x in read_after["exceptions"] if x["punch_id"] == opened]
        assert [x["type"] for x in owned] == ["missed_punch"]
        assert not [x for x in read_after["exceptions"] if x["punch_id"] == foreign]
        read_after["exceptions"] = [x for x in read_after["exceptions"] if x["punch_id"] != opened]
        assert read_after == read_before, "every other key answers as under 0017"

    # closed before the window (the last punch is a clock_out), or matched to a shift: none
    with psycopg.connect(scratch_db, autocommit=True) as owner:
        owner.execute("INSERT INTO punches (tenant_id, employee_id, type, ts, source) "
                      "VALUES (%s, %s, 'clock_out', '2025-12-01T17:00:00Z', 'api')", (a.tenant, employee))
    assert [read["opened_before"] for read in observed()] == [None, None]
    with psycopg.connect(scratch_db, autocommit=True) as owner:
        owner.execute("INSERT INTO punches (tenant_id, employee_id, type, ts, source, shift_id, shift_date) "
                      "VALUES (%s, %s, 'clock_in', '2025-12-29T09:00:00Z', 'api', %s, '2025-12-29')",
                      (a.tenant, employee, a["shift"]))
    assert [read["opened_before"] for read in observed()] == [None, None]

    downgrade(scratch_db, settings, "0017")
    assert all("opened_before" not in read for read in observed())
