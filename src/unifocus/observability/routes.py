"""GET /metrics: Prometheus text format; no auth unless UNIFOCUS_METRICS_TOKEN is set."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from starlette.responses import Response

from unifocus.errors import Unauthorized
from unifocus.observability import metrics
from unifocus.observability.process import refresh

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
        # The Bearer scheme is required, as Prometheus's `authorization` config sends it.
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            raise Unauthorized("This metrics endpoint needs its bearer token.")
    refresh(request.app.state.db)
    body, content_type = metrics.render_metrics()
    return Response(body, media_type=content_type)
