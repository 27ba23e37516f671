"""Migration 0008 rewrites the tenant policies and the punch write's read functions for less
executor start-up. What they answer must not change: the same context JSON (the exceptions'
two halves, now UNION ALL, still give every row exactly once), the same caller and claim, and
row-level security still confines the app role to its tenant, fail closed without one."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.migrations.conftest import migrated_to
from tests.tenancy.seed import SEEDED_TABLES, seed
from unifocus.db.migrate import downgrade, upgrade
from unifocus.db.urls import app_url
from unifocus.settings import Settings

pytestmark = pytest.mark.tenants

DAY = date(2026, 1, 5)  # the seeded shift's Monday; the seeded punch is at 14:10Z that day
FROM, TO = datetime.fromisoformat("2026-01-02T00:00:00+00:00"), datetime.fromisoformat("2026-01-09T00:00:00+00:00")


def add_punch_owned_exceptions(owner: psycopg.Connection, tenant: uuid.UUID, employee: Any, punch: Any) -> None:
    """Punch-owned exceptions (no shift) on the seeded punch: one dated inside the zone (both of
    the read's halves match it), one undated, one withdrawn (never read)."""
    for kind, shift_date, status in (("unscheduled_punch", DAY, "pending"), ("missed_punch", None, "pending"),
                                     ("long_break", DAY, "withdrawn")):
        owner.execute(
            "INSERT INTO exceptions (tenant_id, employee_id, type, status, punch_id, shift_date, dedupe_key, details) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (tenant, employee, kind, status, punch, shift_date, f"punch:{punch}:{kind}", Jsonb({"k": kind})))


def context(runtime: str, tenant: uuid.UUID, employee: Any) -> dict[str, Any]:
    with psycopg.connect(runtime) as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant),))
        row = conn.execute(
            "SELECT unifocus_punch_context(%s, %s, %s, %s, %s, %s, %s, %s)",
            (tenant, employee, FROM, TO, DAY - timedelta(days=7), DAY + timedelta(days=7), DAY - timedelta(days=2),
             DAY + timedelta(days=2))).fetchone()
        assert row is not None and row[0] is not None
        data = dict(row[0])
        data.pop("now")
        return data


def caller(runtime: str, tenant: uuid.UUID, subject: str) -> tuple[Any, ...]:
    """The caller and a fresh key's claim, as `unifocus_enter` answers them."""
    with psycopg.connect(runtime) as conn:
        row = conn.execute(
            "SELECT o_user_id, o_role, o_active, o_claimed, current_setting('app.tenant_id'), "
            "current_setting('lock_timeout') FROM unifocus_enter(%s, %s, '1500ms', 'POST', '/api/punches', %s, "
            "'\\x00'::bytea, 60)", (tenant, subject, f"k-{uuid.uuid4()}")).fetchone()
        assert row is not None
        return tuple(row)


def visible_tenants(runtime: str, tenant: uuid.UUID | None) -> dict[str, set[Any]]:
    with psycopg.connect(runtime) as conn:
        if tenant is not None:
            conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant),))
        return {t: {r[0] for r in conn.execute(f"SELECT tenant_id FROM {t}").fetchall()}  # noqa: S608
                for t in SEEDED_TABLES}


def policies_with_subselects(owner: psycopg.Connection) -> int:
    row = owner.execute("SELECT count(*) FROM pg_policies WHERE policyname = 'tenant_isolation' "
                        "AND (qual ILIKE '%SELECT%' OR with_check ILIKE '%SELECT%')").fetchone()
    assert row is not None
    return int(row[0])


def test_the_lean_functions_and_policies_answer_as_before(scratch_db: str) -> None:
    settings, runtime = migrated_to(scratch_db, "0007")
    with psycopg.connect(scratch_db, autocommit=True) as owner:
        a, b = seed(owner, uuid.uuid4()), seed(owner, uuid.uuid4())
        add_punch_owned_exceptions(owner, a.tenant, a["employee"], a["punch"])
        assert policies_with_subselects(owner) == len(SEEDED_TABLES)

    def observed() -> tuple[Any, ...]:
        return (context(runtime, a.tenant, a["employee"]), caller(runtime, a.tenant, str(a["subject"])),
                visible_tenants(runtime, a.tenant), visible_tenants(runtime, None))

    before = observed()
    ctx = before[0]
    kinds = sorted(x["type"] for x in ctx["exceptions"])
    assert kinds == ["late_arrival", "missed_punch", "unscheduled_punch"], "each live exception exactly once"
    assert [x["id"] for x in ctx["exceptions"]] == sorted(x["id"] for x in ctx["exceptions"])
    assert len(ctx["punches"]) == 1 and len(ctx["shifts"]) == 1
    assert before[1][1:] == ("manager", True, True, str(a.tenant), "1500ms")
    assert before[2] == {t: {a.tenant} for t in SEEDED_TABLES} and before[3] == {t: set() for t in SEEDED_TABLES}

    upgrade(scratch_db, settings)
    with psycopg.connect(scratch_db, autocommit=True) as owner:
        assert policies_with_subselects(owner) == 0
    after = observed()
    # the same context at the head, plus the key migration 0015 adds (its own test holds it)
    assert {k: v for k, v in after[0].items() if k != "attributions"} == before[0]
    assert after[1][1:] == before[1][1:]
    assert after[2:] == before[2:]
    assert b.tenant not in set().union(*after[2].values())

    downgrade(scratch_db, settings, "0007")
    with psycopg.connect(scratch_db, autocommit=True) as owner:
        assert policies_with_subselects(owner) == len(SEEDED_TABLES)
    again = observed()
    assert again[0] == before[0] and again[2:] == before[2:]


def test_the_plain_policy_still_refuses_another_tenants_row(scratch_db: str) -> None:
    settings = Settings(database_url=scratch_db)
    upgrade(scratch_db, settings)
    with psycopg.connect(scratch_db, autocommit=True) as owner:
        a, b = seed(owner, uuid.uuid4()), seed(owner, uuid.uuid4())
    with psycopg.connect(app_url(settings, scratch_db)) as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(a.tenant),))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO employees (tenant_id, first_name, last_name) VALUES (%s, 'x', 'y')",
                         (b.tenant,))
