"""The Idempotency-Key header: syntax (contract section 4) and UNIFOCUS_IDEMPOTENCY_REQUIRED."""

from __future__ import annotations

import psycopg
import pytest

from tests.conftest import Api, TenantFixture
from tests.idempotency.conftest import (
    AppFactory,
    audit_entries,
    employee_body,
    employees_named,
    new_key,
    problem_type,
    records,
)

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
    ("quote in a bare key", b'ab"c'),
    ("unterminated quote", b'"abc'),
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
