"""Concurrent duplicates: whatever the interleaving, the write happens once (contract
section 4), through the app, through a real two-worker server, and at the SQL level."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import orjson
import psycopg
import pytest

from tests.conftest import Api, TenantFixture
from tests.idempotency.conftest import audit_entries, employee_body, employees_named, new_key, problem_type
from tests.serving import run_server
from unifocus.idempotency import store
from unifocus.idempotency.keys import fingerprint

pytestmark = pytest.mark.idempotency

STORM = 50


def check_storm(responses: list[httpx.Response], status: int = 201) -> httpx.Response:
    """Exactly one original; every other answer is it byte for byte (replayed) or 409 in
    progress with Retry-After. Returns the original."""
    originals = [r for r in responses if "idempotent-replayed" not in r.headers and r.status_code == status]
    assert len(originals) == 1, [(r.status_code, r.text) for r in responses]
    original = originals[0]
    for r in responses:
        if r is original:
            continue
        if r.status_code == 409 and "idempotent-replayed" not in r.headers:
            assert problem_type(r).endswith("idempotency-request-in-progress"), r.text
            assert int(r.headers["retry-after"]) >= 1
            continue
        assert r.status_code == status, (r.status_code, r.text)
        assert r.headers["idempotent-replayed"] == "true"
        assert r.content == original.content
        assert r.headers.get("location") == original.headers.get("location")
    return original


async def test_storm_through_the_app(api: Api, tenant_a: TenantFixture,
                                     owner_sql: psycopg.Connection) -> None:
    key, body = new_key(), employee_body()
    responses = await asyncio.gather(*(
        api.req("POST", "/api/employees", tenant_a.manager, key=key, json=body) for _ in range(STORM)))
    original = check_storm(list(responses))
    assert employees_named(owner_sql, tenant_a.id, body["firstName"]) == 1
    assert audit_entries(owner_sql, tenant_a.id) == 1
    after = await api.req("POST", "/api/employees", tenant_a.manager, key=key, json=body)
    assert after.status_code == 201 and after.headers["idempotent-replayed"] == "true"
    assert after.content == original.content


async def test_storm_of_a_domain_answer(api: Api, tenant_a: TenantFixture) -> None:
    key, path = new_key(), f"/api/users/{uuid.uuid4()}"
    responses = await asyncio.gather(*(
        api.req("PATCH", path, tenant_a.admin, key=key, json={"role": "manager"}) for _ in range(STORM)))
    assert all(r.status_code in (404, 409) for r in responses), {r.status_code for r in responses}
    bodies = {r.content for r in responses if r.status_code == 404}
    assert len(bodies) == 1
    after = await api.req("PATCH", path, tenant_a.admin, key=key, json={"role": "manager"})
    assert after.status_code == 404 and after.headers["idempotent-replayed"] == "true"
    assert after.content in bodies


async def test_two_keys_racing_write_twice(api: Api, tenant_a: TenantFixture,
                                           owner_sql: psycopg.Connection) -> None:
    keys, body = (new_key(), new_key()), employee_body()
    responses = await asyncio.gather(*(
        api.req("POST", "/api/employees", tenant_a.manager, key=keys[i % 2], json=body)
        for i in range(STORM)))
    originals = [check_storm([r for i, r in enumerate(responses) if i % 2 == k]) for k in (0, 1)]
    assert originals[0].json()["id"] != originals[1].json()["id"]
    assert employees_named(owner_sql, tenant_a.id, body["firstName"]) == 2
    assert audit_entries(owner_sql, tenant_a.id) == 2


# --- a real server with two worker processes -------------------------------------------------

@pytest.fixture(scope="module")
def server(owner_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with run_server(owner_url, tmp_path_factory.mktemp("serve"), {"UNIFOCUS_RATE_LIMIT_ENABLED": "false"},
                    workers=2) as live:
        yield live.url


@pytest.mark.slow
async def test_storm_through_two_workers(server: str, tenant_a: TenantFixture,
                                         owner_sql: psycopg.Connection) -> None:
    limits = httpx.Limits(max_connections=STORM, max_keepalive_connections=STORM)
    async with httpx.AsyncClient(base_url=server, limits=limits, timeout=30) as client:
        key, body = new_key(), employee_body()
        headers = {"Authorization": f"Bearer {tenant_a.manager}", "Idempotency-Key": key}
        responses = await asyncio.gather(*(
            client.post("/api/employees", json=body, headers=headers) for _ in range(STORM)))
        original = check_storm(list(responses))
        assert employees_named(owner_sql, tenant_a.id, body["firstName"]) == 1
        assert audit_entries(owner_sql, tenant_a.id) == 1
        after = await client.post("/api/employees", json=body, headers=headers)
        assert after.headers["idempotent-replayed"] == "true" and after.content == original.content

        keys, body2 = (new_key(), new_key()), employee_body()
        responses = await asyncio.gather(*(
            client.post("/api/employees", json=body2, headers={**headers, "Idempotency-Key": keys[i % 2]})
            for i in range(STORM)))
        for k in (0, 1):
            check_storm([r for i, r in enumerate(responses) if i % 2 == k])
        assert employees_named(owner_sql, tenant_a.id, body2["firstName"]) == 2
        assert audit_entries(owner_sql, tenant_a.id) == 3


# --- the claim SQL in two transactions -------------------------------------------------------

async def _tx(runtime_url: str, tenant: uuid.UUID) -> tuple[asyncpg.Connection, Any]:
    conn = await asyncpg.connect(runtime_url)
    tx = conn.transaction()
    await tx.start()
    await conn.execute("SELECT set_config('app.tenant_id', $1, true)", str(tenant))
    return conn, tx


async def _waiting_on_lock(conn: asyncpg.Connection, pid: int) -> bool:
    row = await conn.fetchrow("SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1", pid)
    return row is not None and row["wait_event_type"] == "Lock"


@pytest.mark.parametrize("first_commits", [True, False], ids=["first-commits", "first-rolls-back"])
async def test_claim_blocks_until_the_first_transaction_ends(
    runtime_url: str, owner_url: str, tenant_a: TenantFixture, first_commits: bool
) -> None:
    scope = store.Scope(tenant_a.id, tenant_a.manager_id, "POST", "/api/employees", new_key())
    fp = fingerprint("POST", "/api/employees", "", orjson.dumps(employee_body()))
    (c1, t1), (c2, t2) = await _tx(runtime_url, tenant_a.id), await _tx(runtime_url, tenant_a.id)
    watcher = await asyncpg.connect(owner_url)
    try:
        assert await store.claim(c1, scope, fp, 3600) is True
        second = asyncio.create_task(store.claim(c2, scope, fp, 3600))
        deadline = time.monotonic() + 5
        while not await _waiting_on_lock(watcher, c2.get_server_pid()):
            assert time.monotonic() < deadline, "the second claim never waited on the first"
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)
        assert not second.done()
        if first_commits:
            await c1.execute(store.STORE, *store.store_args(scope, 201, {"location": "/x"}, b'{"ok":1}'))
            await t1.commit()
            assert await asyncio.wait_for(second, 5) is False
            stored = await store.fetch(c2, scope)
            assert stored is not None and stored.status == 201 and stored.body == b'{"ok":1}'
            assert stored.fingerprint == fp and stored.headers == {"location": "/x"}
        else:
            await t1.rollback()
            assert await asyncio.wait_for(second, 5) is True
            stored = await store.fetch(c2, scope)
            assert stored is not None and stored.status is None  # the second one owns it now
        await t2.commit()
    finally:
        for c in (c1, c2, watcher):
            await c.close()


async def test_claim_takes_over_an_expired_record_but_not_a_live_one(
    runtime_url: str, tenant_a: TenantFixture
) -> None:
    scope = store.Scope(tenant_a.id, tenant_a.manager_id, "POST", "/api/employees", new_key())
    conn, tx = await _tx(runtime_url, tenant_a.id)
    try:
        assert await store.claim(conn, scope, b"one", 3600) is True
        await conn.execute(store.STORE, *store.store_args(scope, 201, {}, b"x"))
        assert await store.claim(conn, scope, b"two", 3600) is False
        await conn.execute("UPDATE idempotency_records SET expires_at = now() - interval '1 s' "
                           "WHERE tenant_id = $1 AND key = $2", scope.tenant_id, scope.key)
        assert await store.claim(conn, scope, b"two", 3600) is True
        stored = await store.fetch(conn, scope)
        assert stored is not None and stored.fingerprint == b"two" and stored.status is None
    finally:
        await tx.rollback()
        await conn.close()


async def test_keyed_tenant_settings_saved_at_once_all_succeed(
    api: Api, tenant_a: TenantFixture, owner_sql: psycopg.Connection
) -> None:
    """Each keyed write's claim references the tenant (KEY SHARE on its row); PATCH /api/tenant
    then locks that row. Admins saving the settings at the same moment each get 200, not a
    deadlock's 503, and the audit trail holds one entry per change."""
    before = audit_entries(owner_sql, tenant_a.id)
    for round_ in range(5):
        answers = await asyncio.gather(*(
            api.req("PATCH", "/api/tenant", tenant_a.admin, key=new_key(),
                    json={"policy": {"lateGraceMinutes": 10 + 4 * round_ + n}})
            for n in range(4)))
        assert [r.status_code for r in answers] == [200] * 4, [r.text for r in answers if r.status_code != 200]
    assert audit_entries(owner_sql, tenant_a.id) == before + 20
