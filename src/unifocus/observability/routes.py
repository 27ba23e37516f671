"""GET /metrics: Prometheus text format; no auth unless UNIFOCUS_METRICS_TOKEN is set."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from starlette.responses import Response

from unifocus.errors import Unauthorized
from unifocus.observability import metrics

router = APIRouter(tags=["health"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus exposition format."},
               401: {"description": "UNIFOCUS_METRICS_TOKEN is set and the bearer token is wrong."}},
)
async def get_metrics(request: Request) -> Response:
    token = request.app.state.settings.metrics_token
    if token:
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise Unauthorized("This metrics endpoint needs its bearer token.")
    in_use, size = request.app.state.db.in_use()
    metrics.DB_POOL_CONNECTIONS_IN_USE.set(in_use)
    metrics.DB_POOL_CONNECTIONS_MAX.set(size)
    metrics.update_process_metrics()
    body, content_type = metrics.render_metrics()
    return Response(body, media_type=content_type)
