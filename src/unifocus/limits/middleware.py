"""Request limits, checked before any parsing: header size (431), body size (413), JSON nesting
depth and invalid UTF-8 (400), NUL characters (PostgreSQL text cannot hold them) and unpaired
UTF-16 surrogate escapes (text that is not Unicode: nothing can store, echo or log it) (422). A
client error is never a 500."""

from __future__ import annotations

import json
import re
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from unifocus.errors import AppError, BadRequest, HeadersTooLarge, PayloadTooLarge, ValidationFailed, problem_body
from unifocus.observability.middleware import CLIENT_GONE

_BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}

# The most header bytes (names and values) a request may carry: room for a bearer token of
# MAX_TOKEN_CHARS (auth/tokens.py) and a proxy's additions several times over. The server has
# read them already (httptools sets no bound); refusing here keeps what follows (the rate
# limiter, the auth dependency, the routes) from working through megabytes of headers.
MAX_HEADER_BYTES = 32 * 1024


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


# A JSON escape of a UTF-16 surrogate, \uD800-\uDFFF (hex digits in either case). Two of them
# in a row (high, low) are one character, e.g. an emoji; one alone is not a character at all.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")  # left in a parsed str: always unpaired


def lone_surrogate(body: bytes) -> str | None:
    """Where the JSON body holds a string (value or member name) with an unpaired surrogate
    escape: the field, as validation errors name it ("body" at the top); None when it holds
    none, or is not JSON (the route answers that). FastAPI's json.loads accepts such escapes
    and pydantic keeps them in untyped values, which then fail wherever text is encoded
    (the response, the database, the log): a 500. Cheap for every other body: a byte scan,
    then (only if an escape is there) orjson, which refuses unpaired surrogates; only what it
    refuses is parsed again, by json, and walked."""
    if b"\\u" not in body or _SURROGATE_ESCAPE.search(body) is None:
        return None
    try:
        orjson.loads(body)
        return None  # paired escapes only (or escaped backslashes)
    except orjson.JSONDecodeError:
        pass
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return None
    path = _unpaired_at(value, ())
    if path is None:
        return None
    return ".".join(str(p) for p in path) or "body"


def _unpaired_at(value: Any, path: tuple[str | int, ...]) -> tuple[str | int, ...] | None:
    """The path of the first string holding a surrogate (for a member name: its object's)."""
    if isinstance(value, str):
        return path if _SURROGATE.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            if _SURROGATE.search(key):
                return path
            found = _unpaired_at(item, (*path, key))
            if found is not None:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = _unpaired_at(item, (*path, i))
            if found is not None:
                return found
    return None


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
    field = lone_surrogate(body)  # after the depth check: its walk recurses
    if field is not None:
        return ValidationFailed(
            "Text in the body is not valid Unicode: it holds an unpaired UTF-16 surrogate escape.",
            errors=[{"field": field, "message": "contains an unpaired surrogate escape (\\uD800-\\uDFFF)"}])
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
        if sum(len(name) + len(value) for name, value in scope.get("headers", ())) > MAX_HEADER_BYTES:
            await self._refuse(scope, send, HeadersTooLarge(f"The request headers exceed {MAX_HEADER_BYTES} bytes."))
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
                scope.setdefault("state", {})[CLIENT_GONE] = True  # logged and counted as 499
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
