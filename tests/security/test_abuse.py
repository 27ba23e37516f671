"""Abuse through the ASGI app: oversized, deeply nested, non-UTF-8 and NUL-bearing bodies,
SQL metacharacters in every string parameter, absurd limits, forged cursors and non-UUID ids.
Each answer is a 4xx problem (or a 2xx that shows no other tenant's data), never a 500, and a
refused request writes nothing (row counts, as the owner, before and after)."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from fastapi import Depends

from tests.conftest import Api, TenantFixture, make_settings, start_app
from tests.security import spec
from tests.security.support import TenantRows, leaks, seed_through_api, snapshot
from unifocus.auth.roles import Role
from unifocus.auth.tokens import mint_token
from unifocus.db.readpath import ReadTx, reader
from unifocus.pagination import PageParams, encode_cursor
from unifocus.settings import Settings

SQL_META = ["' OR 1=1 --", '"; DROP TABLE punches; --', "%", "_", "\\", "'; SELECT pg_sleep(5); --",
            "1' UNION SELECT * FROM users --", "%' OR tenant_id IS NOT NULL OR '%' = '"]

LIST_OPERATIONS = [(m, p, op) for m, p, op in spec.operations()
                   if m == "GET" and p.startswith("/api") and not spec.PATH_PARAM.search(p)]
STRING_QUERY = [
    pytest.param(m, p, q["name"], id=f"{spec.label(m, p)}?{q['name']}")
    for m, p, op in LIST_OPERATIONS for q in spec.parameters(op, "query")
    if any(spec.resolve(o).get("type") == "string" for o in q["schema"].get("anyOf", [q["schema"]]))
]
PAGED = [pytest.param(m, p, id=spec.label(m, p)) for m, p, op in LIST_OPERATIONS
         if {"limit", "cursor"} <= {q["name"] for q in spec.parameters(op, "query")}]
ID_OPERATIONS = [pytest.param(m, p, op, id=spec.label(m, p)) for m, p, op in spec.id_operations()]
REQUIRED_QUERY = {"from": "2026-03-01", "to": "2026-03-08", "reason": "probe"}

EMPLOYEE = {"firstName": "Abuse", "lastName": "Case"}


def required_query(op: dict[str, Any], **extra: str) -> dict[str, str]:
    out = {q["name"]: REQUIRED_QUERY.get(q["name"], "x") for q in spec.parameters(op, "query") if q.get("required")}
    out.update(extra)
    return out


def op_of(method: str, path: str) -> dict[str, Any]:
    return spec.document()["paths"][path][method.lower()]


def assert_problem(r: Any, *statuses: int) -> None:
    assert r.status_code in statuses, f"{r.status_code} {r.text[:500]}"
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    body = r.json()
    assert body["status"] == r.status_code and body["type"].startswith("https://")
    assert "Traceback" not in r.text and "asyncpg" not in r.text


@pytest.fixture()
def counts(owner_sql: psycopg.Connection) -> Any:
    """Call it before and after: the row counts of every table."""
    return lambda: snapshot(owner_sql)


# --- bodies -------------------------------------------------------------------------------------


async def test_oversized_body_is_413_and_writes_nothing(api: Api, tenant_a: TenantFixture, counts: Any) -> None:
    before = counts()
    big = orjson.dumps({**EMPLOYEE, "externalId": "x" * (1024 * 1024 + 10)})
    r = await api.req("POST", "/api/employees", tenant_a.manager, content=big,
                      headers={"content-type": "application/json"})
    assert_problem(r, 413)

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while read
        for _ in range(17):
            yield b" " * 65536
        yield orjson.dumps(EMPLOYEE)

    r = await api.req("POST", "/api/employees", tenant_a.manager, content=chunks(),
                      headers={"content-type": "application/json"})
    assert_problem(r, 413)
    assert counts() == before


async def test_a_declared_oversized_body_is_refused_before_any_of_it_is_read(
    app_client: tuple[Any, Any], tenant_a: TenantFixture
) -> None:
    """A Content-Length over the limit is refused at once: the service does not wait for a
    body it would refuse (a client that declares 10 MB and sends nothing holds no request)."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:  # the body never comes
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/api/employees", "raw_path": b"/api/employees", "query_string": b"",
        "root_path": "", "client": ("127.0.0.1", 50000), "server": ("test", 80),
        "headers": [(b"host", b"test"), (b"content-type", b"application/json"),
                    (b"content-length", str(10 * 1024 * 1024).encode()),
                    (b"authorization", f"Bearer {tenant_a.manager}".encode())],
    }
    await asyncio.wait_for(app_client[0](scope, receive, send), 5)
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 413


@pytest.mark.parametrize("opening, closing", [("[", "]"), ('{"a":', "}")], ids=["arrays", "objects"])
async def test_deeply_nested_json_is_400(api: Api, tenant_a: TenantFixture, counts: Any,
                                         opening: str, closing: str) -> None:
    before = counts()
    body = (opening * 10_000 + "1" + closing * 10_000).encode()
    for path in ("/api/employees", "/api/punches/batch", "/api/schedules"):
        r = await api.req("POST", path, tenant_a.manager, content=body, headers={"content-type": "application/json"})
        assert_problem(r, 400)
    assert counts() == before


@pytest.mark.parametrize("raw", [
    b'{"firstName": "\xff\xfe", "lastName": "x"}',
    b'{"firstName": "\xc3\x28", "lastName": "x"}',
    b'{"firstName": "a", "lastName": "b"',
    b"\x00",
], ids=["invalid-utf8", "overlong", "truncated", "nul"])
async def test_malformed_bodies_are_400(api: Api, tenant_a: TenantFixture, counts: Any, raw: bytes) -> None:
    before = counts()
    r = await api.req("POST", "/api/employees", tenant_a.manager, content=raw,
                      headers={"content-type": "application/json"})
    assert_problem(r, 400, 422)
    assert counts() == before


@pytest.mark.parametrize("raw", [
    orjson.dumps({"firstName": "a\u0000b", "lastName": "x"}),
    b'{"firstName": "a\x00b", "lastName": "x"}',
    orjson.dumps({"firstName": "ok", "lastName": "x", "externalId": "\u0000"}),
], ids=["escaped-nul", "raw-nul", "nul-only"])
async def test_nul_in_json_strings_is_4xx(api: Api, tenant_a: TenantFixture, counts: Any, raw: bytes) -> None:
    before = counts()
    for path in ("/api/employees", f"/api/employees/{tenant_a.employee_id}"):
        method = "POST" if path == "/api/employees" else "PATCH"
        r = await api.req(method, path, tenant_a.manager, content=raw, headers={"content-type": "application/json"})
        assert_problem(r, 400, 422)
    assert counts() == before


@pytest.mark.parametrize(("method", "path"), [pytest.param(m, p, id=spec.label(m, p)) for m, p, _ in LIST_OPERATIONS])
async def test_nul_in_query_is_4xx(api: Api, tenant_a: TenantFixture, method: str, path: str) -> None:
    op = op_of(method, path)
    for name in [q["name"] for q in spec.parameters(op, "query")] or ["cursor"]:
        r = await api.req(method, path, tenant_a.admin, params=required_query(op, **{name: "a\x00b"}))
        assert_problem(r, 400, 422)


async def test_nul_in_void_reason_is_4xx_and_writes_nothing(api: Api, tenant_a: TenantFixture,
                                                              counts: Any) -> None:
    rows = await seed_through_api(api, tenant_a)
    before = counts()
    r = await api.req("DELETE", f"/api/punches/{rows.ids['punch_id']}", tenant_a.manager,
                      params={"reason": "oops\x00"})
    assert_problem(r, 400, 422)
    assert counts() == before


# --- SQL metacharacters -------------------------------------------------------------------------


@pytest.fixture()
async def a_rows(api: Api, tenant_a: TenantFixture) -> TenantRows:
    return await seed_through_api(api, tenant_a)


@pytest.mark.parametrize(("method", "path", "name"), STRING_QUERY)
async def test_sql_metacharacters_in_query_parameters(api: Api, tenant_b: TenantFixture, a_rows: TenantRows,
                                                      counts: Any, method: str, path: str, name: str) -> None:
    secrets = a_rows.secrets()
    before = counts()
    op = op_of(method, path)
    for value in SQL_META:
        for role in ("admin", "manager", "employee"):
            r = await api.req(method, path, getattr(tenant_b, role), params=required_query(op, **{name: value}))
            assert r.status_code < 500, f"{role} {name}={value!r}: {r.status_code} {r.text[:300]}"
            assert r.status_code in (200, 400, 403, 404, 422), r.text
            assert not leaks(r, secrets), f"{role} {name}={value!r}: {leaks(r, secrets)}"
    assert counts() == before


@pytest.mark.parametrize("field", ["firstName", "lastName", "externalId", "email", "timezone"])
async def test_sql_metacharacters_in_employee_fields(api: Api, tenant_b: TenantFixture, a_rows: TenantRows,
                                                     owner_sql: psycopg.Connection, field: str) -> None:
    """Stored verbatim (a parameterized query) or refused; never a 500, never anyone else's row."""
    secrets = a_rows.secrets()
    for value in SQL_META:
        before = snapshot(owner_sql)
        body = {**EMPLOYEE, field: value if field != "email" else f"{value}@example.com"}
        r = await api.req("POST", "/api/employees", tenant_b.manager, json=body)
        assert r.status_code in (201, 400, 409, 422), f"{field}={value!r}: {r.status_code} {r.text[:300]}"
        assert not leaks(r, secrets)
        after = snapshot(owner_sql)
        if r.status_code == 201:
            created = r.json()
            assert created[field] == body[field]
            got = await api.req("GET", f"/api/employees/{created['id']}", tenant_b.manager)
            assert got.status_code == 200 and got.json()[field] == body[field]
            assert after["employees"] == before["employees"] + 1
            assert {k: after[k] for k in ("punches", "users", "tenants")} == \
                {k: before[k] for k in ("punches", "users", "tenants")}
        else:
            assert after == before


# --- limits, cursors, path ids ------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), PAGED)
@pytest.mark.parametrize("limit", [str(10**12), "-1", "0", "501", "abc", "1.5", "", str(2**63)])
async def test_absurd_limits_are_422(api: Api, tenant_a: TenantFixture, method: str, path: str, limit: str) -> None:
    r = await api.req(method, path, tenant_a.admin, params=required_query(op_of(method, path), limit=limit))
    assert_problem(r, 422)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


MALFORMED_CURSORS = {
    "not-base64": "!!!***",
    "garbage": _b64(b"\xff\x00garbage"),
    "json-not-a-pair": _b64(b'{"a": 1, "b": 2}'),
    "wrong-types": _b64(orjson.dumps([5, str(uuid.uuid4())])),
    "id-not-a-string": _b64(orjson.dumps(["2026-01-01T00:00:00+00:00", 5])),
    "id-not-a-uuid": _b64(orjson.dumps(["2026-01-01T00:00:00+00:00", "' OR 1=1 --"])),
    "naive-instant": _b64(orjson.dumps(["2026-01-01T00:00:00", str(uuid.uuid4())])),
    "out-of-range": _b64(orjson.dumps(["0001-01-01T00:00:00+10:00", str(uuid.uuid4())])),
    "sql": "' OR 1=1 --",
    "three-items": _b64(orjson.dumps(["2026-01-01T00:00:00+00:00", str(uuid.uuid4()), 1])),
    "too-long": "A" * 5000,
}


@pytest.mark.parametrize(("method", "path"), PAGED)
async def test_malformed_cursor_is_400(api: Api, tenant_a: TenantFixture, method: str, path: str) -> None:
    """Every malformed cursor, one too long included, is the same 400 `bad-request`."""
    op = op_of(method, path)
    for name, cursor in MALFORMED_CURSORS.items():
        r = await api.req(method, path, tenant_a.admin, params=required_query(op, cursor=cursor))
        assert_problem(r, 400)
        assert r.json()["type"].endswith("/bad-request") and r.json()["detail"] == "The cursor is not valid.", name


def user_token(owner_sql: psycopg.Connection, settings: Settings, t: TenantFixture, role: str,
               active: bool = True) -> str:
    """A token of a new user of tenant `t`, linked to no employee record."""
    uid = uuid.uuid4()
    owner_sql.execute("INSERT INTO users (tenant_id, id, email, role, active, subject) VALUES (%s, %s, %s, %s, %s, %s)",
                      (t.id, uid, f"{role}-{uid.hex[:8]}@example.com", role, active, str(uid)))
    return mint_token(settings, t.id, str(uid))


@pytest.mark.parametrize(("method", "path"), PAGED)
async def test_a_malformed_cursor_is_refused_for_the_caller_first(
    api: Api, owner_sql: psycopg.Connection, settings: Settings, tenant_a: TenantFixture, method: str, path: str
) -> None:
    """A caller who may not read a list gets with a malformed cursor what they get without one
    (no token or an unknown user 401; a role below the list's, or a deactivated user, 403),
    never a 400 about its parameters. A caller who may read it gets the 400, even where the
    list answers without reading (an employee user linked to no record sees an empty page)."""
    op = op_of(method, path)
    callers = {
        "no token": None,
        "unknown user": mint_token(settings, tenant_a.id, str(uuid.uuid4())),
        "deactivated admin": user_token(owner_sql, settings, tenant_a, "admin", active=False),
        "employee": tenant_a.employee,
        "employee linked to no record": user_token(owner_sql, settings, tenant_a, "employee"),
        "manager": tenant_a.manager,
        "admin": tenant_a.admin,
    }
    answers: dict[str, int] = {}
    for caller, token in callers.items():
        plain = await api.req(method, path, token, params=required_query(op))
        answers[caller] = plain.status_code
        for cursor in ("!!!bad", "A" * 5000):
            r = await api.req(method, path, token, params=required_query(op, cursor=cursor))
            if plain.status_code == 200:
                assert_problem(r, 400)
                assert r.json()["type"].endswith("/bad-request"), (caller, r.text)
            else:
                assert (r.status_code, r.json()) == (plain.status_code, plain.json()), caller
    assert answers["no token"] == answers["unknown user"] == 401
    assert answers["deactivated admin"] == 403 and answers["admin"] == 200, answers


async def test_a_malformed_cursor_is_refused_whichever_order_a_list_declares_its_dependencies(
    owner_url: str, tenant_a: TenantFixture, tmp_path: Path,
) -> None:
    """Every list of the app declares `PageParams` before its reader; one that declared it
    after (on an app of its own) refuses a malformed cursor the same way: the caller's
    401/403 first, else 400, even when it answers without reading the cursor."""
    app: Any
    app, client, lifespan = await start_app(make_settings(owner_url, tmp_path))

    async def reversed_list(r: ReadTx = Depends(reader(Role.manager)), page: PageParams = Depends()) -> dict:
        return {"items": [], "nextCursor": None, "limit": page.limit}  # never reads page.after

    app.router.add_api_route("/api/reversed-list", reversed_list, methods=["GET"])
    api = Api(client)
    try:
        callers = {None: 401, tenant_a.employee: 403, tenant_a.manager: 400}
        for token, status in callers.items():
            for cursor in ("!!!bad", "A" * 5000):
                r = await api.req("GET", "/api/reversed-list", token, params={"cursor": cursor})
                assert_problem(r, status)
        good = encode_cursor(datetime.now(UTC), uuid.uuid4())
        r = await api.req("GET", "/api/reversed-list", tenant_a.manager, params={"cursor": good})
        assert r.status_code == 200 and r.json()["items"] == [], r.text
        assert (await api.req("GET", "/api/reversed-list", tenant_a.manager)).status_code == 200
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)  # type: ignore[attr-defined]


NOT_UUIDS = ["not-a-uuid", "1", "' OR 1=1 --", "..%2F..%2Fetc", "00000000-0000-0000-0000-00000000000g",
             "%25", "_", "\\", "a" * 300, "0" * 32 + "1"]


@pytest.mark.parametrize(("method", "path", "op"), ID_OPERATIONS)
async def test_non_uuid_path_ids_are_422_or_404(api: Api, tenant_a: TenantFixture, counts: Any,
                                                method: str, path: str, op: dict[str, Any]) -> None:
    before = counts()
    for bad in NOT_UUIDS:
        url = spec.PATH_PARAM.sub(lambda _, bad=bad: bad, path)
        body = {} if method in ("POST", "PUT", "PATCH") else None
        r = await api.req(method, url, tenant_a.admin, json=body, params=required_query(op))
        assert_problem(r, 404, 405, 422)
    assert counts() == before


# An extreme date or instant must be refused (422) before it reaches date arithmetic or the
# driver, where it would overflow (a 500).
DATE_RANGE_OPERATIONS = [
    pytest.param(m, p, id=spec.label(m, p))
    for m, p, op in LIST_OPERATIONS
    if {"from", "to"} <= {q["name"] for q in spec.parameters(op, "query")}
]


@pytest.mark.parametrize(("method", "path"), DATE_RANGE_OPERATIONS)
@pytest.mark.parametrize(("start", "end"), [
    ("0001-01-01", "0001-01-02"), ("9999-12-30", "9999-12-31"),
    ("0001-01-01T00:00:00+14:00", "0001-01-02T00:00:00Z"), ("9999-12-31T23:59:59-12:00", "9999-12-31T23:59:59Z"),
], ids=["first-dates", "last-dates", "first-instants", "last-instants"])
async def test_extreme_ranges_never_500(api: Api, tenant_a: TenantFixture, method: str, path: str,
                                        start: str, end: str) -> None:
    for role in ("admin", "employee"):
        params = {"from": start, "to": end}
        if any(q["name"] == "employeeId" for q in spec.parameters(op_of(method, path), "query")) and role == "admin":
            params["employeeId"] = str(tenant_a.employee_id)
        r = await api.req(method, path, getattr(tenant_a, role), params=params)
        assert r.status_code < 500, f"{role} {params}: {r.status_code} {r.text[:300]}"


@pytest.mark.parametrize("ts", ["0001-01-01T00:00:00+14:00", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59-12:00"])
async def test_extreme_punch_instants_are_422(api: Api, tenant_a: TenantFixture, counts: Any, ts: str) -> None:
    before = counts()
    item = {"employeeId": str(tenant_a.employee_id), "type": "clock_in", "timestamp": ts}
    r = await api.req("POST", "/api/punches", tenant_a.employee, json=item)
    assert_problem(r, 422)
    r = await api.req("POST", "/api/punches/batch", tenant_a.employee,
                      json={"punches": [{**item, "clientPunchId": "extreme"}]})
    assert r.status_code == 200 and r.json()["results"][0]["status"] == "rejected", r.text
    assert counts() == before
