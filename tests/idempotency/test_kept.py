"""What is kept for a key (responses of requests whose handler ran) and what is not
(refusals before the handler, 5xx), so those can be retried with the same key."""

from __future__ import annotations

import asyncio
import uuid

import orjson
import psycopg
import pytest

from tests.conftest import Api, TenantFixture, employee_insert_fails, mint_token
from tests.idempotency.conftest import (
    AppFactory,
    audit_entries,
    employee_body,
    employees_named,
    new_key,
    problem_type,
    record,
    records,
)
from unifocus.settings import Settings

pytestmark = pytest.mark.idempotency


async def test_domain_404_is_stored_and_replayed(api: Api, tenant_a: TenantFixture,
                                                 owner_sql: psycopg.Connection) -> None:
    key, path = new_key(), f"/api/users/{uuid.uuid4()}"
    first = await api.req("PATCH", path, tenant_a.admin, key=key, json={"role": "manager"})
    assert first.status_code == 404, first.text
    assert problem_type(first).endswith("not-found")
    rec = record(owner_sql, tenant_a.id, key)
    assert rec is not None and rec[0] == 404 and bytes(rec[1]) == first.content
    again = await api.req("PATCH", path, tenant_a.admin, key=key, json={"role": "manager"})
    assert again.status_code == 404 and again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["content-type"] == first.headers["content-type"]
    # Kept means kept: another body with that key is a reuse.
    other = await api.req("PATCH", path, tenant_a.admin, key=key, json={"role": "admin"})
    assert other.status_code == 422 and problem_type(other).endswith("idempotency-key-reused")
    assert audit_entries(owner_sql, tenant_a.id) == 0


async def test_domain_409_is_stored_and_its_writes_rolled_back(api: Api, tenant_a: TenantFixture,
                                                               owner_sql: psycopg.Connection) -> None:
    ext = f"DUP-{uuid.uuid4().hex[:6]}"
    ok = await api.req("POST", "/api/employees", tenant_a.manager, key=new_key(),
                       json=employee_body(externalId=ext))
    assert ok.status_code == 201
    key, body = new_key(), employee_body(externalId=ext)
    dup = await api.req("POST", "/api/employees", tenant_a.manager, key=key, json=body)
    assert dup.status_code == 409, dup.text
    assert problem_type(dup).endswith("/conflict")
    rec = record(owner_sql, tenant_a.id, key)
    assert rec is not None and rec[0] == 409 and bytes(rec[1]) == dup.content
    # Even once the conflict is gone, the key answers the stored 409 (the handler ran).
    owner_sql.execute("UPDATE employees SET external_id = NULL WHERE tenant_id = %s AND external_id = %s",
                      (tenant_a.id, ext))
    again = await api.req("POST", "/api/employees", tenant_a.manager, key=key, json=body)
    assert again.status_code == 409 and again.content == dup.content
    assert again.headers["idempotent-replayed"] == "true"
    assert employees_named(owner_sql, tenant_a.id, body["firstName"]) == 0
    assert audit_entries(owner_sql, tenant_a.id) == 1


async def test_validation_422_is_not_stored(api: Api, tenant_a: TenantFixture,
                                            owner_sql: psycopg.Connection) -> None:
    key = new_key()
    bad = await api.req("POST", "/api/employees", tenant_a.manager, key=key, json={"firstName": ""})
    assert bad.status_code == 422, bad.text
    assert problem_type(bad).endswith("validation-failed")
    assert records(owner_sql, tenant_a.id) == 0
    fixed = employee_body()
    ok = await api.req("POST", "/api/employees", tenant_a.manager, key=key, json=fixed)
    assert ok.status_code == 201, ok.text
    assert "idempotent-replayed" not in ok.headers
    assert employees_named(owner_sql, tenant_a.id, fixed["firstName"]) == 1


async def test_malformed_json_400_is_not_stored(api: Api, tenant_a: TenantFixture,
                                                owner_sql: psycopg.Connection) -> None:
    key = new_key()
    headers = {"Authorization": f"Bearer {tenant_a.manager}", "Idempotency-Key": key,
               "content-type": "application/json"}
    bad = await api.client.post("/api/employees", content=b'{"firstName": ', headers=headers)
    assert bad.status_code == 400, bad.text
    assert records(owner_sql, tenant_a.id) == 0
    ok = await api.req("POST", "/api/employees", tenant_a.manager, key=key, json=employee_body())
    assert ok.status_code == 201


async def test_unsupported_media_type_415_is_not_stored(api: Api, tenant_a: TenantFixture,
                                                       owner_sql: psycopg.Connection) -> None:
    """Like a body that is not JSON (400): refused before the handler, so the key is free for
    the corrected request, on the punch fast path's route as on any other."""
    employee = employee_body()
    for path, body in (("/api/employees", employee),
                       ("/api/punches", {"employeeId": str(tenant_a.employee_id), "type": "clock_in",
                                         "timestamp": "2026-03-02T09:00:00-05:00"})):
        key = new_key()
        headers = {"Authorization": f"Bearer {tenant_a.manager}", "Idempotency-Key": key,
                   "content-type": "text/plain"}
        bad = await api.client.post(path, content=orjson.dumps(body), headers=headers)
        assert bad.status_code == 415, bad.text
        assert problem_type(bad).endswith("unsupported-media-type")
        assert record(owner_sql, tenant_a.id, key) is None
        ok = await api.req("POST", path, tenant_a.manager, key=key, json=body)
        assert ok.status_code == 201, ok.text
        assert "idempotent-replayed" not in ok.headers
    assert employees_named(owner_sql, tenant_a.id, employee["firstName"]) == 1


async def test_401_is_not_stored(api: Api, tenant_a: TenantFixture, owner_sql: psycopg.Connection,
                                 settings: Settings) -> None:
    """The token is valid but its user is not known yet (401); once the user exists, the same
    token and key run the request."""
    uid = uuid.uuid4()
    token = mint_token(settings, tenant_a.id, str(uid))
    key, body = new_key(), employee_body()
    r = await api.req("POST", "/api/employees", token, key=key, json=body)
    assert r.status_code == 401, r.text
    no_token = await api.req("POST", "/api/employees", None, key=key, json=body)
    assert no_token.status_code == 401
    assert records(owner_sql, tenant_a.id) == 0
    owner_sql.execute(
        "INSERT INTO users (tenant_id, id, email, role, subject) VALUES (%s, %s, %s, 'manager', %s)",
        (tenant_a.id, uid, f"late-{uid.hex[:6]}@example.com", str(uid)))
    ok = await api.req("POST", "/api/employees", token, key=key, json=body)
    assert ok.status_code == 201, ok.text
    assert "idempotent-replayed" not in ok.headers
    assert employees_named(owner_sql, tenant_a.id, body["firstName"]) == 1


async def test_403_is_not_stored(api: Api, tenant_a: TenantFixture, owner_sql: psycopg.Connection) -> None:
    """An employee may not create employees (403); promoted, the same token and key run."""
    key, body = new_key(), employee_body()
    r = await api.req("POST", "/api/employees", tenant_a.employee, key=key, json=body)
    assert r.status_code == 403, r.text
    assert records(owner_sql, tenant_a.id) == 0
    owner_sql.execute("UPDATE users SET role = 'manager' WHERE tenant_id = %s AND id = %s",
                      (tenant_a.id, tenant_a.employee_user_id))
    ok = await api.req("POST", "/api/employees", tenant_a.employee, key=key, json=body)
    assert ok.status_code == 201, ok.text
    assert "idempotent-replayed" not in ok.headers
    assert employees_named(owner_sql, tenant_a.id, body["firstName"]) == 1
    assert audit_entries(owner_sql, tenant_a.id) == 1


MARKER = "Explode"


async def test_5xx_is_not_stored_and_the_retry_writes_once(
    api_raw: Api, tenant_a: TenantFixture, owner_sql: psycopg.Connection
) -> None:
    key, body = new_key(), employee_body(first=MARKER)
    with employee_insert_fails(owner_sql, MARKER):
        for _ in range(2):
            r = await api_raw.req("POST", "/api/employees", tenant_a.manager, key=key, json=body)
            assert r.status_code == 500, r.text
            assert problem_type(r).endswith("internal-error")
            assert "idempotent-replayed" not in r.headers
            for leak in ("Traceback", "injected", "RaiseError", "asyncpg", 'File "'):
                assert leak not in r.text
        assert records(owner_sql, tenant_a.id) == 0
        assert employees_named(owner_sql, tenant_a.id, MARKER) == 0
        assert audit_entries(owner_sql, tenant_a.id) == 0
    ok = await api_raw.req("POST", "/api/employees", tenant_a.manager, key=key, json=body)
    assert ok.status_code == 201, ok.text
    assert "idempotent-replayed" not in ok.headers
    again = await api_raw.req("POST", "/api/employees", tenant_a.manager, key=key, json=body)
    assert again.headers["idempotent-replayed"] == "true" and again.content == ok.content
    assert employees_named(owner_sql, tenant_a.id, MARKER) == 1
    assert audit_entries(owner_sql, tenant_a.id) == 1


async def test_domain_answer_with_a_saturated_pool(other_app: AppFactory, tenant_a: TenantFixture,
                                                   owner_sql: psycopg.Connection) -> None:
    """Storing a domain answer must not need a second pooled connection while the first is
    still held: with one connection per worker (or every connection busy) that waited for
    the pool timeout and answered 503 instead of the 404."""
    _, small = await other_app(db_pool_max=1, db_timeout_seconds=2.0)
    key, path = new_key(), f"/api/users/{uuid.uuid4()}"
    r = await asyncio.wait_for(small.req("PATCH", path, tenant_a.admin, key=key, json={"active": False}), 10)
    assert r.status_code == 404, r.text
    again = await small.req("PATCH", path, tenant_a.admin, key=key, json={"active": False})
    assert again.status_code == 404 and again.headers["idempotent-replayed"] == "true"
    assert again.content == r.content
