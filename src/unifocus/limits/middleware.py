"""Request limits, checked before any parsing: body size (413), JSON nesting depth, NUL
characters (PostgreSQL text cannot hold them) and invalid UTF-8 (400). A client error is
never a 500."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from unifocus.errors import AppError, BadRequest, PayloadTooLarge, ValidationFailed, problem_body

_BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def json_depth_exceeds(body: bytes, limit: int) -> bool:
    """Whether brackets nest deeper than `limit` outside strings. Cheap when the body holds
    fewer brackets than the limit (the usual case): then it cannot exceed it."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    depth = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            if depth > limit:
                return True
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return False


def check_body(body: bytes, max_depth: int) -> AppError | None:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return BadRequest("The request body is not valid UTF-8.")
    if b"\x00" in body or b"\\u0000" in body:
        return ValidationFailed("NUL characters are not allowed in text.",
                                errors=[{"field": "body", "message": "contains a NUL character"}])
    if json_depth_exceeds(body, max_depth):
        return BadRequest(f"The JSON body nests deeper than {max_depth} levels.")
    return None


class RequestLimitsMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int, max_json_depth: int) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.max_depth = max_json_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"")
        if b"%00" in query or b"\x00" in query:
            await self._refuse(scope, send, ValidationFailed(
                "NUL characters are not allowed in parameters.",
                errors=[{"field": "query", "message": "contains a NUL character"}]))
            return
        if scope.get("method") not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body:
            await self._refuse(scope, send, PayloadTooLarge(f"The body exceeds {self.max_body} bytes."))
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                await self._refuse(scope, send, PayloadTooLarge(f"The body exceeds {self.max_body} bytes."))
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        problem = check_body(body, self.max_depth) if body else None
        if problem is not None:
            await self._refuse(scope, send, problem)
            return
        await self.app(scope, replay_body(body, receive), send)

    @staticmethod
    async def _refuse(scope: Scope, send: Send, err: AppError) -> None:
        body = problem_body(err.status, err.slug, err.title, err.detail, scope.get("path"), err.errors)
        await send({"type": "http.response.start", "status": err.status, "headers": [
            (b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def replay_body(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the app a body already read, whole, then the client's messages
    (a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
