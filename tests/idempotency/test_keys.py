"""The Idempotency-Key header: syntax (contract section 4) and UNIFOCUS_IDEMPOTENCY_REQUIRED."""

from __future__ import annotations

import logging
import uuid

import psycopg
import pytest

from tests.conftest import Api, TenantFixture, tenant_counts
from tests.idempotency.conftest import (
    AppFactory,
    audit_entries,
    employee_body,
    employees_named,
    new_key,
    problem_type,
    records,
)
from unifocus.auth.tokens import mint_token
from unifocus.settings import Settings

pytestmark = pytest.mark.idempotency


async def test_quoted_key_is_the_same_key_as_bare(api: Api, tenant_a: TenantFixture,
                                                  owner_sql: psycopg.Connection) -> None:
    body = employee_body()
    first = await api.req("POST", "/api/employees", tenant_a.manager, key='"abc-123"', json=body)
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    again = await api.req("POST", "/api/employees", tenant_a.manager, key="abc-123", json=body)
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content
    assert employees_named(owner_sql, tenant_a.id, body["firstName"]) == 1
    # Surrounding whitespace is not part of the key; an escaped quote is.
    again = await api.req("POST", "/api/employees", tenant_a.manager, key=' \t"abc-123" ', json=body)
    assert again.headers.get("idempotent-replayed") == "true"
    esc = await api.req("POST", "/api/employees", tenant_a.manager, key=r'"a\"b\\c"', json=employee_body())
    assert esc.status_code == 201, esc.text
    rows = owner_sql.execute("SELECT key FROM idempotency_records WHERE tenant_id = %s ORDER BY key",
                             (tenant_a.id,)).fetchall()
    assert sorted(r[0] for r in rows) == sorted(["abc-123", 'a"b\\c'])


async def test_longest_key_is_accepted(api: Api, tenant_a: TenantFixture) -> None:
    r = await api.req("POST", "/api/employees", tenant_a.manager, key="k" * 255, json=employee_body())
    assert r.status_code == 201, r.text
    quoted = await api.req("POST", "/api/employees", tenant_a.manager, key='"' + "q" * 255 + '"',
                           json=employee_body())
    assert quoted.status_code == 201, quoted.text


MALFORMED: list[tuple[str, bytes]] = [
    ("empty", b""),
    ("blank", b"   "),
    ("empty quoted", b'""'),
    ("256 chars", b"k" * 256),
    ("256 chars quoted", b'"' + b"k" * 256 + b'"'),
    ("non-ASCII", "cl\u00e9".encode()),
    ("non-ASCII latin-1", b"cl\xe9"),
    ("control char", b"a\x01b"),
    ("tab inside", b"a\tb"),
    ("DEL", b"a\x7fb"),
    ("bad escape", b'"a\\b"'),
    ("trailing backslash", b'"abc\\"'),
    ("unescaped quote inside quotes", b'"a"b"'),
    ("unterminated quote", b'"abc'),
    ("a lone quote", b'"'),
    ("unterminated, one character", b'"a'),
    # Two keys, the first quoted, merged into one field: not one valid string.
    ("two quoted keys", b'"k1", "k2"'),
    ("quoted then bare", b'"k1",k2'),
]


@pytest.mark.parametrize(("case", "raw"), MALFORMED, ids=[c for c, _ in MALFORMED])
async def test_malformed_key_is_400_and_writes_nothing(
    api: Api, tenant_a: TenantFixture, owner_sql: psycopg.Connection, case: str, raw: bytes
) -> None:
    body = employee_body()
    headers = [(b"authorization", f"Bearer {tenant_a.manager}".encode()), (b"idempotency-key", raw)]
    r = await api.client.post("/api/employees", headers=headers, json=body)
    assert r.status_code == 400, (case, r.status_code, r.text)
    assert problem_type(r).endswith("invalid-idempotency-key")
    assert employees_named(owner_sql, tenant_a.id, body["firstName"]) == 0
    assert audit_entries(owner_sql, tenant_a.id) == 0
    assert records(owner_sql, tenant_a.id) == 0


async def test_two_key_headers_are_400(api: Api, tenant_a: TenantFixture,
                                       owner_sql: psycopg.Connection) -> None:
    body = employee_body()
    for pair in (("a", "a"), ("a", "b")):
        headers = [("Authorization", f"Bearer {tenant_a.manager}"),
                   ("Idempotency-Key", pair[0]), ("Idempotency-Key", pair[1])]
        r = await api.client.post("/api/employees", headers=headers, json=body)
        assert r.status_code == 400, r.text
        assert problem_type(r).endswith("invalid-idempotency-key")
    assert employees_named(owner_sql, tenant_a.id, body["firstName"]) == 0
    assert records(owner_sql, tenant_a.id) == 0


# A value that does not start with a quote is a bare key, quotes and all (contract section 4:
# any printable ASCII); only one that starts with `"` is a structured-field string.
BARE_WITH_QUOTES = ['a"b', 'ab"', 'k1, "k2"']


@pytest.mark.parametrize("key", BARE_WITH_QUOTES, ids=BARE_WITH_QUOTES)
async def test_a_bare_key_holding_a_quote_is_that_key_and_replays(
    api: Api, tenant_a: TenantFixture, owner_sql: psycopg.Connection, key: str
) -> None:
    body = employee_body()
    first = await api.req("POST", "/api/employees", tenant_a.manager, key=key, json=body)
    assert first.status_code == 201, first.text
    again = await api.req("POST", "/api/employees", tenant_a.manager, key=key, json=body)
    assert again.status_code == 201 and again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert employees_named(owner_sql, tenant_a.id, body["firstName"]) == 1
    rows = owner_sql.execute("SELECT key FROM idempotency_records WHERE tenant_id = %s", (tenant_a.id,)).fetchall()
    assert [r[0] for r in rows] == [key]


COMMA_KEYS = ["order-1,item-2", "k1, k2", "a,a", "k1,", ",k1"]


@pytest.mark.parametrize("key", COMMA_KEYS, ids=COMMA_KEYS)
async def test_a_bare_key_with_a_comma_is_one_key_and_replays(
    api: Api, tenant_a: TenantFixture, owner_sql: psycopg.Connection, key: str
) -> None:
    """A comma is printable ASCII, so part of a bare key (contract section 4): a client's
    `order-1,item-2` is accepted and replays. A proxy that merges two Idempotency-Key fields
    makes `k1, k2`, which cannot be told from such a key: it is taken as that one key (two
    separate fields are 400, test_two_key_headers_are_400). Quoted, it is the same key."""
    body = employee_body()
    first = await api.req("POST", "/api/employees", tenant_a.manager, key=key, json=body)
    assert first.status_code == 201 and "idempotent-replayed" not in first.headers, first.text
    for sent in (key, '"' + key + '"'):
        again = await api.req("POST", "/api/employees", tenant_a.manager, key=sent, json=body)
        assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true", (sent, again.text)
        assert again.content == first.content and again.headers["location"] == first.headers["location"]
    assert employees_named(owner_sql, tenant_a.id, body["firstName"]) == 1
    assert audit_entries(owner_sql, tenant_a.id) == 1
    rows = owner_sql.execute("SELECT key FROM idempotency_records WHERE tenant_id = %s", (tenant_a.id,)).fetchall()
    assert rows == [(key,)]


async def test_malformed_key_on_patch_and_delete(api: Api, tenant_a: TenantFixture,
                                                 owner_sql: psycopg.Connection) -> None:
    r = await api.req("PATCH", f"/api/users/{tenant_a.employee_user_id}", tenant_a.admin, key="k" * 256,
                      json={"role": "manager"})
    assert r.status_code == 400 and problem_type(r).endswith("invalid-idempotency-key")
    r = await api.req("DELETE", f"/api/employees/{tenant_a.employee_id}", tenant_a.manager, key='"x\\y"')
    assert r.status_code == 400 and problem_type(r).endswith("invalid-idempotency-key")
    assert scalar_role(owner_sql, tenant_a) == ("employee", True)
    assert audit_entries(owner_sql, tenant_a.id) == 0


def scalar_role(owner_sql: psycopg.Connection, t: TenantFixture) -> tuple[str, bool]:
    role = owner_sql.execute("SELECT role FROM users WHERE tenant_id = %s AND id = %s",
                             (t.id, t.employee_user_id)).fetchone()
    active = owner_sql.execute("SELECT active FROM employees WHERE tenant_id = %s AND id = %s",
                               (t.id, t.employee_id)).fetchone()
    assert role and active
    return role[0], active[0]


async def test_key_not_required_by_default(api: Api, tenant_a: TenantFixture) -> None:
    r = await api.req("POST", "/api/employees", tenant_a.manager, json=employee_body())
    assert r.status_code == 201, r.text


async def test_required_mode_refuses_writes_without_key(
    other_app: AppFactory, tenant_a: TenantFixture, owner_sql: psycopg.Connection
) -> None:
    _, strict = await other_app(idempotency_required=True)
    body = employee_body()
    r = await strict.req("POST", "/api/employees", tenant_a.manager, json=body)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert employees_named(owner_sql, tenant_a.id, body["firstName"]) == 0
    r = await strict.req("DELETE", f"/api/employees/{tenant_a.employee_id}", tenant_a.manager)
    assert r.status_code == 400, r.text
    r = await strict.req("POST", "/api/employees", tenant_a.manager, key=new_key(), json=body)
    assert r.status_code == 201, r.text
    assert employees_named(owner_sql, tenant_a.id, body["firstName"]) == 1
    # Reads never need a key.
    r = await strict.req("GET", "/api/employees", tenant_a.manager)
    assert r.status_code == 200, r.text


async def test_required_mode_refuses_the_caller_before_the_missing_key(
    other_app: AppFactory, tenant_a: TenantFixture, owner_sql: psycopg.Connection, settings: Settings
) -> None:
    """A missing key is a refusal of the request, so a caller who may not use the route gets
    their own answer first, as with any other invalid request: no token or an unknown user
    401, a role below the route's or a deactivated user 403. Only a caller the route allows
    learns that this deployment wants a key (400). Nothing is written either way."""
    _, strict = await other_app(idempotency_required=True)
    inactive = uuid.uuid4()
    owner_sql.execute("INSERT INTO users (tenant_id, id, email, role, active, subject) "
                      "VALUES (%s, %s, %s, 'admin', false, %s)",
                      (tenant_a.id, inactive, f"off-{inactive.hex[:6]}@example.com", str(inactive)))
    deactivated = mint_token(settings, tenant_a.id, str(inactive))
    unknown = mint_token(settings, tenant_a.id, str(uuid.uuid4()))
    punch = {"employeeId": str(tenant_a.employee_id), "type": "clock_in", "timestamp": "2026-03-02T09:00:00-05:00"}
    cases = [  # (method, path, body, token, status, problem)
        ("PATCH", "/api/tenant", {"name": "Renamed"}, tenant_a.employee, 403, "forbidden"),
        ("PATCH", "/api/tenant", {"name": "Renamed"}, tenant_a.manager, 403, "forbidden"),
        ("POST", "/api/employees", employee_body(), tenant_a.employee, 403, "forbidden"),
        ("POST", "/api/employees", employee_body(), deactivated, 403, "forbidden"),
        ("POST", "/api/employees", employee_body(), unknown, 401, "unauthorized"),
        ("POST", "/api/employees", employee_body(), None, 401, "unauthorized"),
        ("POST", "/api/punches", punch, deactivated, 403, "forbidden"),  # the fast punch route
        ("POST", "/api/punches", punch, unknown, 401, "unauthorized"),
        ("POST", "/api/punches", punch, tenant_a.employee, 400, "bad-request"),
        ("PATCH", "/api/tenant", {"name": "Renamed"}, tenant_a.admin, 400, "bad-request"),
    ]
    before = tenant_counts(owner_sql, tenant_a.id, "employees", "punches", "audit_log", "idempotency_records")
    for method, path, body, token, status, slug in cases:
        r = await strict.req(method, path, token, json=body)
        assert r.status_code == status, (method, path, status, r.text)
        assert problem_type(r).endswith("/" + slug), r.text
    assert tenant_counts(owner_sql, tenant_a.id, "employees", "punches", "audit_log", "idempotency_records") == before


class Recorded(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def test_a_failed_caller_lookup_is_ignored_and_the_request_refused_as_it_is(
    other_app: AppFactory, tenant_a: TenantFixture, owner_url: str, settings: Settings,
) -> None:
    """Before a 400 (a missing required key) or a 422 (an invalid body) the caller is looked up,
    so that their own 401/403 comes first. That lookup is a courtesy: when it fails (here the
    app's role may not read users) the request's own refusal is the answer, not a 500, and
    the failure is logged once, by the one place that ignores it (`check_caller`)."""
    _, strict = await other_app(idempotency_required=True)
    role = settings.app_db_role
    # Straight on the loggers: the app's logging setup may have replaced the root's handlers.
    seen = Recorded()
    loggers = [logging.getLogger(name) for name in ("unifocus.writepath", "unifocus.errors")]
    for logger in loggers:
        logger.addHandler(seen)
    with psycopg.connect(owner_url, autocommit=True) as owner:
        owner.execute(f'REVOKE SELECT ON users FROM "{role}"')
        try:
            missing = await strict.req("POST", "/api/employees", tenant_a.manager, json=employee_body())
            invalid = await strict.req("POST", "/api/employees", tenant_a.manager, key=new_key(), json={})
        finally:
            owner.execute(f'GRANT SELECT ON users TO "{role}"')
            for logger in loggers:
                logger.removeHandler(seen)
    assert missing.status_code == 400 and problem_type(missing).endswith("/bad-request"), missing.text
    assert invalid.status_code == 422 and problem_type(invalid).endswith("/validation-failed"), invalid.text
    failed = [rec for rec in seen.records if rec.levelno >= logging.WARNING]
    assert [(rec.name, rec.getMessage()) for rec in failed] == [
        ("unifocus.writepath", "caller lookup before a refusal failed")] * 2
    assert all(rec.exc_info for rec in failed)


@pytest.mark.parametrize("path", [
    pytest.param("/api/punches", id="punches (two-statement write)"),
    pytest.param("/api/employees", id="employees (classic write)"),
])
async def test_a_key_belongs_to_its_user(api: Api, tenant_a: TenantFixture, owner_sql: psycopg.Connection,
                                         path: str) -> None:
    """Two users of one tenant who happen to send the same Idempotency-Key with the same body
    make two requests: the second is written, not answered with the first user's stored
    response (nor refused as a reuse)."""
    key = f"shared-{uuid.uuid4().hex}"
    if path == "/api/punches":
        body: dict[str, object] = {"employeeId": str(tenant_a.employee_id), "type": "clock_in",
                                   "timestamp": "2026-03-02T09:00:00-05:00"}
    else:
        body = employee_body()
    first = await api.req("POST", path, tenant_a.manager, key=key, json=body)
    second = await api.req("POST", path, tenant_a.admin, key=key, json=body)
    for r in (first, second):
        assert r.status_code == 201, r.text
        assert "idempotent-replayed" not in r.headers
    assert first.json()["id"] != second.json()["id"]
    stored = owner_sql.execute("SELECT count(*) FROM idempotency_records WHERE tenant_id = %s AND key = %s",
                               (tenant_a.id, key)).fetchone()
    assert stored == (2,)
