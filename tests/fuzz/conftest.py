"""One app for the fuzz run, driven by schemathesis in-process (its ASGI client enters the
app's lifespan in its own event-loop thread, so the pool lives where the requests run), and
one tenant with a row behind every kind of id."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from schemathesis.python import asgi

from tests.conftest import TenantFixture, make_settings, make_tenant
from unifocus.app import create_app


@dataclass
class FuzzEnv:
    schema: Any
    client: Any
    tenant: TenantFixture
    ids: dict[str, str] = field(default_factory=dict)

    def tokens(self) -> dict[str, str]:
        return {"admin": self.tenant.admin, "manager": self.tenant.manager, "employee": self.tenant.employee}


def seed(client: Any, t: TenantFixture) -> dict[str, str]:
    """Through the API: a schedule with a Monday shift, a late punch (which raises an
    exception) and a user; so fuzzed ids sometimes name real rows and 2xx answers get checked."""
    auth = {"Authorization": f"Bearer {t.manager}"}
    r = client.post("/api/schedules", headers=auth, json={
        "employeeId": str(t.employee_id), "name": "Fuzz", "startDate": "2026-03-01", "endDate": "2026-03-31",
        "shifts": [{"dayOfWeek": 1, "startTime": "09:00", "endTime": "17:00"}]})
    assert r.status_code == 201, r.text
    schedule = r.json()
    r = client.post("/api/punches", headers=auth, json={
        "employeeId": str(t.employee_id), "type": "clock_in", "timestamp": "2026-03-02T09:30:00-05:00"})
    assert r.status_code == 201, r.text
    punch = r.json()
    assert punch["exceptions"], punch
    r = client.post("/api/users", headers={"Authorization": f"Bearer {t.admin}"},
                    json={"email": f"fuzz-{uuid.uuid4().hex[:8]}@example.com", "role": "employee"})
    assert r.status_code == 201, r.text
    return {
        "employee_id": str(t.employee_id),
        "schedule_id": schedule["id"],
        "shift_id": schedule["shifts"][0]["id"],
        "punch_id": punch["id"],
        "exception_id": punch["exceptions"][0]["id"],
        "user_id": r.json()["id"],
    }


@pytest.fixture(scope="module")
def fuzz_env(owner_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzEnv]:
    data: Path = tmp_path_factory.mktemp("fuzz")
    settings = make_settings(owner_url, data, rate_limit_enabled=False)
    app = create_app(settings)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)  # enters the lifespan
    tenant = make_tenant(owner_url, settings)
    with asgi.get_client(app) as client:
        env = FuzzEnv(schema, client, tenant)
        env.ids = seed(client, tenant)
        yield env
    asgi.shutdown_lifespans()
