"""The audit log is append-only for the service role and for the table's owner."""

from __future__ import annotations

import psycopg
import pytest

from tests.audit.util import create_employee, entries
from tests.conftest import Api, TenantFixture

pytestmark = pytest.mark.audit

CHANGES = [
    "UPDATE audit_log SET request_id = 'rewritten' WHERE tenant_id = %s",
    "DELETE FROM audit_log WHERE tenant_id = %s",
    "TRUNCATE audit_log",
]


@pytest.fixture()
async def audited(api: Api, tenant_a: TenantFixture, owner_url: str) -> TenantFixture:
    for name in ("One", "Two"):
        assert (await create_employee(api, tenant_a.manager, name)).status_code == 201
    return tenant_a


def _refused(url: str, tenant: TenantFixture, statement: str, as_app: bool) -> str:
    with psycopg.connect(url) as conn:  # not autocommit: whatever happens is rolled back
        try:
            if as_app:
                conn.execute("SELECT set_config('app.tenant_id', %s, false)", (str(tenant.id),))
                # The service role sees the tenant's entries, so a refusal is not "0 rows".
                seen = conn.execute("SELECT count(*) FROM audit_log WHERE tenant_id = %s",
                                    (tenant.id,)).fetchone()
                assert seen is not None and seen[0] >= 2
            params = (tenant.id,) if "%s" in statement else ()
            with pytest.raises(psycopg.errors.InsufficientPrivilege) as info:
                conn.execute(statement, params)
            return str(info.value)
        finally:
            conn.rollback()


@pytest.mark.parametrize("statement", CHANGES)
def test_service_role_cannot_change_entries(audited: TenantFixture, runtime_url: str, owner_url: str,
                                            statement: str) -> None:
    before = entries(owner_url, audited.id)
    message = _refused(runtime_url, audited, statement, as_app=True)
    assert "permission denied" in message
    assert entries(owner_url, audited.id) == before


@pytest.mark.parametrize("statement", CHANGES)
def test_owner_cannot_change_entries(audited: TenantFixture, owner_url: str, statement: str) -> None:
    before = entries(owner_url, audited.id)
    message = _refused(owner_url, audited, statement, as_app=False)
    assert "append-only" in message
    assert entries(owner_url, audited.id) == before


def test_service_role_has_only_select_and_insert(runtime_url: str, owner_url: str) -> None:
    with psycopg.connect(owner_url) as conn:
        role = conn.execute("SELECT current_setting('is_superuser')").fetchone()
        assert role is not None
        app_role = runtime_url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[0]
        privileges = {
            p: conn.execute("SELECT has_table_privilege(%s, 'audit_log', %s)", (app_role, p)).fetchone()[0]  # type: ignore[index]
            for p in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE")
        }
    assert privileges == {"SELECT": True, "INSERT": True, "UPDATE": False, "DELETE": False, "TRUNCATE": False}
