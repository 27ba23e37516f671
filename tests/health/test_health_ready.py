"""/health is liveness and touches nothing; /ready checks the database (and Redis), answers
within 2 s whatever the dependencies do, recovers without a restart, and like every 503 of the
service says when to ask again (Retry-After), also while draining after SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.conftest import Api, TenantFixture, create_database, drop_database, free_port, make_settings, start_app
from tests.faults.support import running_app
from tests.health.proxy import BlackHole, TcpProxy, postgres_address, url_through
from unifocus import __version__
from unifocus.db.migrate import upgrade
from unifocus.db.urls import database_name
from unifocus.settings import Settings

pytestmark = pytest.mark.health

READY_BOUND_S = 2.0


async def timed_get(client: httpx.AsyncClient, path: str, **kw: Any) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    r = await client.get(path, **kw)
    return r, time.perf_counter() - started


def dead_database_url() -> str:
    return f"postgresql://unifocus_app@127.0.0.1:{free_port()}/nowhere"


def retry_after(r: httpx.Response) -> int:
    """A 503's Retry-After (contract section 1): whole seconds, at least one."""
    seconds = int(r.headers["retry-after"])
    assert seconds >= 1, seconds
    return seconds


def assert_not_ready(r: httpx.Response, elapsed: float, failing: str = "database") -> None:
    assert r.status_code == 503, r.text
    assert elapsed < READY_BOUND_S, f"/ready took {elapsed:.2f}s"
    body = r.json()
    assert body["status"] == "not_ready"
    assert body["checks"][failing].startswith("error:"), body
    retry_after(r)


async def test_health_reports_status_timestamp_uptime_and_version(api: Api) -> None:
    first = (await api.req("GET", "/health")).json()
    r = await api.req("GET", "/health")
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"status", "timestamp", "uptime", "version"}
    assert body["status"] == "ok" and body["version"] == __version__
    assert body["timestamp"].endswith("Z")
    stamp = datetime.fromisoformat(body["timestamp"].replace("Z", "+00:00"))
    assert abs((datetime.now(UTC) - stamp).total_seconds()) < 5
    assert isinstance(body["uptime"], int | float) and body["uptime"] >= first["uptime"] >= 0


async def test_ready_when_the_database_is_up_and_migrated(api: Api) -> None:
    r = await api.req("GET", "/ready")
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "ready", "checks": {"database": "ok", "redis": "disabled", "migrations": "ok"}}
    assert "retry-after" not in r.headers


async def test_head_on_the_probes_answers_as_get_without_a_body(api: Api) -> None:
    """Load balancers probe with HEAD: GET's status and headers, no body, no token."""
    for path in ("/health", "/ready"):
        get, head = await api.req("GET", path), await api.req("HEAD", path)
        assert head.status_code == get.status_code == 200, (path, head.status_code)
        assert head.content == b"", path
        assert head.headers["content-type"] == get.headers["content-type"] == "application/json"
    # The probes' Allow (on a 405) names HEAD too.
    r = await api.req("POST", "/health")
    assert r.status_code == 405 and {m.strip() for m in r.headers["allow"].split(",")} == {"GET", "HEAD"}


async def test_health_touches_no_dependency_and_ready_names_the_dead_database(
    owner_url: str, tmp_path: Path, tenant_a: TenantFixture, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(owner_url, tmp_path, app_database_url=dead_database_url(), db_timeout_seconds=0.5)
    async with running_app(settings) as (_, client):
        r, elapsed = await timed_get(client, "/health")
        assert r.status_code == 200 and r.json()["status"] == "ok"
        assert elapsed < 0.5, f"/health took {elapsed:.2f}s with the database down"
        # On the logger itself when the app's start-up replaced the root's handlers (caplog's).
        health_log = logging.getLogger("unifocus.health")
        if caplog.handler not in logging.getLogger().handlers:
            health_log.addHandler(caplog.handler)
        try:
            r, elapsed = await timed_get(client, "/ready")
            assert_not_ready(r, elapsed)
            await timed_get(client, "/ready")
        finally:
            health_log.removeHandler(caplog.handler)
        assert r.json()["checks"]["migrations"].startswith("error:")
        # The cause, not the generic text of a client's 503 ("The database is unavailable").
        assert r.json()["checks"]["database"].startswith("error: connection refused ("), r.json()
        # ...and one log line naming it, not one per probe.
        failing = [rec.getMessage() for rec in caplog.records if rec.name == "unifocus.health"]
        assert failing == [f"readiness: the database check fails: {r.json()['checks']['database'][7:]}"], failing
        # HEAD says the same to a load balancer: 503 with the same Retry-After, no body.
        head = await client.head("/ready")
        assert head.status_code == 503 and head.content == b"", head.status_code
        assert retry_after(head) == retry_after(r)
        head = await client.head("/health")
        assert head.status_code == 200 and head.content == b""
        # The same outage answered on /api: a client (or a load balancer) is told the same wait.
        api = await client.get("/api/me", headers={"Authorization": f"Bearer {tenant_a.admin}"})
        assert api.status_code == 503, api.text
        assert retry_after(r) == retry_after(api)
        # A client is never told the cause: its 503 keeps the generic text.
        assert api.json()["detail"] == "The database is unavailable; retry later.", api.text


async def test_ready_is_bounded_when_the_database_accepts_but_never_answers(owner_url: str, tmp_path: Path) -> None:
    hole = BlackHole()
    await hole.start()
    try:
        # The default db_timeout_seconds (5 s): the readiness bound must not depend on it.
        settings = make_settings(owner_url, tmp_path,
                                 app_database_url=f"postgresql://unifocus_app@127.0.0.1:{hole.port}/x")
        async with running_app(settings) as (_, client):
            r, elapsed = await timed_get(client, "/ready")
            assert_not_ready(r, elapsed)
            # Named as a timeout with its bound, not "TimeoutError".
            timeout = settings.ready_check_timeout_seconds
            assert r.json()["checks"]["database"] == f"error: timed out after {timeout:.1f} s", r.json()
            r, elapsed = await timed_get(client, "/health")
            assert r.status_code == 200 and elapsed < 0.5
    finally:
        await hole.stop()


async def test_ready_follows_the_database_going_away_and_coming_back_without_a_restart(
    owner_url: str, settings: Settings, tmp_path: Path
) -> None:
    proxy = TcpProxy(postgres_address(owner_url))
    await proxy.start()
    through = url_through(proxy.port, owner_url, settings.app_db_role, settings.app_db_password)
    app_settings = make_settings(owner_url, tmp_path, app_database_url=through, db_timeout_seconds=1.0)
    try:
        async with running_app(app_settings) as (_, client):
            r, _ = await timed_get(client, "/ready")
            assert r.status_code == 200, r.text

            await proxy.stop()
            r, elapsed = await timed_get(client, "/ready")
            assert_not_ready(r, elapsed)
            r, _ = await timed_get(client, "/health")
            assert r.status_code == 200

            await proxy.start()  # same port, same app, no restart
            r, elapsed = await timed_get(client, "/ready")
            assert r.status_code == 200, r.text
            assert r.json()["checks"] == {"database": "ok", "redis": "disabled", "migrations": "ok"}
    finally:
        if proxy.server is not None and proxy.server.is_serving():
            await proxy.stop()


async def test_ready_is_bounded_when_the_database_freezes_under_pooled_connections(
    owner_url: str, settings: Settings, tmp_path: Path
) -> None:
    """The database stops answering on connections the pool already holds (a hung server, a
    partition): each probe that times out on such a connection must not then wait on it again
    to hand it back, so /ready answers within 2 s the first time, and every time after."""
    proxy = TcpProxy(postgres_address(owner_url))
    await proxy.start()
    through = url_through(proxy.port, owner_url, settings.app_db_role, settings.app_db_password)
    # The default db_timeout_seconds (5 s): the readiness bound must not depend on it.
    app, client, lifespan = await start_app(make_settings(owner_url, tmp_path, app_database_url=through))
    try:
        # Several connections open and idle in the pool: each is a stale one a probe can take.
        rs = await asyncio.gather(*(client.get("/ready") for _ in range(3)))
        assert [r.status_code for r in rs] == [200] * 3, [r.text for r in rs]
        pooled = app.state.db.probe_pool.get_idle_size()  # type: ignore[attr-defined]
        assert pooled >= 2, pooled

        proxy.freeze()
        for _ in range(pooled + 2):  # every stale connection, then new ones that never connect
            r, elapsed = await timed_get(client, "/ready")
            assert_not_ready(r, elapsed)
        r, elapsed = await timed_get(client, "/health")
        assert r.status_code == 200 and elapsed < 0.5
    finally:
        await proxy.stop()  # before the app closes its pool: nothing is left waiting on it
        await client.aclose()
        await lifespan.__aexit__(None, None, None)  # type: ignore[attr-defined]


async def test_ready_stays_ready_and_quick_while_requests_hold_every_pooled_connection(
    owner_url: str, tmp_path: Path
) -> None:
    """A full request pool is load, not an outage: /ready has connections of its own, so it
    neither waits behind requests (the gate's < 500 ms) nor declares every replica unready at
    once, which would take the service out of its load balancer as the load peaks."""
    async with running_app(make_settings(owner_url, tmp_path, db_pool_max=2)) as (app, client):
        pool = app.state.db.pool
        held = [await pool.acquire() for _ in range(2)]
        try:
            for _ in range(3):
                r, elapsed = await timed_get(client, "/ready")
                assert r.status_code == 200 and elapsed < 0.5, (r.text, elapsed)
        finally:
            for conn in held:
                await pool.release(conn)


async def test_a_request_that_finds_every_pooled_connection_held_answers_503_within_the_bound(
    owner_url: str, tmp_path: Path, tenant_a: TenantFixture
) -> None:
    """A request waits for a pooled connection at most `UNIFOCUS_DB_TIMEOUT_SECONDS`, then
    answers 503 with Retry-After (never a hang behind, say, long exports holding the pool),
    and is served as soon as a connection is free again."""
    timeout = 1.0
    settings = make_settings(owner_url, tmp_path, db_pool_max=1, db_timeout_seconds=timeout)
    async with running_app(settings) as (app, client):
        api = Api(client)
        pool = app.state.db.pool
        held = await pool.acquire()
        try:
            started = time.perf_counter()
            r = await asyncio.wait_for(api.req("GET", "/api/employees", tenant_a.manager), timeout + 5)
            elapsed = time.perf_counter() - started
            assert r.status_code == 503, r.text
            assert r.headers["content-type"].startswith("application/problem+json")
            retry_after(r)
            assert timeout * 0.9 <= elapsed < timeout + 1.5, elapsed
        finally:
            await pool.release(held)
        r = await api.req("GET", "/api/employees", tenant_a.manager)
        assert r.status_code == 200, r.text


async def test_ready_names_a_database_behind_on_migrations(server_url: str, tmp_path: Path) -> None:
    url = create_database(server_url)
    try:
        upgrade(url, Settings(database_url=url))
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("UPDATE alembic_version SET version_num = '0000'")
        async with running_app(make_settings(url, tmp_path)) as (_, client):
            r, elapsed = await timed_get(client, "/ready")
            assert_not_ready(r, elapsed, failing="migrations")
            assert r.json()["checks"]["database"] == "ok"
    finally:
        drop_database(server_url, url)


async def test_ready_names_a_read_only_database_even_before_a_schema_version(
    server_url: str, tmp_path: Path
) -> None:
    """An empty `alembic_version` (a schema being created) still has its server asked whether
    it takes writes: a read-only one is named as such, not `ok`."""
    url = create_database(server_url)
    settings = make_settings(url, tmp_path)
    scope = f'ROLE {settings.app_db_role} IN DATABASE "{database_name(url)}"'
    try:
        upgrade(url, Settings(database_url=url))
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DELETE FROM alembic_version")
            conn.execute(f"ALTER {scope} SET default_transaction_read_only = on")
        async with running_app(settings) as (_, client):
            r, elapsed = await timed_get(client, "/ready")
            assert_not_ready(r, elapsed, failing="database")
            assert r.json()["checks"]["database"].startswith("error: read-only"), r.json()
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"ALTER {scope} RESET default_transaction_read_only")
        drop_database(server_url, url)


@pytest.mark.parametrize(
    "redis_of, expected",
    [
        (lambda real: real, lambda v: v == "ok"),
        (lambda real: f"redis://127.0.0.1:{free_port()}/0", lambda v: v.startswith("error:")),
    ],
    ids=["redis up", "redis down"],
)
async def test_ready_reports_redis_by_name_without_depending_on_it(
    owner_url: str, redis_url: str, tmp_path: Path, redis_of: Callable[[str], str], expected: Callable[[str], bool]
) -> None:
    """Redis only feeds rate limits (which fall back to in-process buckets): it is reported,
    bounded, and never makes the service unready."""
    settings = make_settings(owner_url, tmp_path, redis_url=redis_of(redis_url))
    async with running_app(settings) as (_, client):
        r, elapsed = await timed_get(client, "/ready")
        assert elapsed < READY_BOUND_S
        assert r.status_code == 200, r.text
        checks = r.json()["checks"]
        assert expected(checks["redis"]), checks
        assert checks["database"] == "ok" and checks["migrations"] == "ok"


async def test_health_and_ready_need_no_token_and_are_never_rate_limited(
    owner_url: str, tmp_path: Path, tenant_a: TenantFixture
) -> None:
    settings = make_settings(owner_url, tmp_path, rate_limit_enabled=True, rate_limit_user_capacity=1,
                             rate_limit_user_refill_per_second=0.01, rate_limit_tenant_capacity=1,
                             rate_limit_tenant_refill_per_second=0.01)
    async with running_app(settings) as (_, client):
        for headers in ({}, {"Authorization": "Bearer garbage"}, {"Authorization": f"Bearer {tenant_a.admin}"}):
            for _ in range(5):
                for path in ("/health", "/ready"):
                    r = await client.get(path, headers=headers)
                    assert r.status_code == 200, (path, headers, r.text)
        # the same buckets do limit /api: the limiter is on in this app
        statuses = [(await client.get("/api/me", headers={"Authorization": f"Bearer {tenant_a.admin}"})).status_code
                    for _ in range(3)]
        assert 429 in statuses, statuses


async def test_ready_says_shutting_down_with_retry_after_once_sigterm_arrives(owner_url: str, tmp_path: Path) -> None:
    """A real SIGTERM to this process. The app drains only under a server that handles SIGTERM
    itself (uvicorn), so a stand-in handler plays uvicorn's part: it is called when the drain
    ends. tests/faults/test_shutdown.py does the same against a `unifocus serve` process."""
    handed_over = asyncio.Event()
    server_handler = signal.signal(signal.SIGTERM, lambda *_: handed_over.set())
    try:
        async with running_app(make_settings(owner_url, tmp_path, shutdown_drain_seconds=0.5)) as (_, client):
            assert (await client.get("/ready")).status_code == 200
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(100):  # the loop handles the signal on its next turn
                r, elapsed = await timed_get(client, "/ready")
                if r.status_code != 200:
                    break
                await asyncio.sleep(0.01)
            assert r.status_code == 503, r.text
            assert r.json()["status"] == "shutting_down"
            assert elapsed < READY_BOUND_S
            retry_after(r)
            await asyncio.wait_for(handed_over.wait(), 5)  # the drain ended, the server takes over
    finally:
        asyncio.get_running_loop().remove_signal_handler(signal.SIGTERM)
        signal.signal(signal.SIGTERM, server_handler)
