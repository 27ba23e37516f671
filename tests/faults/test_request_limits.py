"""Request limits: body size (declared and streamed), JSON depth, invalid UTF-8 and NUL
characters answer 4xx problems, never 500, and nothing is written."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest

from tests.conftest import TenantFixture, make_settings, make_tenant, tenant_counts
from tests.faults.support import running_app
from unifocus.auth.tokens import MAX_TOKEN_CHARS
from unifocus.limits.middleware import MAX_HEADER_BYTES
from unifocus.settings import Settings

MAX_BODY = 4096
PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
async def limited(owner_url: str, settings: Settings, tmp_path_factory: pytest.TempPathFactory
                  ) -> AsyncIterator[tuple[httpx.AsyncClient, TenantFixture]]:
    t = make_tenant(owner_url, settings)
    s = make_settings(owner_url, tmp_path_factory.mktemp("limits"), max_body_bytes=MAX_BODY, max_json_depth=8)
    async with running_app(s, raise_app_exceptions=False) as (_app, client):
        yield client, t


def counts(owner_sql: psycopg.Connection, tenant: uuid.UUID) -> tuple[int, ...]:
    return tenant_counts(owner_sql, tenant, "punches", "employees", "audit_log", "idempotency_records")


def headers(t: TenantFixture, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {t.admin}", "Idempotency-Key": f"limits-{uuid.uuid4().hex}",
            "Content-Type": "application/json", **extra}


def punch_json(t: TenantFixture, device: str = "d") -> str:
    ts = (datetime.now(UTC) - timedelta(minutes=3)).isoformat()
    return f'{{"employeeId": "{t.employee_id}", "type": "clock_in", "timestamp": "{ts}", "device": "{device}"}}'


def assert_problem(r: httpx.Response, status: int) -> None:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["status"] == status


async def test_oversized_bodies_413_declared_and_streamed(
    limited: tuple[httpx.AsyncClient, TenantFixture], owner_sql: psycopg.Connection
) -> None:
    client, t = limited
    before = counts(owner_sql, t.id)
    # Valid JSON padded past the limit, with a Content-Length.
    big = punch_json(t, device="x" * (MAX_BODY + 10))
    assert_problem(await client.post("/api/punches", headers=headers(t), content=big), 413)

    # Streamed (chunked, no Content-Length): the limit holds while reading.
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"employeeId": "' + str(t.employee_id).encode() + b'", "device": "'
        for _ in range(20):
            yield b"y" * 1024
        yield b'"}'

    r = await client.post("/api/punches", headers=headers(t), content=chunks())
    assert r.request.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in r.request.headers
    assert_problem(r, 413)
    # Just under the limit passes the middleware (then is a normal request).
    ok = punch_json(t, device="z" * 50)
    assert (await client.post("/api/punches", headers=headers(t), content=ok)).status_code == 201
    after = counts(owner_sql, t.id)
    assert after[0] == before[0] + 1, "only the small punch was stored"


async def test_oversized_headers_are_431_before_any_authentication(
    limited: tuple[httpx.AsyncClient, TenantFixture], owner_sql: psycopg.Connection
) -> None:
    """Megabytes of headers (a bearer token, or any other header) are refused before the
    rate limiter and the auth dependency parse them, for anyone, and write nothing."""
    client, t = limited
    before = counts(owner_sql, t.id)
    huge = "e30." * (MAX_HEADER_BYTES // 4 + 1)
    r = await client.get("/api/me", headers={"Authorization": f"Bearer {huge}"})
    assert_problem(r, 431)
    assert r.json()["type"].endswith("/request-header-fields-too-large")
    assert str(MAX_HEADER_BYTES) in r.json()["detail"]
    assert_problem(await client.post("/api/punches", headers=headers(t, **{"X-Padding": huge}),
                                     content=punch_json(t)), 431)
    # A token over its own cap but within the header bound is the verifier's 401.
    r = await client.get("/api/me", headers={"Authorization": f"Bearer {'e30.' * (MAX_TOKEN_CHARS // 4 + 1)}"})
    assert_problem(r, 401)
    assert counts(owner_sql, t.id) == before


@pytest.mark.parametrize(
    ("name", "body", "status"),
    [
        ("deep-array", b'{"employeeId": ' + b"[" * 50 + b"]" * 50 + b"}", 400),
        ("deep-object", b'{"a":' * 40 + b"1" + b"}" * 40, 400),
        ("invalid-utf8", b'{"firstName": "\xff\xfe", "lastName": "X"}', 400),
        ("overlong-utf8", b'{"firstName": "\xc0\xaf", "lastName": "X"}', 400),
        ("raw-nul", b'{"firstName": "a\x00b", "lastName": "X"}', 422),
        ("escaped-nul", b'{"firstName": "a\\u0000b", "lastName": "X"}', 422),
    ],
)
async def test_malformed_bodies_are_client_errors_and_write_nothing(
    limited: tuple[httpx.AsyncClient, TenantFixture], owner_sql: psycopg.Connection,
    name: str, body: bytes, status: int,
) -> None:
    client, t = limited
    before = counts(owner_sql, t.id)
    for path in ("/api/employees", "/api/punches"):
        key = f"limits-{name}-{uuid.uuid4().hex}"
        r = await client.post(path, headers=headers(t, **{"Idempotency-Key": key}), content=body)
        assert_problem(r, status)
        # Refused before the handler: the key is not kept, a corrected retry may reuse it.
        fixed = b'{"firstName": "Fixed", "lastName": "Body"}' if path == "/api/employees" else punch_json(t).encode()
        retry = await client.post(path, headers=headers(t, **{"Idempotency-Key": key}), content=fixed)
        assert retry.status_code == 201, retry.text
        assert "idempotent-replayed" not in retry.headers
    after = counts(owner_sql, t.id)
    assert after[0] == before[0] + 1 and after[1] == before[1] + 1, "only the corrected retries wrote"


async def test_nul_in_query_and_bad_json_are_4xx(
    limited: tuple[httpx.AsyncClient, TenantFixture], owner_sql: psycopg.Connection
) -> None:
    client, t = limited
    before = counts(owner_sql, t.id)
    r = await client.get("/api/employees?cursor=a%00b", headers=headers(t))
    assert_problem(r, 422)
    r = await client.delete(f"/api/punches/{uuid.uuid4()}?reason=x%00y", headers=headers(t))
    assert_problem(r, 422)
    for bad in (b"{", b"[1,2", b'{"firstName": }', b"\xef\xbb\xbf{}", b"null", b'"str"'):
        r = await client.post("/api/employees", headers=headers(t), content=bad)
        assert 400 <= r.status_code < 500, (bad, r.status_code, r.text)
    assert counts(owner_sql, t.id) == before
