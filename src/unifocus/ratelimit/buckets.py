"""Token buckets per (tenant, user) and per tenant.

With REDIS_URL the buckets live in Redis and are shared by every replica: one Lua script
refills and takes from both buckets atomically, on the Redis server's clock. Without Redis,
or while Redis fails, each process keeps its own buckets (the fallback is counted and
logged; a request is never failed because the limiter is down).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

from unifocus.observability import hooks
from unifocus.settings import Settings

log = logging.getLogger("unifocus.ratelimit")

# KEYS: user bucket, tenant bucket. ARGV: user cap, user rate, tenant cap, tenant rate.
# Returns {allowed, user tokens, tenant tokens, failing scope}.
TAKE_BOTH = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local function level(key, cap, rate)
  local d = redis.call('HMGET', key, 'tokens', 'ts')
  local tokens, ts = tonumber(d[1]), tonumber(d[2])
  if tokens == nil then return cap end
  return math.min(cap, tokens + (now - ts) * rate)
end
local ucap, urate = tonumber(ARGV[1]), tonumber(ARGV[2])
local tcap, trate = tonumber(ARGV[3]), tonumber(ARGV[4])
local u, tn = level(KEYS[1], ucap, urate), level(KEYS[2], tcap, trate)
local allowed, scope = 1, ''
if u < 1 then allowed, scope = 0, 'user' elseif tn < 1 then allowed, scope = 0, 'tenant' end
if allowed == 1 then u, tn = u - 1, tn - 1 end
redis.call('HSET', KEYS[1], 'tokens', u, 'ts', now)
redis.call('HSET', KEYS[2], 'tokens', tn, 'ts', now)
redis.call('EXPIRE', KEYS[1], math.ceil(ucap / urate) + 1)
redis.call('EXPIRE', KEYS[2], math.ceil(tcap / trate) + 1)
return {allowed, tostring(u), tostring(tn), scope}
"""

BREAKER_SECONDS = 5.0


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int
    retry_after: int
    scope: str


class LocalBuckets:
    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}

    def level(self, key: str, cap: float, rate: float, now: float) -> float:
        tokens, ts = self._buckets.get(key, (cap, now))
        return min(cap, tokens + (now - ts) * rate)

    def set(self, key: str, tokens: float, now: float) -> None:
        if len(self._buckets) > 100_000:  # bounded memory: forget idle buckets
            self._buckets.clear()
        self._buckets[key] = (tokens, now)


class RateLimiter:
    def __init__(self, settings: Settings, redis: Any | None, prefix: str = "unifocus:rl") -> None:
        self.s = settings
        self.redis = redis
        self.prefix = prefix
        self.local = LocalBuckets()
        self._script: Any = redis.register_script(TAKE_BOTH) if redis is not None else None
        self._redis_down_until = 0.0

    async def take(self, tenant: str, user: str) -> Decision:
        ukey, tkey = f"{self.prefix}:u:{tenant}:{user}", f"{self.prefix}:t:{tenant}"
        if self._script is not None and time.monotonic() >= self._redis_down_until:
            try:
                allowed, u, t, scope = await self._script(
                    keys=[ukey, tkey],
                    args=[self.s.rate_limit_user_capacity, self.s.rate_limit_user_refill_per_second,
                          self.s.rate_limit_tenant_capacity, self.s.rate_limit_tenant_refill_per_second],
                )
                return self._decide(bool(int(allowed)), float(u), float(t), _text(scope))
            except Exception as exc:  # any Redis failure: fall back, never fail the request
                self._redis_down_until = time.monotonic() + BREAKER_SECONDS
                hooks.rate_limit_fallback()
                log.warning("rate limiter: Redis failed (%s); using in-process buckets for %ss",
                            type(exc).__name__, BREAKER_SECONDS)
        return self._take_local(ukey, tkey)

    def _take_local(self, ukey: str, tkey: str) -> Decision:
        now = time.monotonic()
        s = self.s
        u = self.local.level(ukey, s.rate_limit_user_capacity, s.rate_limit_user_refill_per_second, now)
        t = self.local.level(tkey, s.rate_limit_tenant_capacity, s.rate_limit_tenant_refill_per_second, now)
        scope = "user" if u < 1 else "tenant" if t < 1 else ""
        if not scope:
            u, t = u - 1, t - 1
        self.local.set(ukey, u, now)
        self.local.set(tkey, t, now)
        return self._decide(not scope, u, t, scope)

    def _decide(self, allowed: bool, u: float, t: float, scope: str) -> Decision:
        s = self.s
        user_full = (s.rate_limit_user_capacity - u) / s.rate_limit_user_refill_per_second
        if scope == "tenant":
            wait = (1 - t) / s.rate_limit_tenant_refill_per_second
        else:
            wait = (1 - u) / s.rate_limit_user_refill_per_second
        return Decision(
            allowed=allowed,
            limit=s.rate_limit_user_capacity,
            remaining=max(0, math.floor(min(u, t))),
            reset_seconds=max(0, math.ceil(user_full)),
            retry_after=max(1, math.ceil(wait)) if not allowed else 0,
            scope=scope,
        )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
