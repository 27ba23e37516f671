"""Audit entries are written by the write path: one per changed entity, in the write's
transaction, none on replays; a failing audit insert fails the whole write."""

from __future__ import annotations

import uuid

import httpx
import psycopg
import pytest

from tests.audit.util import create_employee, entries, rid
from tests.conftest import Api, TenantFixture

pytestmark = pytest.mark.audit

COUNT_EMPLOYEES = "SELECT count(*) FROM employees WHERE tenant_id = %s AND first_name = %s"


async def test_one_entry_per_changed_entity_with_actor_request_id_and_changes(
    api: Api, tenant_a: TenantFixture, owner_url: str
) -> None:
    r1, key = rid(), "create-" + uuid.uuid4().hex
    r = await create_employee(api, tenant_a.manager, "Ann", request_id=r1, key=key, externalId="E-1")
    assert r.status_code == 201, r.text
    assert r.headers["x-request-id"] == r1
    emp = r.json()
    [e] = entries(owner_url, tenant_a.id, "AND request_id = %s", r1)
    assert (e["entity"], e["action"], e["entity_id"]) == ("Employee", "created", uuid.UUID(emp["id"]))
    assert e["user_id"] == tenant_a.manager_id
    assert e["employee_id"] == uuid.UUID(emp["id"])
    assert e["changes"] == {"before": None, "after": emp}

    # A replay answers the stored response and audits nothing.
    total = len(entries(owner_url, tenant_a.id))
    again = await create_employee(api, tenant_a.manager, "Ann", request_id=rid(), key=key, externalId="E-1")
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert len(entries(owner_url, tenant_a.id)) == total

    # An update: before and after.
    r2 = rid()
    r = await api.req("PATCH", f"/api/employees/{emp['id']}", tenant_a.manager,
                      headers={"X-Request-ID": r2}, json={"lastName": "Smith"})
    assert r.status_code == 200, r.text
    [e] = entries(owner_url, tenant_a.id, "AND request_id = %s", r2)
    assert e["action"] == "updated"
    assert e["changes"]["before"]["lastName"] == "Lee" and e["changes"]["after"]["lastName"] == "Smith"

    # A patch that changes nothing changes no entity, so it adds no entry.
    r3 = rid()
    r = await api.req("PATCH", f"/api/employees/{emp['id']}", tenant_a.manager,
                      headers={"X-Request-ID": r3}, json={"lastName": "Smith"})
    assert r.status_code == 200
    assert entries(owner_url, tenant_a.id, "AND request_id = %s", r3) == []

    # A role change by the admin is audited with the admin as the actor.
    r4 = rid()
    r = await api.req("PATCH", f"/api/users/{tenant_a.employee_user_id}", tenant_a.admin,
                      headers={"X-Request-ID": r4}, json={"role": "manager"})
    assert r.status_code == 200, r.text
    [e] = entries(owner_url, tenant_a.id, "AND request_id = %s", r4)
    assert (e["entity"], e["action"], e["user_id"]) == ("User", "updated", tenant_a.admin_id)
    assert e["entity_id"] == tenant_a.employee_user_id
    assert (e["changes"]["before"]["role"], e["changes"]["after"]["role"]) == ("employee", "manager")

    # DELETE deactivates: audited as "deleted".
    r5 = rid()
    r = await api.req("DELETE", f"/api/employees/{emp['id']}", tenant_a.manager, headers={"X-Request-ID": r5})
    assert r.status_code == 204
    [e] = entries(owner_url, tenant_a.id, "AND request_id = %s", r5)
    assert e["action"] == "deleted" and e["changes"]["after"]["active"] is False


async def test_a_failed_write_audits_nothing(api: Api, tenant_a: TenantFixture, owner_url: str) -> None:
    r = await create_employee(api, tenant_a.manager, "Dup", externalId="X-1")
    assert r.status_code == 201
    before = len(entries(owner_url, tenant_a.id))
    r = await create_employee(api, tenant_a.manager, "Dup", externalId="X-1")
    assert r.status_code == 409
    assert len(entries(owner_url, tenant_a.id)) == before


async def test_failing_audit_insert_rolls_back_the_write(
    app_client: tuple[object, httpx.AsyncClient], tenant_a: TenantFixture, owner_url: str
) -> None:
    # Starlette re-raises after sending the 500; a client of our own takes the response.
    transport = httpx.ASGITransport(app=app_client[0], raise_app_exceptions=False)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        api = Api(client)
        suffix = uuid.uuid4().hex[:8]
        key, r1 = "fail-" + suffix, rid()
        with psycopg.connect(owner_url, autocommit=True) as owner:
            owner.execute(
                f"CREATE FUNCTION fail_audit_{suffix}() RETURNS trigger LANGUAGE plpgsql AS $$ "
                "BEGIN RAISE EXCEPTION 'audit sink refused the entry'; END $$"
            )
            owner.execute(
                f"CREATE TRIGGER zz_fail_audit_{suffix} BEFORE INSERT ON audit_log FOR EACH ROW "
                "WHEN (NEW.changes->'after'->>'firstName' = 'FAIL-AUDIT') "
                f"EXECUTE FUNCTION fail_audit_{suffix}()"
            )
            try:
                r = await create_employee(api, tenant_a.manager, "FAIL-AUDIT", request_id=r1, key=key)
                assert r.status_code == 500
                assert r.headers["content-type"].startswith("application/problem+json")
                assert "Traceback" not in r.text and "audit sink" not in r.text
                emps = owner.execute(COUNT_EMPLOYEES, (tenant_a.id, "FAIL-AUDIT")).fetchone()
                assert emps == (0,)
                assert entries(owner_url, tenant_a.id, "AND request_id = %s", r1) == []
                kept = owner.execute(
                    "SELECT count(*) FROM idempotency_records WHERE tenant_id = %s AND key = %s",
                    (tenant_a.id, key),
                ).fetchone()
                assert kept == (0,)
            finally:
                owner.execute(f"DROP TRIGGER zz_fail_audit_{suffix} ON audit_log")
                owner.execute(f"DROP FUNCTION fail_audit_{suffix}()")

            # The same key can be retried (5xx answers are not kept); the write happens once.
            r2 = rid()
            r = await create_employee(api, tenant_a.manager, "FAIL-AUDIT", request_id=r2, key=key)
            assert r.status_code == 201, r.text
            assert "idempotent-replayed" not in r.headers
            again = await create_employee(api, tenant_a.manager, "FAIL-AUDIT", request_id=rid(), key=key)
            assert again.headers.get("idempotent-replayed") == "true"
            emps = owner.execute(COUNT_EMPLOYEES, (tenant_a.id, "FAIL-AUDIT")).fetchone()
            assert emps == (1,)
            [e] = entries(owner_url, tenant_a.id, "AND changes->'after'->>'firstName' = 'FAIL-AUDIT'")
            assert e["request_id"] == r2
