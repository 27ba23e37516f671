"""POST /api/punches answered by `punches/fast_route.py` must answer exactly what the FastAPI
route answers: the same requests, sent in the same order to an app with the layer and to one
without it (`fast_punch_route=False`), each on a tenant of its own, give the same status,
headers and body (ids and server timestamps aside), and the layer really answered the
well-formed ones."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client import REGISTRY

from tests.conftest import Api, TenantFixture, make_settings, make_tenant
from tests.faults.support import running_app
from tests.punches.test_punches import MONDAY, schedule
from unifocus.punches import fast_route
from unifocus.settings import Settings

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
SERVER_TIMES = re.compile(r'"(receivedAt|createdAt|updatedAt|decidedAt)":"[^"]*"')
VOLATILE_HEADERS = {"x-request-id", "date", "content-length"}

Case = tuple[str, Callable[[TenantFixture], dict[str, Any]]]


def _punch(t: TenantFixture, **over: Any) -> dict[str, Any]:
    return {"employeeId": str(t.employee_id), "type": "clock_in", "timestamp": f"{MONDAY}T09:07:00-05:00", **over}


def _json(token: str | None, body: Any, key: str | None = None, **headers: str) -> dict[str, Any]:
    h = {"content-type": "application/json", **headers}
    if token:
        h["authorization"] = f"Bearer {token}"
    if key:
        h["idempotency-key"] = key
    content = body if isinstance(body, bytes) else httpx.Request("POST", "/", json=body).content
    return {"headers": h, "content": content}


# In order: later cases see what earlier ones stored (a device repeat, a replayed key).
CASES: list[Case] = [
    ("late clock_in: 201 with its exception", lambda t: _json(t.employee, _punch(t), key="k-1")),
    ("the same key again: the stored answer", lambda t: _json(t.employee, _punch(t), key="k-1")),
    ("the same key, another body: 422", lambda t: _json(t.employee, _punch(t, type="clock_out"), key="k-1")),
    ("a device punch: 201", lambda t: _json(t.manager, _punch(t, type="clock_out", timestamp=f"{MONDAY}T17:00:00-05:00",
                                                              device="lobby-1", clientPunchId="c-1"))),
    ("the device repeats it: 200", lambda t: _json(t.manager, _punch(t, type="clock_out",
                                                                     timestamp=f"{MONDAY}T17:00:00-05:00",
                                                                     device="lobby-1", clientPunchId="c-1"))),
    ("charset parameter", lambda t: _json(t.manager, _punch(t, timestamp=f"{MONDAY}T12:00:00-05:00"),
                                          **{"content-type": "application/json; charset=utf-8"})),
    ("unknown employee: 404", lambda t: _json(t.manager, _punch(t, employeeId=str(uuid.UUID(int=7))))),
    ("another employee's punch by an employee: 403",
     lambda t: _json(t.employee, _punch(t, employeeId=str(uuid.UUID(int=7))))),
    ("manual source by an employee: 403", lambda t: _json(t.employee, _punch(t, source="manual"))),
    ("in the future: 422", lambda t: _json(t.employee, _punch(t, timestamp="2999-01-01T00:00:00Z"))),
    ("no token: 401", lambda t: _json(None, _punch(t))),
    ("a bad token: 401", lambda t: _json("not-a-token", _punch(t))),
    ("a malformed Idempotency-Key: 400", lambda t: _json(t.employee, _punch(t), key="k" * 300)),
    ("a missing field: 422", lambda t: _json(t.employee, {"employeeId": str(t.employee_id), "type": "clock_in"})),
    ("a bad enum: 422", lambda t: _json(t.employee, _punch(t, type="clock_sideways"))),
    ("an unknown field: 422", lambda t: _json(t.employee, _punch(t, color="red"))),
    ("not JSON: 400", lambda t: _json(t.employee, b'{"employeeId": ')),
    ("NaN: parsed by json, not by orjson", lambda t: _json(t.employee, b'{"employeeId": NaN}')),
    ("not JSON and a bad token", lambda t: _json("not-a-token", b"{")),
    ("a bad body and no token", lambda t: _json(None, {"type": "clock_in"})),
    ("text/plain", lambda t: _json(t.employee, _punch(t), **{"content-type": "text/plain"})),
    ("a +json type", lambda t: _json(t.employee, _punch(t, timestamp=f"{MONDAY}T12:30:00-05:00"),
                                     **{"content-type": "application/vnd.api+json"})),
    ("no body", lambda t: _json(t.employee, b"")),
    ("a JSON array", lambda t: _json(t.employee, [1, 2])),
    ("an offset without a colon: 422", lambda t: _json(t.employee, _punch(t, timestamp=f"{MONDAY}T13:00:00-0500"))),
    ("no seconds: 422", lambda t: _json(t.employee, _punch(t, timestamp=f"{MONDAY}T13:00Z"))),
    ("lowercase t and z, a fraction: 201", lambda t: _json(t.employee, _punch(t, timestamp=f"{MONDAY}t18:00:00.5z"))),
    ("text/plain, not JSON", lambda t: _json(t.employee, b"clock in", **{"content-type": "Text/Plain"})),
    ("text/plain and a bad token", lambda t: _json("not-a-token", _punch(t), **{"content-type": "text/plain"})),
    ("text/plain under a key", lambda t: _json(t.employee, _punch(t), key="k-415", **{"content-type": "text/plain"})),
    ("no content type", lambda t: {"headers": {"authorization": f"Bearer {t.employee}"},
                                   "content": orjson.dumps(_punch(t))}),
]
# The cases with a valid punch body, token and key: the layer runs the handler for these: ten
# of the first 13 cases (the other three are refused by the token or key check before the
# handler), plus the lowercase instant with a fraction.
WELL_FORMED = 11
# What each case answers (the same with and without the layer: see the comparison).
EXPECTED = {
    "late clock_in: 201 with its exception": 201, "the same key again: the stored answer": 201,
    "the same key, another body: 422": 422, "a device punch: 201": 201, "the device repeats it: 200": 200,
    "charset parameter": 201, "unknown employee: 404": 404, "another employee's punch by an employee: 403": 403,
    "manual source by an employee: 403": 403, "in the future: 422": 422, "no token: 401": 401,
    "a bad token: 401": 401, "a malformed Idempotency-Key: 400": 400, "a missing field: 422": 422,
    "a bad enum: 422": 422, "an unknown field: 422": 422, "not JSON: 400": 400,
    # The caller is refused before the body is, even a body that is not JSON (401, not 400).
    "NaN: parsed by json, not by orjson": 422, "not JSON and a bad token": 401, "a bad body and no token": 401,
    # A body that is not sent as JSON: 415 (after the caller's 401), and nothing kept for its key.
    "text/plain": 415, "a +json type": 201, "no body": 422, "a JSON array": 422, "text/plain, not JSON": 415,
    "text/plain and a bad token": 401, "text/plain under a key": 415, "no content type": 415,
    "an offset without a colon: 422": 422, "no seconds: 422": 422, "lowercase t and z, a fraction: 201": 201,
}


def shape(r: httpx.Response) -> tuple[int, dict[str, str], str]:
    headers = {k: UUID.sub("<id>", v) for k, v in r.headers.items() if k not in VOLATILE_HEADERS}
    return r.status_code, headers, SERVER_TIMES.sub(r'"\1":"<t>"', UUID.sub("<id>", r.text))


async def run_cases(client: httpx.AsyncClient, t: TenantFixture) -> list[tuple[int, dict[str, str], str]]:
    await schedule(Api(client), t)
    out = []
    for _, build in CASES:
        r = await client.post("/api/punches", **build(t))
        out.append(shape(r))
    return out


def punch_requests(status_class: str) -> float:
    value = REGISTRY.get_sample_value("unifocus_http_requests_total",
                                      {"route": "/api/punches", "method": "POST", "status_class": status_class})
    return value or 0.0


async def test_the_fast_path_answers_as_the_route_does(
    owner_url: str, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    answered: list[Any] = []
    original = fast_route.create

    async def counting_create(body: Any, w: Any) -> Any:
        answered.append(body)
        return await original(body, w)

    monkeypatch.setattr(fast_route, "create", counting_create)
    with_layer, without = make_tenant(owner_url, settings), make_tenant(owner_url, settings)

    before = punch_requests("2xx")
    async with running_app(make_settings(owner_url, tmp_path / "fast")) as (_app, client):
        fast = await run_cases(client, with_layer)
    assert len(answered) == WELL_FORMED, "the layer did not answer the well-formed punches"
    # metrics name the route for the layer's answers as for the route's
    assert punch_requests("2xx") - before == sum(1 for s, _, _ in fast if s < 300)

    async with running_app(make_settings(owner_url, tmp_path / "slow", fast_punch_route=False)) as (_app, client):
        slow = await run_cases(client, without)
    assert len(answered) == WELL_FORMED, "with fast_punch_route=False the layer must not run"

    for (name, _), a, b in zip(CASES, fast, slow, strict=True):
        assert a == b, f"{name}: the fast path answered {a}, the route {b}"
    statuses = {name: s for (name, _), (s, _, _) in zip(CASES, fast, strict=True)}
    assert statuses == EXPECTED, statuses
