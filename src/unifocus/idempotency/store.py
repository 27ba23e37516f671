"""Claim, replay and store idempotency records, inside the write's own transaction.

The claim (`unifocus_claim`, migration 0003; the write path makes it inside
`unifocus_enter`, in the same round trip as the caller lookup) is an INSERT into the record's
primary key. A duplicate in flight blocks on that
key until the original commits (then it sees the stored response and replays it) or rolls
back (then it proceeds as the original). The wait is bounded by lock_timeout; past it the
duplicate is told 409 in progress. A record past its expiry is taken over by the claim, so a
key is usable again after the retention window even before cleanup runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
import orjson

CLAIM = "SELECT unifocus_claim($1, $2, $3, $4, $5, $6, $7)"  # SQL in migration 0003

FETCH = """
SELECT fingerprint, status_code, headers, body FROM idempotency_records
WHERE tenant_id = $1 AND user_id = $2 AND method = $3 AND path = $4 AND key = $5
"""

STORE = """
UPDATE idempotency_records SET status_code = $6, headers = $7, body = $8
WHERE tenant_id = $1 AND user_id = $2 AND method = $3 AND path = $4 AND key = $5
"""

# A domain error's response, stored after the failed business transaction rolled back
# (which also rolled back the claim: an expired record the claim had taken over is back, and
# is taken over again here, as CLAIM does, instead of being replayed).
STORE_NEW = """
INSERT INTO idempotency_records AS r (tenant_id, user_id, method, path, key, fingerprint, expires_at,
                                      status_code, headers, body)
VALUES ($1, $2, $3, $4, $5, $6, now() + make_interval(secs => $7), $8, $9, $10)
ON CONFLICT (tenant_id, user_id, method, path, key) DO UPDATE
    SET fingerprint = EXCLUDED.fingerprint, status_code = EXCLUDED.status_code,
        headers = EXCLUDED.headers, body = EXCLUDED.body,
        created_at = now(), expires_at = EXCLUDED.expires_at
    WHERE r.expires_at <= now()
RETURNING true
"""


@dataclass(frozen=True)
class Scope:
    tenant_id: UUID
    user_id: UUID
    method: str
    path: str
    key: str

    def args(self) -> tuple[Any, ...]:
        return (self.tenant_id, self.user_id, self.method, self.path, self.key)


@dataclass(frozen=True)
class Stored:
    fingerprint: bytes
    status: int | None
    headers: dict[str, str]
    body: bytes


async def claim(conn: asyncpg.Connection, scope: Scope, fp: bytes, ttl_seconds: float) -> bool:
    return bool(await conn.fetchval(CLAIM, *scope.args(), fp, ttl_seconds))


async def fetch(conn: asyncpg.Connection, scope: Scope) -> Stored | None:
    row = await conn.fetchrow(FETCH, *scope.args())
    if row is None:
        return None
    headers = orjson.loads(row["headers"]) if row["headers"] else {}
    return Stored(bytes(row["fingerprint"]), row["status_code"], headers, bytes(row["body"] or b""))


def store_args(scope: Scope, status: int, headers: dict[str, str], body: bytes) -> tuple[Any, ...]:
    return (*scope.args(), status, orjson.dumps(headers).decode(), body)


async def store_new(
    conn: asyncpg.Connection, scope: Scope, fp: bytes, ttl_seconds: float,
    status: int, headers: dict[str, str], body: bytes,
) -> bool:
    return bool(
        await conn.fetchval(STORE_NEW, *scope.args(), fp, ttl_seconds, status,
                            orjson.dumps(headers).decode(), body)
    )
