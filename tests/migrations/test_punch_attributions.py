"""Migration 0015 adds `attributions` to the classic punch read (`unifocus_punch_context`: the
stored `shift_id` and `shift_date` of each live punch, for the engine to re-attribute), and
nothing to the two-statement write's read (`unifocus_punch_facts`: it sends a punch that may
move another to the classic write instead). Everything else they answer stays as it was, so
the previous release's code reads them as before, and a downgrade gives the 0014 answer."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from tests.migrations.conftest import migrated_to
from tests.migrations.test_lean_executor_start import DAY, add_punch_owned_exceptions, context
from tests.migrations.test_window_read_index_scan import add_neighbour, facts
from tests.tenancy.seed import seed
from unifocus.db.migrate import downgrade, upgrade

pytestmark = pytest.mark.tenants


def test_the_classic_read_adds_the_stored_attributions_and_nothing_else(scratch_db: str) -> None:
    settings, runtime = migrated_to(scratch_db, "0014")
    with psycopg.connect(scratch_db, autocommit=True) as owner:
        a = seed(owner, uuid.uuid4())
        employee = uuid.UUID(str(a["employee"]))
        add_punch_owned_exceptions(owner, a.tenant, employee, a["punch"])
        unattributed = uuid.uuid4()
        owner.execute("INSERT INTO punches (tenant_id, id, employee_id, type, ts, source) "
                      "VALUES (%s, %s, %s, 'clock_out', '2026-01-05T23:00:00Z', 'api')",
                      (a.tenant, unattributed, employee))
        owner.execute("INSERT INTO punches (tenant_id, employee_id, type, ts, source, shift_id, shift_date, voided, "
                      "void_reason) VALUES (%s, %s, 'clock_out', '2026-01-05T17:00:00Z', 'api', %s, %s, true, 'typo')",
                      (a.tenant, employee, a["shift"], DAY))
        foreign = add_neighbour(owner, a.tenant, employee, 1) | add_neighbour(owner, a.tenant, employee, -1)

    def observed() -> tuple[dict[str, Any], dict[str, Any]]:
        return context(runtime, a.tenant, employee), facts(runtime, a.tenant, employee)

    before = observed()
    assert all("attributions" not in read for read in before)
    upgrade(scratch_db, settings, "0015")
    after = observed()
    (context_before, facts_before), (context_after, facts_after) = before, after
    assert facts_after == facts_before, "the two-statement read answers as under 0014"
    attributions = context_after.pop("attributions")
    assert context_after == context_before, "every other key answers as under 0014"
    # the live punches of the window, as 'punches' lists them (the voided one and the
    # neighbours' are out), with what is stored
    assert sorted(attributions) == sorted([
        [str(a["punch"]), str(a["shift"]), DAY.isoformat()], [str(unattributed), None, None]])
    assert sorted(p[0] for p in context_after["punches"]) == sorted(x[0] for x in attributions)
    assert not foreign & {x[0] for x in attributions}
    downgrade(scratch_db, settings, "0014")
    assert observed() == before
