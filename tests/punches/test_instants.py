"""Instants on the wire (contract 1): RFC 3339 text with an offset in, UTC `...Z` out, whatever
zone the database session would render in."""

from __future__ import annotations

import psycopg
import pytest

from tests.conftest import Api, TenantFixture, start_app, tenant_counts
from tests.punches.test_punches import MONDAY, punch, schedule
from unifocus.db.urls import database_name
from unifocus.settings import Settings


@pytest.mark.parametrize("stamp", [1772460000, "1772460000", 1772460000.5, "Monday 9am", "2026-03-02"])
async def test_a_timestamp_that_is_not_rfc3339_text_is_refused(
    api: Api, tenant_a: TenantFixture, owner_sql: psycopg.Connection, stamp: object
) -> None:
    """Unix seconds, as a number or digits, would otherwise be stored as if the clock had sent
    that instant; a date alone has no time. All are a 422 naming the field, and nothing is stored."""
    before = tenant_counts(owner_sql, tenant_a.id, "punches", "audit_log")
    r = await punch(api, tenant_a, "clock_in", stamp)  # type: ignore[arg-type]
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in r.json()["errors"]] == ["timestamp"]
    assert tenant_counts(owner_sql, tenant_a.id, "punches", "audit_log") == before


async def test_a_range_bound_in_unix_seconds_is_refused(api: Api, tenant_a: TenantFixture) -> None:
    r = await api.req("GET", "/api/punches?from=1772460000", tenant_a.manager)
    assert r.status_code == 422, r.text
    ok = await api.req("GET", f"/api/punches?from={MONDAY}T00:00:00Z", tenant_a.manager)
    assert ok.status_code == 200, ok.text


async def test_answers_are_utc_when_the_database_session_zone_is_not(
    settings: Settings, owner_url: str, owner_sql: psycopg.Connection, tenant_a: TenantFixture
) -> None:
    """A server (or role) whose default TimeZone is not UTC: the instants PostgreSQL renders into
    the punch path's JSON (the exception's createdAt, a repeated device punch's timestamps)
    still come back as `...Z`, and equal to what a later read returns."""
    database = database_name(owner_url)
    owner_sql.execute(f'ALTER ROLE {settings.app_db_role} IN DATABASE "{database}" SET timezone = \'Asia/Kolkata\'')
    app, client, lifespan = await start_app(settings)  # a new pool: its sessions start after the change
    try:
        api = Api(client)
        await schedule(api, tenant_a)
        late = await punch(api, tenant_a, "clock_in", f"{MONDAY}T09:06:00-05:00", device="clock-9",
                           clientPunchId="tz-1")
        assert late.status_code == 201, late.text
        [exc] = late.json()["exceptions"]
        assert exc["createdAt"].endswith("Z"), exc
        stored = (await api.req("GET", f"/api/exceptions/{exc['id']}", tenant_a.manager)).json()
        assert stored["createdAt"] == exc["createdAt"]

        again = await punch(api, tenant_a, "clock_in", f"{MONDAY}T09:06:00-05:00", device="clock-9",
                            clientPunchId="tz-1")
        assert again.status_code == 200, again.text  # the device's repeat: the stored punch
        assert again.json()["timestamp"] == f"{MONDAY}T14:06:00Z"
        assert again.json()["receivedAt"] == late.json()["receivedAt"]
        assert again.json()["receivedAt"].endswith("Z")
    finally:
        owner_sql.execute(f'ALTER ROLE {settings.app_db_role} IN DATABASE "{database}" RESET timezone')
        await client.aclose()
        await lifespan.__aexit__(None, None, None)  # type: ignore[attr-defined]
        del app


# Contract 1: exactly RFC 3339 date-time (section 5.6; a space for `T` as its note allows).
NOT_RFC3339 = [f"{MONDAY}T09:06:00+0000", f"{MONDAY}T09:06Z", f"{MONDAY}T09:06:00", f"{MONDAY}T09:06:00 Z",
               f"{MONDAY}T09:06:00.Z", f"{MONDAY}T9:06:00Z", f"{MONDAY}T09:06:00+05", f"{MONDAY}T09:06:00GMT"]


@pytest.mark.parametrize("stamp", NOT_RFC3339)
async def test_an_instant_not_in_rfc3339_form_is_refused_and_nothing_is_stored(
    api: Api, tenant_a: TenantFixture, owner_sql: psycopg.Connection, stamp: str
) -> None:
    before = tenant_counts(owner_sql, tenant_a.id, "punches", "audit_log", "idempotency_records")
    body = {"employeeId": str(tenant_a.employee_id), "type": "clock_in", "timestamp": stamp}
    r = await api.req("POST", "/api/punches", tenant_a.employee, key="k-1", json=body)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["type"].endswith("/validation-failed")
    [error] = r.json()["errors"]
    assert error["field"] == "timestamp" and "RFC 3339" in error["message"], error
    assert tenant_counts(owner_sql, tenant_a.id, "punches", "audit_log", "idempotency_records") == before
    # a refusal before the handler is not the key's answer: the corrected punch goes through
    fixed = await api.req("POST", "/api/punches", tenant_a.employee, key="k-1",
                          json={**body, "timestamp": f"{MONDAY}T09:06:00-05:00"})
    assert fixed.status_code == 201, fixed.text


@pytest.mark.parametrize(("stamp", "utc"), [
    (f"{MONDAY}T09:06:00-05:00", f"{MONDAY}T14:06:00Z"),
    (f"{MONDAY}T14:06:00.250Z", f"{MONDAY}T14:06:00.250000Z"),
    (f"{MONDAY}t14:06:00z", f"{MONDAY}T14:06:00Z"),
    (f"{MONDAY} 19:36:00+05:30", f"{MONDAY}T14:06:00Z"),
])
async def test_rfc3339_forms_are_accepted_and_returned_in_utc(
    api: Api, tenant_a: TenantFixture, stamp: str, utc: str
) -> None:
    r = await punch(api, tenant_a, "clock_in", stamp)
    assert r.status_code == 201, r.text
    assert r.json()["timestamp"] == utc


async def test_a_batch_item_not_in_rfc3339_form_is_rejected_alone(api: Api, tenant_a: TenantFixture) -> None:
    item = {"employeeId": str(tenant_a.employee_id), "type": "clock_in", "device": "clock-1"}
    r = await api.req("POST", "/api/punches/batch", tenant_a.manager, json={"punches": [
        {**item, "clientPunchId": "bad", "timestamp": f"{MONDAY}T09:06:00+0000"},
        {**item, "clientPunchId": "good", "timestamp": f"{MONDAY}T09:06:00+00:00"}]})
    assert r.status_code == 200, r.text
    bad, good = r.json()["results"]
    assert bad["status"] == "rejected" and bad["error"].startswith("timestamp:") and "RFC 3339" in bad["error"]
    assert good["status"] == "created", good


@pytest.mark.parametrize("path", ["/api/punches", "/api/exceptions", "/api/audit-logs"])
@pytest.mark.parametrize("bound", ["from", "to"])
async def test_an_instant_query_bound_not_in_rfc3339_form_is_refused(
    api: Api, tenant_a: TenantFixture, path: str, bound: str
) -> None:
    for bad in NOT_RFC3339[:3]:
        r = await api.req("GET", path, tenant_a.admin, params={bound: bad})
        assert r.status_code == 422, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert [e["field"] for e in r.json()["errors"]] == [bound]
    ok = await api.req("GET", path, tenant_a.admin, params={bound: f"{MONDAY} 09:06:00.5-05:00"})
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize("path", ["/api/punches", "/api/exceptions", "/api/audit-logs"])
async def test_from_after_to_is_refused_on_every_instant_range(api: Api, tenant_a: TenantFixture, path: str) -> None:
    r = await api.req("GET", path, tenant_a.admin,
                      params={"from": f"{MONDAY}T00:00:01Z", "to": f"{MONDAY}T00:00:00Z"})
    assert r.status_code == 422, r.text
    assert r.json()["type"].endswith("/validation-failed")
    assert r.json()["errors"] == [{"field": "from", "message": "from must not be after to"}]
    same = f"{MONDAY}T00:00:00Z"
    empty = await api.req("GET", path, tenant_a.admin, params={"from": same, "to": same})
    assert empty.status_code == 200, empty.text  # `to` is exclusive: an empty range, not an inverted one
