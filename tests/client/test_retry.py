"""Retries: one Idempotency-Key per logical write, reused on every try; a dropped connection
after the server committed is retried into the replayed answer (one punch in the database);
503/429/409-in-progress honour Retry-After; other answers are not retried."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest

from tests.client.conftest import Server
from tests.client.fakes import DropProxy, StubServer, created, problem
from tests.conftest import TenantFixture, free_port
from unifocus.client import (
    AsyncClient,
    Client,
    Conflict,
    IdempotencyInProgress,
    NotFound,
    RateLimited,
    RetryPolicy,
    ServiceUnavailable,
    ops,
)
from unifocus.client.models import PunchCreate

pytestmark = pytest.mark.slow

PUNCH = b'{"id":"p1","type":"clock_in"}'


def punch_body(employee_id: uuid.UUID) -> PunchCreate:
    ts = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    return {"employeeId": str(employee_id), "type": "clock_in", "timestamp": ts}


def punches_of(owner_sql: psycopg.Connection, t: TenantFixture) -> list[str]:
    rows = owner_sql.execute("SELECT id FROM punches WHERE tenant_id = %s AND employee_id = %s",
                             (t.id, t.employee_id)).fetchall()
    return [str(r[0]) for r in rows]


def test_dropped_connection_is_retried_into_the_replay(live: Server, ta: TenantFixture,
                                                       owner_sql: psycopg.Connection) -> None:
    port = int(live.url.rsplit(":", 1)[1])
    with DropProxy(port).running() as proxy, Client(proxy.url, ta.manager, base_delay=0.01) as client:
        resp = client.send(ops.create_punch(punch_body(ta.employee_id)))
    assert proxy.dropped == 1
    posts = [h for line, h in proxy.seen if line.startswith("POST /api/punches ")]
    assert len(posts) == 2, proxy.seen
    assert posts[0]["idempotency-key"] == posts[1]["idempotency-key"]
    assert posts[0]["x-request-id"] == posts[1]["x-request-id"]
    uuid.UUID(posts[0]["idempotency-key"])
    assert resp.status == 201 and resp.replayed, (resp.status, dict(resp.headers))
    assert punches_of(owner_sql, ta) == [resp.json()["id"]]


async def test_dropped_connection_async_typed_method(live: Server, ta: TenantFixture,
                                                     owner_sql: psycopg.Connection) -> None:
    port = int(live.url.rsplit(":", 1)[1])
    with DropProxy(port).running() as proxy:
        async with AsyncClient(proxy.url, ta.manager, base_delay=0.01) as client:
            punch = await client.create_punch(punch_body(ta.employee_id))
            again = await client.get_punch(punch["id"])
    assert proxy.dropped == 1
    assert again["id"] == punch["id"]
    assert punches_of(owner_sql, ta) == [punch["id"]]


def test_without_retries_the_drop_surfaces(live: Server, ta: TenantFixture, owner_sql: psycopg.Connection) -> None:
    """The control: the write did commit although the client saw no answer."""
    port = int(live.url.rsplit(":", 1)[1])
    with DropProxy(port).running() as proxy, Client(proxy.url, ta.manager, max_attempts=1) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            client.create_punch(punch_body(ta.employee_id))
    assert len(punches_of(owner_sql, ta)) == 1


def test_503_then_429_then_201_same_key_honouring_retry_after() -> None:
    script = [problem(503, "service-unavailable", "0"), problem(429, "rate-limited", "0"), created(PUNCH)]
    slept: list[float] = []
    with StubServer(script) as stub, Client(stub.url, "t", base_delay=30, sleep=slept.append) as client:
        punch = client.create_punch({"employeeId": "e", "type": "clock_in", "timestamp": "2026-01-01T09:00:00Z"})
    assert punch["id"] == "p1"
    assert slept == [0.0, 0.0]  # Retry-After: 0, not the 30 s backoff
    keys = {h["idempotency-key"] for _, _, h, _ in stub.received}
    assert len(stub.received) == 3 and len(keys) == 1 and None not in keys
    assert len({h["x-request-id"] for _, _, h, _ in stub.received}) == 1
    assert len({b for _, _, _, b in stub.received}) == 1
    assert json.loads(stub.received[0][3])["employeeId"] == "e"


def test_503_with_real_sleep_retry_after_zero_is_fast() -> None:
    with StubServer([problem(503, "service-unavailable", "0"), created(PUNCH)]) as stub:
        with Client(stub.url, "t", base_delay=30) as client:
            assert client.create_punch({"employeeId": "e", "type": "clock_in", "timestamp": "x"})["id"] == "p1"
    assert stub.received[0][2]["idempotency-key"] == stub.received[1][2]["idempotency-key"]


async def test_async_in_progress_409_is_retried_after_retry_after() -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    script = [problem(409, "idempotency-request-in-progress", "1"), problem(503, "service-unavailable", "2"),
              created(PUNCH)]
    with StubServer(script) as stub:
        async with AsyncClient(stub.url, "t", sleep=sleep) as client:
            punch = await client.create_punch({"employeeId": "e", "type": "clock_in", "timestamp": "x"},
                                              key="my-key")
    assert punch["id"] == "p1" and slept == [1.0, 2.0]
    assert [h["idempotency-key"] for _, _, h, _ in stub.received] == ["my-key"] * 3


def test_gives_up_after_max_attempts_with_the_typed_error() -> None:
    slept: list[float] = []
    with StubServer([problem(503, "service-unavailable", "3")]) as stub:
        with Client(stub.url, "t", max_attempts=3, sleep=slept.append) as client, \
                pytest.raises(ServiceUnavailable) as err:
            client.delete_employee("e1")
    assert len(stub.received) == 3 and slept == [3.0, 3.0]
    assert err.value.status == 503 and err.value.retry_after == 3.0
    with StubServer([problem(429, "rate-limited", "0")]) as stub:
        with Client(stub.url, "t", max_attempts=2, sleep=slept.append) as client, pytest.raises(RateLimited):
            client.me()
    with StubServer([problem(409, "idempotency-request-in-progress", "0")]) as stub:
        with Client(stub.url, "t", max_attempts=2, sleep=slept.append) as client, \
                pytest.raises(IdempotencyInProgress) as busy:
            client.resolve_exception("x", "approved")
    assert isinstance(busy.value, Conflict)


def test_domain_answers_are_not_retried() -> None:
    for answer, error in ((problem(404, "not-found"), NotFound), (problem(409, "conflict"), Conflict)):
        with StubServer([answer, created(PUNCH)]) as stub, Client(stub.url, "t", sleep=lambda s: None) as client:
            with pytest.raises(error):
                client.create_punch({"employeeId": "e", "type": "clock_in", "timestamp": "x"})
        assert len(stub.received) == 1


def test_connection_refused_backs_off_with_full_jitter_then_raises() -> None:
    slept: list[float] = []
    url = f"http://127.0.0.1:{free_port()}"
    with Client(url, "t", max_attempts=4, base_delay=0.5, sleep=slept.append) as client:
        with pytest.raises(httpx.ConnectError):
            client.get_tenant()
    assert len(slept) == 3
    for n, delay in enumerate(slept, start=1):
        assert 0 <= delay <= 0.5 * 2 ** (n - 1)


def test_policy_delays() -> None:
    policy = RetryPolicy(max_attempts=9, base_delay=0.1, max_delay=1.0, max_retry_after=5)
    assert [policy.delay(n, rand=lambda: 1.0) for n in range(1, 7)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert policy.delay(3, rand=lambda: 0.0) == 0.0
    assert policy.delay(1, retry_after=2.0) == 2.0 and policy.delay(1, retry_after=120) == 5


def test_one_key_per_logical_write_and_none_on_reads() -> None:
    with StubServer([created(PUNCH)]) as stub, Client(stub.url, "t") as client:
        body: PunchCreate = {"employeeId": "e", "type": "clock_in", "timestamp": "x"}
        client.create_punch(body)
        client.create_punch(body)
        client.create_punch(body, key="chosen", request_id="req-1")
        client.send(ops.get_punch("p1"))
    heads = [h for _, _, h, _ in stub.received]
    assert heads[0]["idempotency-key"] != heads[1]["idempotency-key"]
    assert heads[2]["idempotency-key"] == "chosen" and heads[2]["x-request-id"] == "req-1"
    assert "idempotency-key" not in heads[3]
    assert all(h["authorization"] == "Bearer t" for h in heads)


def test_errors_a_retry_cannot_fix_are_raised_at_once() -> None:
    slept: list[float] = []
    with Client("ftp://127.0.0.1:1", "t", sleep=slept.append) as client, pytest.raises(httpx.UnsupportedProtocol):
        client.me()
    assert slept == []
