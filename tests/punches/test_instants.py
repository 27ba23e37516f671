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
