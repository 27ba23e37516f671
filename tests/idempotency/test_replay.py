"""Replay, reuse with another request, scope, and expiry (contract section 4)."""

from __future__ import annotations

import asyncio

import orjson
import psycopg
import pytest

from tests.conftest import Api, TenantFixture
from tests.idempotency.conftest import (
    AppFactory,
    audit_entries,
    employee_body,
    employees_named,
    expire,
    new_key,
    problem_type,
    record,
    records,
)

pytestmark = pytest.mark.idempotency

JSON_HEADERS = {"content-type": "application/json"}
CLAIM_AS_OWNER = ("INSERT INTO idempotency_records (tenant_id, user_id, method, path, key, fingerprint, "
                  "expires_at) VALUES (%s, %s, 'POST', '/api/employees', %s, %s, now() + interval '1 hour')")


async def test_replay_answers_the_original_byte_for_byte(api: Api, tenant_a: TenantFixture,
                                                         owner_sql: psycopg.Connection) -> None:
    key, body = new_key(), employee_body(externalId="EXT-1", email="ann@example.com")
    first = await api.req("POST", "/api/employees", tenant_a.manager, key=key, json=body)
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    emp_id = first.json()["id"]
    assert first.headers["location"] == f"/api/employees/{emp_id}"
    for _ in range(3):
        again = await api.req("POST", "/api/employees", tenant_a.manager, key=key, json=body)
        assert again.status_code == 201
        assert again.content == first.content
        assert again.headers["location"] == first.headers["location"]
        assert again.headers["content-type"] == first.headers["content-type"]
        assert again.headers["idempotent-replayed"] == "true"
    assert employees_named(owner_sql, tenant_a.id, body["firstName"]) == 1
    assert audit_entries(owner_sql, tenant_a.id) == 1
    assert records(owner_sql, tenant_a.id) == 1


async def test_canonical_json_is_the_same_fingerprint(api: Api, tenant_a: TenantFixture,
                                                      owner_sql: psycopg.Connection) -> None:
    key = new_key()
    compact = b'{"firstName":"Whitespace","lastName":"Order","externalId":"W-1"}'
    spaced = b'{\n  "externalId" : "W-1",\n\t"lastName": "Order",   "firstName":"Whitespace"\n}\n'
    auth = {"Authorization": f"Bearer {tenant_a.manager}", "Idempotency-Key": key, **JSON_HEADERS}
    first = await api.client.post("/api/employees", content=compact, headers=auth)
    assert first.status_code == 201, first.text
    again = await api.client.post("/api/employees", content=spaced, headers=auth)
    assert again.status_code == 201, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content
    # Query parameters in another order are the same request too.
    q_key = new_key()
    body = employee_body()
    a = await api.req("POST", "/api/employees?a=1&b=2", tenant_a.manager, key=q_key, json=body)
    b = await api.req("POST", "/api/employees?b=2&a=1", tenant_a.manager, key=q_key, json=body)
    assert a.status_code == b.status_code == 201
    assert b.headers["idempotent-replayed"] == "true" and b.content == a.content
    assert employees_named(owner_sql, tenant_a.id, "Whitespace") == 1
    assert employees_named(owner_sql, tenant_a.id, body["firstName"]) == 1
    assert audit_entries(owner_sql, tenant_a.id) == 2


async def test_replay_of_patch_and_delete(api: Api, tenant_a: TenantFixture,
                                          owner_sql: psycopg.Connection) -> None:
    key = new_key()
    path = f"/api/users/{tenant_a.employee_user_id}"
    first = await api.req("PATCH", path, tenant_a.admin, key=key, json={"role": "manager"})
    assert first.status_code == 200, first.text
    # Someone changes the user meanwhile: the replay still answers the original response.
    owner_sql.execute("UPDATE users SET role = 'employee' WHERE tenant_id = %s AND id = %s",
                      (tenant_a.id, tenant_a.employee_user_id))
    again = await api.req("PATCH", path, tenant_a.admin, key=key, json={"role": "manager"})
    assert again.status_code == 200 and again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    role = owner_sql.execute("SELECT role FROM users WHERE tenant_id = %s AND id = %s",
                             (tenant_a.id, tenant_a.employee_user_id)).fetchone()
    assert role == ("employee",)  # the replay wrote nothing

    dkey = new_key()
    d1 = await api.req("DELETE", f"/api/employees/{tenant_a.employee_id}", tenant_a.manager, key=dkey)
    assert d1.status_code == 204 and d1.content == b""
    d2 = await api.req("DELETE", f"/api/employees/{tenant_a.employee_id}", tenant_a.manager, key=dkey)
    assert d2.status_code == 204 and d2.content == b""
    assert d2.headers["idempotent-replayed"] == "true"
    assert audit_entries(owner_sql, tenant_a.id) == 2  # one User updated, one Employee deleted


async def test_same_key_with_another_body_or_query_is_422(api: Api, tenant_a: TenantFixture,
                                                          owner_sql: psycopg.Connection) -> None:
    key, body = new_key(), employee_body()
    first = await api.req("POST", "/api/employees", tenant_a.manager, key=key, json=body)
    assert first.status_code == 201
    other = employee_body()
    for method, path, payload in (
        ("POST", "/api/employees", other),
        ("POST", "/api/employees", {**body, "lastName": "Changed"}),
        ("POST", "/api/employees?dryRun=1", body),
    ):
        r = await api.req(method, path, tenant_a.manager, key=key, json=payload)
        assert r.status_code == 422, r.text
        assert problem_type(r).endswith("idempotency-key-reused")
        assert "idempotent-replayed" not in r.headers
    assert employees_named(owner_sql, tenant_a.id, other["firstName"]) == 0
    assert employees_named(owner_sql, tenant_a.id, body["firstName"]) == 1
    assert audit_entries(owner_sql, tenant_a.id) == 1
    # The record still holds the original: the right request still replays it.
    again = await api.req("POST", "/api/employees", tenant_a.manager, key=key, json=body)
    assert again.headers["idempotent-replayed"] == "true" and again.content == first.content


def _void_state(owner_sql: psycopg.Connection, tenant_id: object, punch_id: str) -> tuple[object, ...]:
    row = owner_sql.execute("SELECT voided, void_reason, voided_at, voided_by FROM punches "
                            "WHERE tenant_id = %s AND id = %s", (tenant_id, punch_id)).fetchone()
    assert row is not None
    return tuple(row)


async def test_reordered_repeated_query_parameter_is_422(api: Api, tenant_a: TenantFixture,
                                                         owner_sql: psycopg.Connection) -> None:
    """`?reason=A&reason=B` is reason B (the last value wins), `?reason=B&reason=A` reason A:
    the same key with the values swapped is another request, not a replay."""
    created = await api.req("POST", "/api/punches", tenant_a.employee, json={
        "employeeId": str(tenant_a.employee_id), "type": "clock_in", "timestamp": "2026-03-02T09:00:00-05:00"})
    assert created.status_code == 201, created.text
    punch_id = created.json()["id"]
    path, key = f"/api/punches/{punch_id}", new_key()

    first = await api.req("DELETE", f"{path}?reason=A&reason=B&note=1", tenant_a.manager, key=key)
    assert first.status_code == 204, first.text
    state = _void_state(owner_sql, tenant_a.id, punch_id)
    assert state[:2] == (True, "B")
    audits, rec = audit_entries(owner_sql, tenant_a.id), record(owner_sql, tenant_a.id, key)
    assert rec is not None

    for swapped_query in ("reason=B&reason=A&note=1", "note=1&reason=B&reason=A"):
        swapped = await api.req("DELETE", f"{path}?{swapped_query}", tenant_a.manager, key=key)
        assert swapped.status_code == 422, (swapped_query, swapped.text)
        assert problem_type(swapped).endswith("idempotency-key-reused")
        assert "idempotent-replayed" not in swapped.headers
    # Nothing changed: the punch, the audit log, the stored record.
    assert _void_state(owner_sql, tenant_a.id, punch_id) == state
    assert audit_entries(owner_sql, tenant_a.id) == audits
    assert record(owner_sql, tenant_a.id, key) == rec
    assert records(owner_sql, tenant_a.id) == 1

    # The same request still replays, also with the other name moved around reason's values.
    for query in ("reason=A&reason=B&note=1", "note=1&reason=A&reason=B", "reason=A&note=1&reason=B"):
        again = await api.req("DELETE", f"{path}?{query}", tenant_a.manager, key=key)
        assert again.status_code == 204, (query, again.text)
        assert again.headers["idempotent-replayed"] == "true"
    assert _void_state(owner_sql, tenant_a.id, punch_id) == state
    assert audit_entries(owner_sql, tenant_a.id) == audits


async def test_same_key_on_another_path_or_method_is_another_request(
    api: Api, tenant_a: TenantFixture, owner_sql: psycopg.Connection
) -> None:
    """Scope is (tenant, user, key, method + path): elsewhere the key is independent."""
    key = new_key()
    created = await api.req("POST", "/api/employees", tenant_a.manager, key=key, json=employee_body())
    assert created.status_code == 201
    emp = created.json()["id"]
    patched = await api.req("PATCH", f"/api/employees/{emp}", tenant_a.manager, key=key,
                            json={"lastName": "Patched"})
    assert patched.status_code == 200, patched.text
    assert "idempotent-replayed" not in patched.headers
    deleted = await api.req("DELETE", f"/api/employees/{emp}", tenant_a.manager, key=key)
    assert deleted.status_code == 204, deleted.text
    assert audit_entries(owner_sql, tenant_a.id) == 3
    assert records(owner_sql, tenant_a.id) == 3


async def test_same_key_from_another_user_or_tenant_is_independent(
    api: Api, tenant_a: TenantFixture, tenant_b: TenantFixture, owner_sql: psycopg.Connection
) -> None:
    key, body = "shared-key", employee_body(first="Shared")
    responses = [await api.req("POST", "/api/employees", token, key=key, json=body)
                 for token in (tenant_a.manager, tenant_a.admin, tenant_b.manager)]
    for r in responses:
        assert r.status_code == 201, r.text
        assert "idempotent-replayed" not in r.headers
    assert len({r.json()["id"] for r in responses}) == 3
    assert employees_named(owner_sql, tenant_a.id, "Shared") == 2
    assert employees_named(owner_sql, tenant_b.id, "Shared") == 1
    assert audit_entries(owner_sql, tenant_a.id) == 2 and audit_entries(owner_sql, tenant_b.id) == 1
    # Each caller replays their own response.
    for token, original in zip((tenant_a.manager, tenant_a.admin, tenant_b.manager), responses, strict=True):
        again = await api.req("POST", "/api/employees", token, key=key, json=body)
        assert again.headers["idempotent-replayed"] == "true" and again.content == original.content


async def test_expired_key_runs_again_before_cleanup(api: Api, tenant_a: TenantFixture,
                                                     owner_sql: psycopg.Connection) -> None:
    key, body = new_key(), employee_body()
    first = await api.req("POST", "/api/employees", tenant_a.manager, key=key, json=body)
    assert first.status_code == 201
    expire(owner_sql, tenant_a.id, key)
    second = await api.req("POST", "/api/employees", tenant_a.manager, key=key, json=body)
    assert second.status_code == 201, second.text
    assert "idempotent-replayed" not in second.headers
    assert second.json()["id"] != first.json()["id"]
    assert employees_named(owner_sql, tenant_a.id, body["firstName"]) == 2
    assert audit_entries(owner_sql, tenant_a.id) == 2
    rec = record(owner_sql, tenant_a.id, key)
    assert rec is not None and bytes(rec[1]) == second.content
    assert rec[2]["location"] == second.headers["location"]
    assert records(owner_sql, tenant_a.id) == 1
    third = await api.req("POST", "/api/employees", tenant_a.manager, key=key, json=body)
    assert third.headers["idempotent-replayed"] == "true" and third.content == second.content
    # After expiry the key may also carry another request.
    expire(owner_sql, tenant_a.id, key)
    other = employee_body()
    fourth = await api.req("POST", "/api/employees", tenant_a.manager, key=key, json=other)
    assert fourth.status_code == 201, fourth.text
    assert employees_named(owner_sql, tenant_a.id, other["firstName"]) == 1


async def test_expired_key_with_a_tiny_ttl(other_app: AppFactory, tenant_a: TenantFixture,
                                           owner_sql: psycopg.Connection) -> None:
    _, short = await other_app(idempotency_ttl_hours=0.5 / 3600)
    key, body = new_key(), employee_body()
    first = await short.req("POST", "/api/employees", tenant_a.manager, key=key, json=body)
    assert first.status_code == 201
    await asyncio.sleep(0.7)
    second = await short.req("POST", "/api/employees", tenant_a.manager, key=key, json=body)
    assert second.status_code == 201 and "idempotent-replayed" not in second.headers
    assert employees_named(owner_sql, tenant_a.id, body["firstName"]) == 2
    rec = record(owner_sql, tenant_a.id, key)
    assert rec is not None and bytes(rec[1]) == second.content


async def test_expired_key_whose_rerun_is_a_domain_error_answers_the_new_error(
    api: Api, tenant_a: TenantFixture, owner_sql: psycopg.Connection
) -> None:
    """Past the window the request runs again; if it now ends in a kept domain error (the
    externalId exists: the first run created it), that error is the answer and is stored,
    not the stale 201 of the expired record."""
    key, body = new_key(), employee_body(externalId="ONCE")
    first = await api.req("POST", "/api/employees", tenant_a.manager, key=key, json=body)
    assert first.status_code == 201
    expire(owner_sql, tenant_a.id, key)
    second = await api.req("POST", "/api/employees", tenant_a.manager, key=key, json=body)
    assert second.status_code == 409, second.text
    assert "idempotent-replayed" not in second.headers
    assert problem_type(second).endswith("/conflict")
    rec = record(owner_sql, tenant_a.id, key)
    assert rec is not None and rec[0] == 409 and bytes(rec[1]) == second.content
    third = await api.req("POST", "/api/employees", tenant_a.manager, key=key, json=body)
    assert third.status_code == 409 and third.headers["idempotent-replayed"] == "true"
    assert third.content == second.content
    assert employees_named(owner_sql, tenant_a.id, body["firstName"]) == 1


async def test_in_flight_duplicate_waits_for_the_original(
    api: Api, tenant_a: TenantFixture, owner_url: str, owner_sql: psycopg.Connection
) -> None:
    """A duplicate arriving while the original holds the claim gets the original's response
    once it commits; if the original outlives the wait, 409 in progress with Retry-After."""
    from unifocus.idempotency.keys import fingerprint

    key = new_key()
    payload = orjson.dumps(employee_body())
    fp = fingerprint("POST", "/api/employees", "", payload)
    headers = {"Authorization": f"Bearer {tenant_a.manager}", "Idempotency-Key": key, **JSON_HEADERS}
    stored_body = b'{"stored":"by the original"}'
    with psycopg.connect(owner_url) as original:  # a transaction, like an in-flight request
        original.execute(
            CLAIM_AS_OWNER,
            (tenant_a.id, tenant_a.manager_id, key, fp))
        duplicate = asyncio.create_task(api.client.post("/api/employees", content=payload, headers=headers))
        await asyncio.sleep(0.5)
        assert not duplicate.done()
        original.execute(
            "UPDATE idempotency_records SET status_code = 201, headers = %s, body = %s "
            "WHERE tenant_id = %s AND key = %s",
            (orjson.dumps({"content-type": "application/json", "location": "/api/employees/x"}).decode(),
             stored_body, tenant_a.id, key))
        original.commit()
        r = await duplicate
    assert r.status_code == 201 and r.content == stored_body
    assert r.headers["idempotent-replayed"] == "true" and r.headers["location"] == "/api/employees/x"

    key2 = new_key()
    fp2 = fingerprint("POST", "/api/employees", "", payload)
    headers["Idempotency-Key"] = key2
    with psycopg.connect(owner_url) as original:
        original.execute(
            CLAIM_AS_OWNER,
            (tenant_a.id, tenant_a.manager_id, key2, fp2))
        slow = await api.client.post("/api/employees", content=payload, headers=headers)
        assert slow.status_code == 409, slow.text
        assert problem_type(slow).endswith("idempotency-request-in-progress")
        assert int(slow.headers["retry-after"]) >= 1
        original.rollback()  # the original failed: the key is free again
    retry = await api.client.post("/api/employees", content=payload, headers=headers)
    assert retry.status_code == 201, retry.text
    assert "idempotent-replayed" not in retry.headers
    assert employees_named(owner_sql, tenant_a.id, orjson.loads(payload)["firstName"]) == 1


async def test_a_claim_waiting_on_anything_but_its_key_is_503(
    other_app: AppFactory, tenant_a: TenantFixture, owner_url: str, owner_sql: psycopg.Connection
) -> None:
    """Only the key's own claim waiting on its original is "in progress" (409). The claim also
    locks the tenant's row (its foreign key) and waits while a change of the tenant's settings
    holds it: past the wait that is a busy dependency, 503 with Retry-After, and nothing is
    kept for the key, so the retry writes once."""
    _, quick = await other_app(idempotency_wait_seconds=0.3)
    key, body = new_key(), employee_body()
    with psycopg.connect(owner_url) as holder:  # as a PATCH /api/tenant in flight
        holder.execute("SELECT 1 FROM tenants WHERE tenant_id = %s FOR UPDATE", (tenant_a.id,))
        busy = await quick.req("POST", "/api/employees", tenant_a.manager, key=key, json=body)
        holder.rollback()
    assert busy.status_code == 503, busy.text
    assert problem_type(busy).endswith("/service-unavailable") and busy.headers["retry-after"] == "1"
    assert record(owner_sql, tenant_a.id, key) is None
    retry = await quick.req("POST", "/api/employees", tenant_a.manager, key=key, json=body)
    assert retry.status_code == 201 and "idempotent-replayed" not in retry.headers, retry.text
    assert employees_named(owner_sql, tenant_a.id, body["firstName"]) == 1
    assert audit_entries(owner_sql, tenant_a.id) == 1
