"""Tenant isolation of timesheets: another tenant's employee is 404 and leaks nothing."""

from __future__ import annotations

import pytest

from tests.conftest import Api, TenantFixture
from tests.timesheets.support import IN, OUT, at, insert_punches, parse_csv, schedule

pytestmark = pytest.mark.tenants


async def test_other_tenants_employee_is_404_and_absent_from_the_export(
    api: Api, tenant_a: TenantFixture, tenant_b: TenantFixture, owner_sql
) -> None:
    emp_a = tenant_a.employee_id
    await schedule(api, tenant_a, emp_a, "2026-06-01", "2026-06-07", (1, "09:00", "17:00"))
    insert_punches(
        owner_sql,
        tenant_a,
        emp_a,
        [
            (IN, at("America/New_York", "2026-06-01", "09:00")),
            (OUT, at("America/New_York", "2026-06-01", "17:00")),
        ],
    )
    own = await api.req(
        "GET", f"/api/timesheets?employeeId={emp_a}&from=2026-06-01&to=2026-06-01", tenant_a.manager
    )
    assert own.status_code == 200 and own.json()["totals"]["workedMinutes"] == 480

    for token in (tenant_b.manager, tenant_b.admin):
        r = await api.req("GET", f"/api/timesheets?employeeId={emp_a}&from=2026-06-01&to=2026-06-07", token)
        assert r.status_code == 404
        assert r.headers["content-type"].startswith("application/problem+json")
        assert str(emp_a) not in r.text and str(tenant_a.id) not in r.text
        assert "Worker" not in r.text and "480" not in r.text
    # an employee of B naming A's employee: refused before any lookup
    r = await api.req(
        "GET", f"/api/timesheets?employeeId={emp_a}&from=2026-06-01&to=2026-06-07", tenant_b.employee
    )
    assert r.status_code == 403 and str(tenant_a.id) not in r.text

    export = await api.req("GET", "/api/timesheets/export?from=2026-06-01&to=2026-06-07", tenant_b.manager)
    assert export.status_code == 200
    assert {row["employee_id"] for row in parse_csv(export.text)} == {str(tenant_b.employee_id)}
    assert str(emp_a) not in export.text
