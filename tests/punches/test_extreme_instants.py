"""Instants at the edges of the calendar (contract 1: a client error never answers 500): the
write path reads a window of days around a punch, and that arithmetic must not overflow
Python's datetime range (years 1-9999) before the punch's own checks answer."""

from __future__ import annotations

import psycopg
import pytest

from tests.conftest import Api, TenantFixture, tenant_counts
from tests.punches.test_punches import punch


@pytest.mark.parametrize("stamp", ["9999-12-31T23:59:59Z", "9999-12-31T10:00:00-12:00", "9999-12-28T00:00:00Z"])
@pytest.mark.parametrize("source", ["api", "manual"])
async def test_a_punch_at_the_end_of_the_calendar_is_a_future_punch(
    api: Api, tenant_a: TenantFixture, owner_sql: psycopg.Connection, stamp: str, source: str
) -> None:
    """The days after 9999-12-28 have no room for the window around them; such a punch is
    what any punch that far ahead is: more than 5 minutes in the future, a 422 naming the field."""
    before = tenant_counts(owner_sql, tenant_a.id, "punches", "audit_log")
    r = await punch(api, tenant_a, "clock_in", stamp, tenant_a.manager, source=source)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in r.json()["errors"]] == ["timestamp"]
    assert "future" in r.json()["detail"]
    assert tenant_counts(owner_sql, tenant_a.id, "punches", "audit_log") == before


async def test_the_connection_stays_usable_after_a_punch_at_the_end_of_the_calendar(
    api: Api, tenant_a: TenantFixture
) -> None:
    """A 500 made the server drop the keep-alive connection, failing the client's next request."""
    assert (await punch(api, tenant_a, "clock_in", "9999-12-31T23:59:59Z")).status_code == 422
    assert (await api.req("GET", "/api/me", tenant_a.employee)).status_code == 200


@pytest.mark.parametrize("stamp", [
    "0001-01-01T00:00:00Z", "0001-01-02T12:00:00Z", "0001-01-05T00:00:00+14:00", "0001-01-01T00:30:00+01:00"])
async def test_a_punch_at_the_start_of_the_calendar_is_refused_not_a_500(
    api: Api, tenant_a: TenantFixture, owner_sql: psycopg.Connection, stamp: str
) -> None:
    before = tenant_counts(owner_sql, tenant_a.id, "punches", "audit_log")
    r = await punch(api, tenant_a, "clock_in", stamp)
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["timestamp"]
    assert tenant_counts(owner_sql, tenant_a.id, "punches", "audit_log") == before


async def test_a_batch_item_at_either_end_of_the_calendar_is_rejected_alone(api: Api, tenant_a: TenantFixture) -> None:
    items = [{"employeeId": str(tenant_a.employee_id), "type": "clock_in", "timestamp": ts,
              "clientPunchId": f"edge-{i}", "device": "clock-1"}
             for i, ts in enumerate(["9999-12-31T23:59:59Z", "0001-01-02T12:00:00Z"])]
    r = await api.req("POST", "/api/punches/batch", tenant_a.manager, json={"punches": items})
    assert r.status_code in (200, 207), r.text
    assert [item["status"] for item in r.json()["results"]] == ["rejected", "rejected"], r.text
