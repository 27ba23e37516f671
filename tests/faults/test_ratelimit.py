"""Rate limits: 429 with its headers, buckets shared by replicas through Redis, the in-process
fallback while Redis is down, and /health, /ready, /metrics never limited."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from prometheus_client import REGISTRY

from tests.conftest import TenantFixture, employee_insert_fails, make_settings, make_tenant
from tests.faults.support import own_redis, running_app
from unifocus.settings import Settings

PROBLEM = "application/problem+json"


def limited_settings(owner_url: str, data_dir: Path, redis_url: str, user_cap: int = 3) -> Settings:
    return make_settings(
        owner_url, data_dir, redis_url=redis_url, rate_limit_enabled=True,
        rate_limit_user_capacity=user_cap, rate_limit_user_refill_per_second=0.001,
        rate_limit_tenant_capacity=1000, rate_limit_tenant_refill_per_second=0.001,
    )


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def fallbacks() -> float:
    return REGISTRY.get_sample_value("unifocus_rate_limit_backend_fallbacks_total") or 0.0


async def test_exceeding_the_bucket_answers_429_with_headers(
    owner_url: str, settings: Settings, redis_url: str, tmp_path: Path
) -> None:
    t: TenantFixture = make_tenant(owner_url, settings)  # a new tenant: buckets of its own
    async with running_app(limited_settings(owner_url, tmp_path, redis_url, user_cap=3)) as (_app, client):
        remaining = []
        for _ in range(3):
            r = await client.get("/api/me", headers=auth(t.admin))
            assert r.status_code == 200, r.text
            assert r.headers["ratelimit-limit"] == "3"
            remaining.append(int(r.headers["ratelimit-remaining"]))
            assert int(r.headers["ratelimit-reset"]) >= 0
        assert remaining == [2, 1, 0]
        r = await client.get("/api/me", headers=auth(t.admin))
        assert r.status_code == 429, r.text
        assert r.headers["content-type"].startswith(PROBLEM)
        assert r.json()["status"] == 429 and r.json()["type"].endswith("rate-limited"), r.json()
        assert int(r.headers["retry-after"]) >= 1
        assert r.headers["ratelimit-limit"] == "3"
        assert r.headers["ratelimit-remaining"] == "0"
        assert int(r.headers["ratelimit-reset"]) > 0
        # Another user of the same tenant has a bucket of its own.
        assert (await client.get("/api/me", headers=auth(t.manager))).status_code == 200


async def test_two_instances_share_the_bucket_through_redis(
    owner_url: str, settings: Settings, redis_url: str, tmp_path: Path
) -> None:
    t = make_tenant(owner_url, settings)
    s = limited_settings(owner_url, tmp_path, redis_url, user_cap=4)
    async with running_app(s) as (_a1, one), running_app(s) as (_a2, two):
        before = fallbacks()
        statuses = [
            (await one.get("/api/me", headers=auth(t.admin))).status_code,
            (await two.get("/api/me", headers=auth(t.admin))).status_code,
            (await one.get("/api/me", headers=auth(t.admin))).status_code,
            (await two.get("/api/me", headers=auth(t.admin))).status_code,
        ]
        assert statuses == [200, 200, 200, 200]
        # Each instance alone took only 2 of 4 tokens: only a shared bucket is empty now.
        assert (await one.get("/api/me", headers=auth(t.admin))).status_code == 429
        assert (await two.get("/api/me", headers=auth(t.admin))).status_code == 429
        assert fallbacks() == before, "Redis was up: no decision may come from the fallback"


@pytest.mark.health
async def test_health_ready_metrics_are_never_limited(
    owner_url: str, settings: Settings, redis_url: str, tmp_path: Path
) -> None:
    t = make_tenant(owner_url, settings)
    async with running_app(limited_settings(owner_url, tmp_path, redis_url, user_cap=1)) as (_app, client):
        assert (await client.get("/api/me", headers=auth(t.admin))).status_code == 200
        assert (await client.get("/api/me", headers=auth(t.admin))).status_code == 429
        for _ in range(5):  # the bucket is empty; the same token on these paths is never refused
            for path, expected in (("/health", 200), ("/ready", 200), ("/metrics", 200)):
                r = await client.get(path, headers=auth(t.admin))
                assert r.status_code == expected, (path, r.status_code, r.text)
                assert "ratelimit-limit" not in r.headers


@pytest.mark.slow
async def test_redis_stopped_mid_test_falls_back_in_process(
    owner_url: str, settings: Settings, tmp_path: Path
) -> None:
    t = make_tenant(owner_url, settings)
    with own_redis() as (url, redis_proc):
        s = limited_settings(owner_url, tmp_path, url, user_cap=50)
        async with running_app(s) as (_app, client):
            for _ in range(3):
                assert (await client.get("/api/me", headers=auth(t.admin))).status_code == 200
            before = fallbacks()
            redis_proc.kill()
            redis_proc.wait(5)
            for _ in range(5):
                r = await client.get("/api/me", headers=auth(t.admin))
                assert r.status_code == 200, r.text
                assert "ratelimit-remaining" in r.headers
            assert fallbacks() > before
            # The in-process buckets still limit: 50 per user in all, 3 went to Redis.
            statuses = [(await client.get("/api/me", headers=auth(t.admin))).status_code for _ in range(50)]
            assert 429 in statuses


async def test_a_500_carries_the_rate_limit_headers_too(
    owner_url: str, settings: Settings, redis_url: str, tmp_path: Path, owner_sql: psycopg.Connection
) -> None:
    """The OpenAPI text promises RateLimit-* on every /api answer: an unexpected failure's
    500, answered outside the limiter's middleware, carries them as well, with the request id."""
    t = make_tenant(owner_url, settings)
    s = limited_settings(owner_url, tmp_path, redis_url, user_cap=10)
    async with running_app(s, raise_app_exceptions=False) as (_app, client):
        with employee_insert_fails(owner_sql, "Explode429"):
            r = await client.post("/api/employees", headers=auth(t.manager),
                                  json={"firstName": "Explode429", "lastName": "X"})
    assert r.status_code == 500, r.text
    assert r.headers["ratelimit-limit"] == "10" and r.headers["ratelimit-remaining"] == "9"
    assert int(r.headers["ratelimit-reset"]) >= 0 and len(r.headers["x-request-id"]) == 32
