"""The bare baseline of `make bench`: a minimal ASGI app that does, per POST, only the three
inserts of a punch write (idempotency record, punch, audit entry) in one transaction with
asyncpg, as the app role under row-level security. No framework, no auth, no reads, no
exception engine: what an HTTP server in front of the SQL floor costs.

    BENCH_DB_URL=... BENCH_TENANT=... BENCH_USER=... \
    uvicorn baseline_app:app --app-dir bench --workers 2 --loop uvloop --http httptools --no-access-log

It pays for what the service also pays: uvicorn (2 workers), HTTP parsing, a JSON body
parsed and a JSON answer serialised, a connection pool of 10 per worker, the same SQL.
"""

from __future__ import annotations

import hashlib
import os
import uuid
import zlib
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson

CHAINS = 8

CLAIM_AND_STORE = """
INSERT INTO idempotency_records (tenant_id, user_id, method, path, key, fingerprint, expires_at,
                                 status_code, headers, body)
VALUES ($1, $2, 'POST', '/api/punches', $3, $4, now() + interval '24 hours', 201, $5, $6)
"""
INSERT_PUNCH = """
INSERT INTO punches (tenant_id, id, employee_id, type, ts, source, created_by)
VALUES ($1, $2, $3, $4, $5, 'api', $6) RETURNING received_at
"""
INSERT_AUDIT = """
INSERT INTO audit_log (tenant_id, chain, user_id, request_id, action, entity, entity_id, changes,
                       employee_id, punch_id, seq, created_at, prev_hash, hash)
VALUES ($1, $2, $3, $4, 'created', 'Punch', $5, $6, $7, $5, 0, now(), '\\x'::bytea, '\\x'::bytea)
"""

state: dict[str, Any] = {}


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            state["pool"] = await asyncpg.create_pool(os.environ["BENCH_DB_URL"], min_size=2, max_size=10)
            state["tenant"] = uuid.UUID(os.environ["BENCH_TENANT"])
            state["user"] = uuid.UUID(os.environ["BENCH_USER"])
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await state["pool"].close()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _answer(send: Any, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["method"] != "POST":
        await _answer(send, 200, b'{"status":"ok"}')
        return
    raw = await _body(receive)
    key = next((v.decode() for k, v in scope["headers"] if k == b"idempotency-key"), uuid.uuid4().hex)
    req = orjson.loads(raw)
    tenant, user = state["tenant"], state["user"]
    punch_id, employee = uuid.uuid4(), uuid.UUID(req["employeeId"])
    ts = datetime.fromisoformat(req["timestamp"]).astimezone(UTC)
    punch = {"id": str(punch_id), "employeeId": req["employeeId"], "type": req["type"],
             "timestamp": req["timestamp"], "source": "api", "voided": False, "exceptions": []}
    request_id = uuid.uuid4().hex
    async with state["pool"].acquire() as conn, conn.transaction():
        await conn.execute("SELECT set_config('app.tenant_id', $1, true)", str(tenant))
        body = orjson.dumps(punch)
        await conn.execute(CLAIM_AND_STORE, tenant, user, key, hashlib.sha256(raw).digest(),
                           '{"content-type":"application/json"}', body)
        received = await conn.fetchval(INSERT_PUNCH, tenant, punch_id, employee, req["type"], ts, user)
        punch["receivedAt"] = received.isoformat()
        await conn.execute(INSERT_AUDIT, tenant, zlib.crc32(request_id.encode()) % CHAINS, user, request_id,
                           punch_id, orjson.dumps({"before": None, "after": punch}).decode(), employee)
    await _answer(send, 201, orjson.dumps(punch))
