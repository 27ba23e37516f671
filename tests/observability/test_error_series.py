"""The error-rate and availability SLO rules read `unifocus_http_requests_total{status_class="5xx"}`
(deploy/prometheus/alerts.yml). A freshly started server already exposes that series at 0 for
every operation of its router (each route template x each of its methods), so the rules' error
input reads 0 on a healthy service instead of "no data", and the first 5xx after a restart is
an increase Prometheus can see (0 -> 1), not a series that appears at 1. Checked on a real
`unifocus serve`, with one worker (the default registry) and with two (multiprocess files)."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import TenantFixture, employee_insert_fails
from tests.serving import run_server

pytestmark = [pytest.mark.alerts, pytest.mark.slow]

REQUESTS = "unifocus_http_requests_total"
PROBES = {"/health", "/ready"}  # left out of both sides of the rules' ratios


def requests_by_labels(base: str) -> dict[tuple[str, str, str], float]:
    """(route, method, status_class) -> value of unifocus_http_requests_total, as scraped."""
    text = httpx.get(f"{base}/metrics", timeout=10).text
    return {
        (s.labels["route"], s.labels["method"], s.labels["status_class"]): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == REQUESTS
    }


def errors(series: dict[tuple[str, str, str], float]) -> dict[tuple[str, str], float]:
    return {(route, method): value for (route, method, cls), value in series.items() if cls == "5xx"}


@pytest.mark.parametrize("workers", [1, 2])
def test_5xx_series_exist_at_zero_from_start_and_count_the_first_error(
    owner_url: str, owner_sql: psycopg.Connection, tenant_a: TenantFixture, tmp_path: Path, workers: int
) -> None:
    with run_server(owner_url, tmp_path / "data", workers=workers) as server:
        fresh = requests_by_labels(server.url)
        # Nothing but the readiness polls has been answered: the rules' denominator (every
        # request but the probes) reads 0, so the pre-created series add nothing to it...
        assert sum(v for (route, _, _), v in fresh.items() if route not in PROBES) == 0, fresh
        # ...and the numerator is there, at 0, for every operation the server has.
        before = errors(fresh)
        paths = httpx.get(f"{server.url}/openapi.json", timeout=10).json()["paths"]
        operations = {(path, method.upper()) for path, ops in paths.items() for method in ops
                      if path not in PROBES and path != "/metrics"}
        assert ("/api/employees", "POST") in operations and ("/api/punches", "POST") in operations
        assert set(before) == operations, set(before) ^ operations  # no probe, no /metrics, no stray method
        assert set(before.values()) == {0.0}

        # An unexpected failure inside the database: the service's 500.
        marker = f"Fail{uuid.uuid4().hex[:8]}"
        with employee_insert_fails(owner_sql, marker):
            r = httpx.post(f"{server.url}/api/employees", timeout=10,
                           headers={"Authorization": f"Bearer {tenant_a.manager}"},
                           json={"firstName": marker, "lastName": "Failing"})
        assert r.status_code == 500, r.text

        after = errors(requests_by_labels(server.url))
        # The same series went 0 -> 1: no new 5xx series appeared, none other moved.
        assert set(after) == set(before)
        assert after[("/api/employees", "POST")] == 1
        assert {op: v for op, v in after.items() if v} == {("/api/employees", "POST"): 1}
