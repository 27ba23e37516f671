"""The Idempotency-Key header (IETF draft) and the request fingerprint.

The fingerprint's query string is canonical up to the order of *different* names
(`a=1&b=2` is `b=2&a=1`), never of the values of one repeated name: `reason=A&reason=B`
means reason B to Starlette (the last value wins; a list parameter keeps the order), so it
must not match `reason=B&reason=A`. The pairs are stably sorted by name alone.

Stored fingerprints: until this canonical form, pairs were sorted by (name, value). For a
query whose names are all distinct, and for an empty query, the two orders are the same, so
those fingerprints are byte for byte unchanged (`tests/idempotency/test_fingerprint.py`
checks it against the old algorithm) and a deploy turns no live retry into a 422. Only a
query repeating a name with its values out of sorted order now fingerprints differently; a
retry of such a request, keyed before the deploy, gets 422 idempotency-key-reused until its
record expires, which is the answer the bug used to withhold.
"""

from __future__ import annotations

import hashlib
from operator import itemgetter
from urllib.parse import parse_qsl, urlencode

import orjson
from starlette.requests import Request

from unifocus.errors import InvalidIdempotencyKey

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
_NAME = itemgetter(0)


def _printable(text: str) -> bool:
    """Printable ASCII only, 0x20-0x7E: for ASCII text `isprintable` is exactly that range,
    checked in C rather than by a Python loop over every character of every key."""
    return text.isascii() and text.isprintable()


REPEATED = "Send exactly one Idempotency-Key header."


def parse_key(request: Request) -> str | None:
    """The key, bare or as a structured-field string (`"abc"` == `abc`; a value starting with
    `"` is the latter); 400 if malformed or repeated. A comma is printable ASCII, so part of a
    key (contract section 4): `k1, k2`, what a proxy may make of two header fields, is the one
    key "k1, k2", as it cannot be told from a client's key that holds ", " (`order-1, item-2`);
    two separate fields are 400."""
    values = request.headers.getlist(HEADER)
    if not values:
        return None
    if len(values) > 1:
        raise InvalidIdempotencyKey(REPEATED)
    raw = values[0].strip(" \t")
    # Only a value that starts with a quote is a structured-field string, and must be a well
    # formed one; any other is a bare key, whatever printable ASCII it holds (`a"b`: contract
    # section 4). One character compared, as cheap as before for the usual bare key.
    if raw[:1] == '"':
        if len(raw) < 2 or raw[-1] != '"':
            raise InvalidIdempotencyKey("The Idempotency-Key is not a valid string.")
        key = _unquote(raw[1:-1])
    else:
        key = raw
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


def canonical_query(query: str) -> str:
    """The query with its pairs stably sorted by name: names may move, the values of one
    repeated name keep their order (module docstring). `canonical_query("") == ""`."""
    return urlencode(sorted(parse_qsl(query, keep_blank_values=True), key=_NAME))


def fingerprint(method: str, path: str, query: str, body: bytes) -> bytes:
    """sha256 of method, path, canonical query and the canonical JSON body, so whitespace,
    JSON key order or the order of differently named parameters never makes a retry look
    like another request."""
    # The common write has no query at all: skip parsing it (urlencode([]) is "" anyway).
    query_part = canonical_query(query) if query else ""
    try:
        canonical_body = orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS) if body else b""
    except orjson.JSONDecodeError:
        canonical_body = body
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), query_part.encode(), canonical_body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.digest()
