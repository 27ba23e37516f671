"""The Idempotency-Key header (IETF draft) and the request fingerprint."""

from __future__ import annotations

import hashlib
from urllib.parse import parse_qsl, urlencode

import orjson
from starlette.requests import Request

from unifocus.errors import InvalidIdempotencyKey

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255


def _printable(text: str) -> bool:
    return all(0x20 <= ord(ch) <= 0x7E for ch in text)


def parse_key(request: Request) -> str | None:
    """The key, bare or as a structured-field string (`"abc"` == `abc`); 400 if malformed."""
    values = request.headers.getlist(HEADER)
    if not values:
        return None
    if len(values) > 1:
        raise InvalidIdempotencyKey("Send exactly one Idempotency-Key header.")
    raw = values[0].strip(" \t")
    if len(raw) >= 2 and raw[0] == '"' and raw[-1] == '"':
        key = _unquote(raw[1:-1])
    else:
        key = raw
        if '"' in key:
            raise InvalidIdempotencyKey("The Idempotency-Key is not a valid string.")
    if not key or len(key) > MAX_KEY_LENGTH or not _printable(key):
        raise InvalidIdempotencyKey(
            f"The Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII characters."
        )
    return key


def _unquote(inner: str) -> str:
    out: list[str] = []
    chars = iter(inner)
    for ch in chars:
        if ch == "\\":
            nxt = next(chars, "")
            if nxt not in ('"', "\\"):
                raise InvalidIdempotencyKey("The Idempotency-Key has an invalid escape.")
            out.append(nxt)
        elif ch == '"':
            raise InvalidIdempotencyKey("The Idempotency-Key has an unescaped quote.")
        else:
            out.append(ch)
    return "".join(out)


def fingerprint(method: str, path: str, query: str, body: bytes) -> bytes:
    """sha256 of method, path, sorted query and the canonical JSON body, so whitespace or key
    order never makes a retry look like another request."""
    canonical_query = urlencode(sorted(parse_qsl(query, keep_blank_values=True)))
    try:
        canonical_body = orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS) if body else b""
    except orjson.JSONDecodeError:
        canonical_body = body
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), canonical_query.encode(), canonical_body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.digest()
