"""The observability middleware labels requests by route template and status class, skips
/metrics in the counts, and echoes a request id on every answer."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

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


async def test_middleware_uses_route_templates_and_skips_metrics() -> None:
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
    # httpx over ASGI (Starlette's TestClient wants the httpx2 package): the app's 500 comes
    # back as a response, as a server would send it.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        first = await client.get("/api/items/1", headers={"X-Request-ID": "req-123"})
        assert first.status_code == 200 and first.headers["x-request-id"] == "req-123"
        odd = await client.get("/api/items/1", headers={"X-Request-ID": "bad id with spaces"})
        assert odd.headers["x-request-id"] not in ("", "bad id with spaces")
        assert (await client.get("/api/items/2")).status_code == 200
        assert (await client.get("/api/boom")).status_code == 500
        assert (await client.get("/nowhere")).status_code == 404
        assert (await client.get("/metrics")).status_code == 200

    assert _count("/api/items/{item_id}", "GET", "2xx") - before["item"] == 3
    assert _count("/api/boom", "GET", "5xx") - before["boom"] == 1
    assert _count("unmatched", "GET", "4xx") - before["unmatched"] == 1
    assert _count("/metrics", "GET", "2xx") - before["metrics"] == 0
    assert REGISTRY.get_sample_value("unifocus_http_requests_in_progress", {"method": "GET"}) == 0


async def test_a_client_gone_before_any_answer_is_499_not_a_server_error(
    app_client: tuple[Any, httpx.AsyncClient],
) -> None:
    """A body cut off mid-way (the client disconnects): nobody is answered, and the alerts'
    5xx rate must not count the client's going away as the service failing."""
    app = app_client[0]
    # Refused before routing, yet counted under the route the path names, not `unmatched`.
    before = {cls: _count("/api/punches", "POST", cls) for cls in ("4xx", "5xx")}
    chunks = [{"type": "http.request", "body": b'{"employeeId": ', "more_body": True}, {"type": "http.disconnect"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return chunks.pop(0) if chunks else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": "/api/punches", "raw_path": b"/api/punches", "query_string": b"",
             "root_path": "", "headers": [(b"content-type", b"application/json"), (b"content-length", b"200")],
             "client": ("127.0.0.1", 1234), "server": ("test", 80)}
    await app(scope, receive, send)
    assert sent == []  # nothing to answer: the client is gone
    assert _count("/api/punches", "POST", "5xx") == before["5xx"]
    assert _count("/api/punches", "POST", "4xx") == before["4xx"] + 1


async def test_requests_without_a_matched_route_are_labelled_with_the_template_their_path_matches(
    app_client: tuple[Any, httpx.AsyncClient], tenant_a: Any,
) -> None:
    """Refused before routing (a body too large), or answered by a plain Starlette route that
    puts no route in the scope (the OpenAPI document, the docs page, the 405 of
    `refuse_methods`): the template of the app's route the path matches. A path that matches
    no route (a 404) stays `unmatched`: the labels are still only the app's templates."""
    client = app_client[1]
    labels = {
        ("/api/employees", "POST", "4xx"): 1,
        ("/openapi.json", "GET", "2xx"): 1,
        ("/docs", "GET", "2xx"): 1,
        ("/api/punches/batch", "GET", "4xx"): 1,  # literal, not /api/punches/{punch_id}
        ("unmatched", "GET", "4xx"): 2,
        ("unmatched", "GET", "2xx"): 0,
    }
    before = {key: _count(*key) for key in labels}
    big = b'{"firstName": "' + b"x" * (1_048_576 + 10) + b'"}'
    r = await client.post("/api/employees", content=big, headers={
        "Authorization": f"Bearer {tenant_a.manager}", "Content-Type": "application/json"})
    assert r.status_code == 413, r.text
    assert (await client.get("/openapi.json")).status_code == 200
    assert (await client.get("/docs")).status_code == 200
    assert (await client.get("/api/punches/batch", headers={"Authorization": f"Bearer {tenant_a.manager}"})
            ).status_code == 405
    assert (await client.get("/nowhere")).status_code == 404
    assert (await client.get("/api/employees/")).status_code == 404  # a trailing slash is no route
    assert {key: _count(*key) - before[key] for key in labels} == labels


async def test_an_app_that_never_answers_is_a_500_not_a_client_gone() -> None:
    """No answer and no disconnect seen: the server sends a 500, so the metrics say 5xx."""

    async def silent(scope: dict[str, Any], receive: Any, send: Any) -> None:
        return None

    app = ObservabilityMiddleware(silent)  # type: ignore[arg-type]
    before = _count("unmatched", "GET", "5xx")

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        raise AssertionError("nothing is sent")

    await app({"type": "http", "method": "GET", "path": "/api/silent", "headers": []}, receive, send)
    assert _count("unmatched", "GET", "5xx") == before + 1


def test_status_class() -> None:
    assert [status_class(s) for s in (200, 301, 404, 503, 42)] == ["2xx", "3xx", "4xx", "5xx", "unknown"]
