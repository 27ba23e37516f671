r"""Text that is not Unicode: a JSON escape of an unpaired UTF-16 surrogate (`"\ud800"`). The
json module FastAPI parses with accepts it, and the string then fails wherever it is encoded
(the response, the database): it must be refused (422 problem+json) before any route sees it,
on every route, and store nothing. A surrogate pair (an emoji written as two escapes) is one
character and is accepted."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from tests.conftest import Api, TenantFixture
from tests.security.support import snapshot
from tests.tenancy.routes import PARAM, all_operations
from unifocus.limits.middleware import lone_surrogate

JSON = {"content-type": "application/json"}
WRITES = [(m, p) for m, p in all_operations() if m in ("POST", "PUT", "PATCH", "DELETE")]


def assert_unicode_refusal(r: Any, field: str | None = None) -> None:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["type"].endswith("/validation-failed") and body["status"] == 422
    assert "surrogate" in body["detail"]
    if field is not None:
        assert body["errors"][0]["field"] == field, body


def punch_body(t: TenantFixture, **fields: str) -> bytes:
    items = {"employeeId": str(t.employee_id), "type": "clock_in", "timestamp": "2026-03-02T09:00:00Z"}
    items.update(fields)
    return ("{" + ",".join(f'"{k}":"{v}"' for k, v in items.items()) + "}").encode()


@pytest.mark.parametrize("text", [r"\ud800", r"\uDFFF", r"a\udc00b", r"\udc00\ud800", r"\ud83d"],
                         ids=["high", "low-upper", "low-inside", "reversed-pair", "half-emoji"])
async def test_a_lone_surrogate_in_a_batch_item_is_422_and_stores_nothing(
    api: Api, owner_sql: psycopg.Connection, tenant_a: TenantFixture, text: str
) -> None:
    before = snapshot(owner_sql)
    r = await api.req("POST", "/api/punches/batch", tenant_a.employee,
                      content=b'{"punches":[{"clientPunchId":"%s"}]}' % text.encode(), headers=JSON)
    assert_unicode_refusal(r, "punches.0.clientPunchId")
    # also behind a valid item: the whole batch is refused, the valid item is not stored
    valid = punch_body(tenant_a, clientPunchId="ok-1", device="dev-s").decode()
    r = await api.req("POST", "/api/punches/batch", tenant_a.employee,
                      content=f'{{"punches":[{valid},{{"clientPunchId":"{text}"}}]}}'.encode(), headers=JSON)
    assert_unicode_refusal(r, "punches.1.clientPunchId")
    assert snapshot(owner_sql) == before


@pytest.mark.parametrize("field", ["device", "clientPunchId"])
async def test_a_lone_surrogate_in_a_punch_is_422_and_stores_nothing(
    api: Api, owner_sql: psycopg.Connection, tenant_a: TenantFixture, field: str
) -> None:
    before = snapshot(owner_sql)
    r = await api.req("POST", "/api/punches", tenant_a.employee,
                      content=punch_body(tenant_a, **{field: r"dev\ud800"}), headers=JSON)
    assert_unicode_refusal(r, field)
    assert snapshot(owner_sql) == before


@pytest.mark.parametrize(("raw", "field"), [
    (rb'{"firstName":"\ud800","lastName":"x"}', "firstName"),
    (rb'{"firstName":"Ann","lastName":"x","externalId":"E-\uDBFF"}', "externalId"),
    (rb'{"firstName":"Ann","lastName":"x","\ud800":1}', "body"),
    (rb'{"firstName":"Ann","lastName":"x","extra":{"deep":["\udfff"]}}', "extra.deep.0"),
], ids=["value", "upper-hex", "member-name", "nested"])
async def test_a_lone_surrogate_in_an_employee_is_422_and_stores_nothing(
    api: Api, owner_sql: psycopg.Connection, tenant_a: TenantFixture, raw: bytes, field: str
) -> None:
    before = snapshot(owner_sql)
    r = await api.req("POST", "/api/employees", tenant_a.manager, content=raw, headers=JSON)
    assert_unicode_refusal(r, field)
    r = await api.req("PATCH", f"/api/employees/{tenant_a.employee_id}", tenant_a.manager, content=raw,
                      headers=JSON)
    assert_unicode_refusal(r, field)
    assert snapshot(owner_sql) == before


@pytest.mark.parametrize(("method", "path"), WRITES, ids=[f"{m} {p}" for m, p in WRITES])
async def test_no_write_route_answers_500_for_a_lone_surrogate(
    api: Api, owner_sql: psycopg.Connection, tenant_a: TenantFixture, method: str, path: str
) -> None:
    url = PARAM.sub(lambda _: str(uuid.uuid4()), path)
    before = snapshot(owner_sql)
    for raw in (rb'{"name":"\ud800"}', rb'["\ud800"]', rb'"\udc00"', rb'{"punches":[{"clientPunchId":"\ud800"}]}'):
        for token in (tenant_a.admin, tenant_a.employee, None):
            r = await api.req(method, url, token, content=raw, headers=JSON, params={"reason": "probe"})
            assert_unicode_refusal(r)
    assert snapshot(owner_sql) == before


async def test_a_surrogate_pair_is_one_character_and_is_accepted(
    api: Api, tenant_a: TenantFixture
) -> None:
    r = await api.req("POST", "/api/employees", tenant_a.manager,
                      content=rb'{"firstName":"\ud83d\ude00","lastName":"\\ud800 is text here"}', headers=JSON)
    assert r.status_code == 201, r.text
    assert r.json()["firstName"] == "\U0001f600" and r.json()["lastName"] == "\\ud800 is text here"
    got = await api.req("GET", f"/api/employees/{r.json()['id']}", tenant_a.manager)
    assert got.json()["firstName"] == "\U0001f600"
    tag = uuid.uuid4().hex[:8]
    item = punch_body(tenant_a, clientPunchId=rf"c-{tag}-\ud83d\ude00", device=rf"d-{tag}-\uD83D\uDE00").decode()
    r = await api.req("POST", "/api/punches/batch", tenant_a.employee,
                      content=f'{{"punches":[{item}]}}'.encode(), headers=JSON)
    assert r.status_code == 200, r.text
    result = r.json()["results"][0]
    assert result["status"] == "created", result
    assert result["clientPunchId"] == f"c-{tag}-\U0001f600" and result["punch"]["device"] == f"d-{tag}-\U0001f600"
    r = await api.req("POST", "/api/punches", tenant_a.employee,
                      content=punch_body(tenant_a, device=rf"e-{tag}-\ud83d\ude00"), headers=JSON)
    assert r.status_code == 201, r.text
    assert r.json()["device"] == f"e-{tag}-\U0001f600"


@pytest.mark.parametrize(("raw", "expected"), [
    (b'{"a":"plain"}', None),
    (rb'{"a":"caf\u00e9"}', None),
    (rb'{"a":"\ud83d\ude00"}', None),
    (rb'{"a":"\\ud800"}', None),  # an escaped backslash, then the letters: text, not an escape
    (rb'{"a":"\ud800"}', "a"),
    (rb'{"a":[1,{"b":"\uDc00"}]}', "a.1.b"),
    (rb'"\ud800"', "body"),
    (rb'{"a":NaN,"b":"\ud800"}', "b"),  # what orjson refuses for another reason is still walked
    (rb'{"a":NaN,"b":"\ud83d\ude00"}', None),
    (rb'{"a":"\ud800"', None),  # not JSON: the route answers that (400)
    (rb'not json \ud800', None),
])
def test_lone_surrogate_finds_the_field(raw: bytes, expected: str | None) -> None:
    assert lone_surrogate(raw) == expected
