"""The response guard (an entity of another tenant is never returned: a 500, a log line and a
count) and the access log (one JSON line per request with ids only; no token, no body)."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import httpx
import psycopg
import pytest
from prometheus_client import REGISTRY

from tests.conftest import Api, TenantFixture, employee_insert_fails
from unifocus.employees import service as employees

pytestmark = pytest.mark.alerts


def violations() -> float:
    return REGISTRY.get_sample_value("unifocus_tenant_scope_violations_total") or 0.0


async def test_a_row_of_another_tenant_becomes_a_500_a_log_line_and_a_count(
    api: Api, tenant_a: TenantFixture, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    created = await api.req("POST", "/api/employees", tenant_a.manager, json={"firstName": "Gu", "lastName": "Ard"})
    employee_id = created.json()["id"]
    # Force what RLS and tenant-named queries make impossible: the query answers a row that
    # claims another tenant.
    other = uuid.uuid4()
    forged = employees.COLUMNS.replace("tenant_id,", f"'{other}'::uuid AS tenant_id,", 1)
    monkeypatch.setattr(employees, "COLUMNS", forged)
    before = violations()
    with caplog.at_level(logging.ERROR, logger="unifocus.auth"):
        r = await api.req("GET", f"/api/employees/{employee_id}", tenant_a.manager)
    assert r.status_code == 500
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "Gu" not in r.text and employee_id not in r.text.replace(f"/api/employees/{employee_id}", "")
    assert violations() == before + 1
    assert any("tenant-scope violation" in rec.getMessage() for rec in caplog.records)


def _access_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [rec.msg for rec in caplog.records
            if rec.name == "unifocus.access" and isinstance(rec.msg, dict) and rec.msg.get("event") == "request"]


async def test_one_access_line_per_request_with_ids_and_no_secrets(
    api: Api, tenant_a: TenantFixture, caplog: pytest.LogCaptureFixture
) -> None:
    body = {"firstName": "Secretive", "lastName": "Body-Field"}
    with caplog.at_level(logging.INFO):
        r = await api.req("POST", "/api/employees", tenant_a.manager, json=body,
                          headers={"X-Request-ID": "trace-42"})
        generated = await api.req("GET", f"/api/employees/{r.json()['id']}", tenant_a.manager)
    assert r.headers["x-request-id"] == "trace-42"
    assert len(generated.headers["x-request-id"]) == 32  # generated when none was sent
    lines = _access_lines(caplog)
    assert [line["request_id"] for line in lines] == ["trace-42", generated.headers["x-request-id"]]
    first = lines[0]
    assert first["tenant_id"] == str(tenant_a.id)
    assert first["user_id"] == str(tenant_a.manager_id)
    assert first["route"] == "/api/employees" and first["method"] == "POST" and first["status"] == 201
    assert isinstance(first["duration_ms"], float)
    assert lines[1]["route"] == "/api/employees/{employee_id}"
    text = "\n".join(str(rec.msg) + rec.getMessage() for rec in caplog.records)
    assert tenant_a.manager not in text, "a token reached the logs"
    assert "Secretive" not in text and "Body-Field" not in text, "a request body reached the logs"


async def test_a_500_carries_the_request_id_and_nothing_internal(
    app_client: tuple[Any, httpx.AsyncClient], tenant_a: TenantFixture, owner_sql: psycopg.Connection,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An unexpected failure (a trigger that raises, as a broken dependency would) answers a
    problem+json 500 that carries X-Request-ID like every other answer, the one sent or the
    one generated, and the log line with the traceback names the same id, so the client's
    report can be matched to it. Nothing internal reaches the client."""
    marker = "Explode500"
    # Starlette re-raises after sending the 500; a client of our own takes the response.
    transport = httpx.ASGITransport(app=app_client[0], raise_app_exceptions=False)  # type: ignore[arg-type]
    with employee_insert_fails(owner_sql, marker):
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            api = Api(client)
            body = {"firstName": marker, "lastName": "Failing"}
            with caplog.at_level(logging.ERROR, logger="unifocus.errors"):
                sent = await api.req("POST", "/api/employees", tenant_a.manager, json=body,
                                     headers={"X-Request-ID": "trace-500"})
                generated = await api.req("POST", "/api/employees", tenant_a.manager, json=body)
    for r in (sent, generated):
        assert r.status_code == 500
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json() == {"type": "https://unifocus.dev/problems/internal-error", "title": "Internal Server Error",
                            "status": 500, "detail": "An unexpected error occurred.", "instance": "/api/employees"}
        for leak in ("Traceback", "injected", "RaiseError", "asyncpg", 'File "'):
            assert leak not in r.text
        # The server drops the connection after an unhandled error: the client is told so, and
        # does not send its next request into the closing socket.
        assert r.headers["connection"] == "close"
    assert sent.headers["x-request-id"] == "trace-500"
    request_id = generated.headers["x-request-id"]
    assert len(request_id) == 32  # generated when none was sent
    logged = [rec for rec in caplog.records if rec.name == "unifocus.errors" and rec.exc_info]
    assert ["trace-500" in logged[0].getMessage(), request_id in logged[1].getMessage()] == [True, True], logged
