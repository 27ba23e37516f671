"""`unifocus demo`'s seeding against the session's test database: two tenants, every
exception type in each, through the real API; a second run finds them and adds nothing."""

from __future__ import annotations

from typing import Any

import psycopg

from tests.conftest import Api
from unifocus.demo import seed_demo
from unifocus.demo.scenario import TENANTS
from unifocus.settings import Settings
from unifocus.timeexceptions.rules import EXCEPTION_TYPES


def _count(owner_sql: psycopg.Connection, table: str, tenant_ids: list[str]) -> int:
    row = owner_sql.execute(f"SELECT count(*) FROM {table} WHERE tenant_id = ANY(%s::uuid[])",  # noqa: S608
                            (tenant_ids,)).fetchone()
    assert row is not None
    return int(row[0])


async def _exceptions(api: Api, token: str) -> list[dict[str, Any]]:
    r = await api.req("GET", "/api/exceptions?limit=500", token)
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


async def test_demo_seeds_two_tenants_with_every_exception_type_once(
    api: Api, settings: Settings, owner_url: str, owner_sql: psycopg.Connection
) -> None:
    first = await seed_demo(settings, owner_url)
    assert [(t["name"], t["timezone"]) for t in first] == [(t.name, t.timezone) for t in TENANTS]
    for tenant in first:
        assert set(tenant["tokens"]) == {"admin", "manager", "employee"}
        for role, token in tenant["tokens"].items():
            me = await api.req("GET", "/api/me", token)
            assert me.status_code == 200 and me.json()["role"] == role
            assert me.json()["tenantId"] == tenant["tenantId"]
        found = await _exceptions(api, tenant["tokens"]["manager"])
        assert {e["type"] for e in found} == set(EXCEPTION_TYPES), tenant["name"]
        missed = {e["details"]["reason"] for e in found if e["type"] == "missed_punch"}
        assert {"clock_out_with_nothing_open", "still_open_after_end"} <= missed
        assert all(e["status"] == "pending" for e in found)
        # The employee sees only their own.
        mine = await _exceptions(api, tenant["tokens"]["employee"])
        assert mine and len({e["employeeId"] for e in mine}) == 1

    ids = [t["tenantId"] for t in first]
    counts = {t: _count(owner_sql, t, ids) for t in ("punches", "employees", "users", "schedules",
                                                      "exceptions", "audit_log")}
    assert counts["employees"] == 10 and counts["users"] == 8
    second = await seed_demo(settings, owner_url)
    assert [t["tenantId"] for t in second] == ids
    assert {t: _count(owner_sql, t, ids) for t in counts} == counts
    for tenant in second:
        me = await api.req("GET", "/api/me", tenant["tokens"]["admin"])
        assert me.status_code == 200 and me.json()["role"] == "admin"


async def test_an_interrupted_seed_is_finished_without_duplicates(
    settings: Settings, owner_url: str, owner_sql: psycopg.Connection
) -> None:
    """A start that died after some punches: the next one completes the data, once."""
    ids = [t["tenantId"] for t in await seed_demo(settings, owner_url)]
    before = _count(owner_sql, "punches", ids)
    # Simulate the interruption: the last staff member's punch batch never arrived (its
    # punches that no exception names, and its idempotency record, are gone).
    owner_sql.execute(
        "DELETE FROM punches p USING employees e WHERE e.tenant_id = p.tenant_id AND e.id = p.employee_id "
        "AND p.tenant_id = %s::uuid AND e.external_id = 'HH-005' AND NOT EXISTS "
        "(SELECT 1 FROM exceptions x WHERE x.tenant_id = p.tenant_id AND x.punch_id = p.id)", (ids[0],))
    owner_sql.execute("DELETE FROM idempotency_records WHERE tenant_id = %s::uuid AND key LIKE %s",
                      (ids[0], "%:punches:HH-005"))
    assert _count(owner_sql, "punches", ids) < before
    again = await seed_demo(settings, owner_url)
    assert [t["tenantId"] for t in again] == ids
    assert _count(owner_sql, "punches", ids) == before
