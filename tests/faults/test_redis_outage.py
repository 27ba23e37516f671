"""Redis outage: the API keeps serving and /ready names Redis as failing, yet stays 200
(Redis only feeds the rate limits, which fall back to in-process buckets)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests.conftest import make_settings, make_tenant
from tests.faults.support import own_redis, running_app
from unifocus.settings import Settings

pytestmark = [pytest.mark.slow, pytest.mark.health]


async def test_redis_down_keeps_serving_and_ready_names_it(
    owner_url: str, settings: Settings, tmp_path: Path
) -> None:
    t = make_tenant(owner_url, settings)
    with own_redis() as (url, redis_proc):
        s = make_settings(owner_url, tmp_path, redis_url=url, rate_limit_enabled=True)
        async with running_app(s) as (_app, client):
            r = await client.get("/ready")
            assert r.status_code == 200, r.text
            assert r.json()["checks"]["redis"] == "ok"

            redis_proc.kill()
            redis_proc.wait(5)

            started = time.monotonic()
            r = await client.get("/ready")
            assert time.monotonic() - started < 2.5, "every readiness check is bounded"
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["status"] == "ready"
            assert body["checks"]["redis"].startswith("error: "), body
            assert body["checks"]["database"] == "ok"

            headers = {"Authorization": f"Bearer {t.admin}"}
            assert (await client.get("/api/me", headers=headers)).status_code == 200
            r = await client.post("/api/employees", headers={**headers, "Idempotency-Key": f"redis-down-{t.id}"},
                                  json={"firstName": "Red", "lastName": "Is-Down"})
            assert r.status_code == 201, r.text
            assert (await client.get("/health")).status_code == 200


async def test_a_redis_that_refuses_writes_is_named_by_ready_though_it_answers_ping(
    owner_url: str, settings: Settings, tmp_path: Path
) -> None:
    """Out of memory (maxmemory with the default noeviction policy), Redis still answers PING
    but refuses every bucket update: /ready names it (still 200: the limiter falls back) and
    names it ok again once it takes writes."""
    t = make_tenant(owner_url, settings)
    with own_redis() as (url, _proc):
        admin = aioredis.Redis.from_url(url)
        s = make_settings(owner_url, tmp_path, redis_url=url, rate_limit_enabled=True)
        try:
            async with running_app(s) as (_app, client):
                assert (await client.get("/ready")).json()["checks"]["redis"] == "ok"
                await admin.config_set("maxmemory", "1")
                assert await admin.ping()
                r = await client.get("/ready")
                assert r.status_code == 200, r.text
                assert r.json()["checks"]["redis"].startswith("error: "), r.json()
                assert "maxmemory" in r.json()["checks"]["redis"], r.json()
                me = await client.get("/api/me", headers={"Authorization": f"Bearer {t.admin}"})
                assert me.status_code == 200, me.text  # the limiter fell back to in-process buckets
                await admin.config_set("maxmemory", "0")
                assert (await client.get("/ready")).json()["checks"]["redis"] == "ok"
        finally:
            await admin.aclose()
