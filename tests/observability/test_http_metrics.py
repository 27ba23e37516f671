"""The observability middleware labels requests by route template and status class, skips
/metrics in the counts, and echoes a request id on every answer."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from unifocus.observability.metrics import render_metrics, status_class
from unifocus.observability.middleware import ObservabilityMiddleware

pytestmark = pytest.mark.alerts


async def item(request: Request) -> Response:
    return PlainTextResponse(request.path_params["item_id"])


async def boom(request: Request) -> Response:
    raise RuntimeError("boom")


async def metrics(request: Request) -> Response:
    body, content_type = render_metrics()
    return Response(body, media_type=content_type)


def _count(route: str, method: str, cls: str) -> float:
    value = REGISTRY.get_sample_value(
        "unifocus_http_requests_total", {"route": route, "method": method, "status_class": cls}
    )
    return value or 0.0


def test_middleware_uses_route_templates_and_skips_metrics() -> None:
    app = Starlette(
        routes=[
            Route("/api/items/{item_id}", item),
            Route("/api/boom", boom),
            Route("/metrics", metrics),
        ]
    )
    app.add_middleware(ObservabilityMiddleware)
    before = {
        "item": _count("/api/items/{item_id}", "GET", "2xx"),
        "boom": _count("/api/boom", "GET", "5xx"),
        "unmatched": _count("unmatched", "GET", "4xx"),
        "metrics": _count("/metrics", "GET", "2xx"),
    }
    client = TestClient(app, raise_server_exceptions=False)
    first = client.get("/api/items/1", headers={"X-Request-ID": "req-123"})
    assert first.status_code == 200 and first.headers["x-request-id"] == "req-123"
    assert client.get("/api/items/1", headers={"X-Request-ID": "bad id with spaces"}).headers["x-request-id"] != ""
    assert client.get("/api/items/2").status_code == 200
    assert client.get("/api/boom").status_code == 500
    assert client.get("/nowhere").status_code == 404
    assert client.get("/metrics").status_code == 200

    assert _count("/api/items/{item_id}", "GET", "2xx") - before["item"] == 3
    assert _count("/api/boom", "GET", "5xx") - before["boom"] == 1
    assert _count("unmatched", "GET", "4xx") - before["unmatched"] == 1
    assert _count("/metrics", "GET", "2xx") - before["metrics"] == 0
    assert REGISTRY.get_sample_value("unifocus_http_requests_in_progress", {"method": "GET"}) == 0


def test_status_class() -> None:
    assert [status_class(s) for s in (200, 301, 404, 503, 42)] == ["2xx", "3xx", "4xx", "5xx", "unknown"]
