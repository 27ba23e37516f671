"""Rate limits on /api (never on /health, /ready, /metrics). The token is verified here once
and the identity handed to the auth dependency, so a request pays for one verification."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from unifocus.auth.tokens import SigningKeysUnavailable, TokenError, TokenVerifier
from unifocus.errors import RateLimited, problem_body
from unifocus.observability import hooks
from unifocus.ratelimit.buckets import RateLimiter


def bearer_token(scope: Scope) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" and token.strip() else None
    return None


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, limiter: RateLimiter, verifier: TokenVerifier) -> None:
        self.app = app
        self.limiter = limiter
        self.verifier = verifier

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope.get("path", "").startswith("/api/"):
            await self.app(scope, receive, send)
            return
        token = bearer_token(scope)
        if token is None:
            await self.app(scope, receive, send)
            return
        try:
            identity = await self.verifier.verify_async(token)
        except (TokenError, SigningKeysUnavailable):
            # The auth dependency answers: 401, or 503 when the issuer's keys cannot be fetched
            # (the verifier remembers the failure, so it does not wait on the issuer twice).
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})["verified"] = (token, identity)
        decision = await self.limiter.take(str(identity.tenant_id), identity.subject)
        headers = [
            (b"ratelimit-limit", str(decision.limit).encode()),
            (b"ratelimit-remaining", str(decision.remaining).encode()),
            (b"ratelimit-reset", str(decision.reset_seconds).encode()),
        ]
        # Also for the catch-all 500 handler, which Starlette runs outside this middleware.
        scope["state"]["ratelimit_headers"] = headers
        if not decision.allowed:
            hooks.rate_limited(decision.scope)
            err = RateLimited(f"Too many requests for this {decision.scope}; retry after {decision.retry_after} s.")
            body = problem_body(err.status, err.slug, err.title, err.detail, scope.get("path"))
            await send({"type": "http.response.start", "status": 429, "headers": [
                (b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(decision.retry_after).encode()), *headers]})
            await send({"type": "http.response.body", "body": body})
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)
