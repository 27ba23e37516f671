"""The request fingerprint's canonical query (unit tests, no database): names may be
reordered, the values of one repeated name may not, and fingerprints of queries without a
repeated name are exactly what they were before the canonical form changed."""

from __future__ import annotations

import hashlib
import random
import string
from urllib.parse import parse_qsl, quote, urlencode

import orjson
import pytest

from unifocus.idempotency.keys import canonical_query, fingerprint

pytestmark = pytest.mark.idempotency

PATH = "/api/punches/0b5f6a4e-2d7c-4c43-9a55-1f0e0c3e7a10"


def old_fingerprint(method: str, path: str, query: str, body: bytes) -> bytes:
    """The fingerprint as it was before, verbatim: the query sorted by (name, value)."""
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


@pytest.mark.parametrize(("query", "canonical"), [
    ("", ""),
    ("a=1", "a=1"),
    ("a=1&b=2", "a=1&b=2"),
    ("b=2&a=1", "a=1&b=2"),
    ("reason=A&reason=B", "reason=A&reason=B"),
    ("reason=B&reason=A", "reason=B&reason=A"),
    # Names sort, each name's values keep their order among themselves.
    ("b=2&a=3&b=1&a=1", "a=3&a=1&b=2&b=1"),
    ("z=9&a=b&a=a&m=&a=c", "a=b&a=a&a=c&m=&z=9"),
    # Encoding is normalised as before: %20 and + are one space, a bare name is a blank value.
    ("reason=wrong%20badge", "reason=wrong+badge"),
    ("reason=wrong+badge", "reason=wrong+badge"),
    ("flag&a=1", "a=1&flag="),
])
def test_canonical_query(query: str, canonical: str) -> None:
    assert canonical_query(query) == canonical


def test_reordered_repeated_values_are_another_request() -> None:
    """`?reason=A&reason=B` means reason B; `?reason=B&reason=A` means reason A."""
    first = fingerprint("DELETE", PATH, "reason=A&reason=B", b"")
    assert fingerprint("DELETE", PATH, "reason=B&reason=A", b"") != first
    assert fingerprint("DELETE", PATH, "reason=A&reason=B", b"") == first
    # Another name in between or around does not matter; the values' order does.
    assert fingerprint("DELETE", PATH, "x=1&reason=A&reason=B", b"") == fingerprint(
        "DELETE", PATH, "reason=A&x=1&reason=B", b"")
    assert fingerprint("DELETE", PATH, "x=1&reason=A&reason=B", b"") != fingerprint(
        "DELETE", PATH, "reason=B&x=1&reason=A", b"")


def test_differently_named_parameters_may_be_reordered() -> None:
    body = b'{"b": 1, "a": 2}'
    assert fingerprint("POST", "/api/employees", "a=1&b=2", body) == fingerprint(
        "POST", "/api/employees", "b=2&a=1", body)


BODIES = (b"", b'{"employeeId":"e","type":"clock_in"}', b'{ "type": "clock_in", "employeeId": "e" }',
          b"not json", b"[1, 2]")
FIXED_QUERIES = ("", "a=1", "b=2&a=1", "dryRun=1", "reason=wrong%20badge", "reason=wrong+badge",
                 "z=&a=1&m=x+y", "n=%C3%A9&e=%E2%82%AC", "=1&a=2", "flag", "flag&b=", "&&", "a=1&&b=2",
                 "B=1&a=2&_=3&%7E=4")


@pytest.mark.parametrize("query", FIXED_QUERIES)
@pytest.mark.parametrize("body", BODIES)
def test_without_repeated_names_the_fingerprint_is_unchanged(query: str, body: bytes) -> None:
    """Records stored before the change hold old fingerprints: for these queries (every one
    a retry may carry in flight over a deploy, empty included) they must match byte for byte."""
    names = [name for name, _ in parse_qsl(query, keep_blank_values=True)]
    assert len(names) == len(set(names))
    for method, path in (("POST", "/api/punches"), ("DELETE", PATH), ("PATCH", "/api/users/u")):
        assert fingerprint(method, path, query, body) == old_fingerprint(method, path, query, body)


def test_random_queries_without_repeated_names_fingerprint_as_before() -> None:
    rng = random.Random(20261130)
    alphabet = string.ascii_letters + string.digits + "-_.~ &=+%/é€"
    for _ in range(2000):
        names = list({"".join(rng.choices(alphabet, k=rng.randint(1, 6))) for _ in range(rng.randint(1, 6))})
        pairs = [(name, "".join(rng.choices(alphabet, k=rng.randint(0, 6)))) for name in names]
        rng.shuffle(pairs)
        query = "&".join(f"{quote(n, safe='')}={quote(v, safe='')}" for n, v in pairs)
        assert fingerprint("DELETE", PATH, query, b"") == old_fingerprint("DELETE", PATH, query, b"")


def test_repeated_names_in_sorted_value_order_fingerprint_as_before() -> None:
    """The only fingerprints that change: a repeated name whose values are out of order."""
    for query in ("reason=A&reason=B", "b=1&a=x&b=2", "a=&a=1"):
        assert fingerprint("DELETE", PATH, query, b"") == old_fingerprint("DELETE", PATH, query, b"")
    for query in ("reason=B&reason=A", "b=2&a=x&b=1"):
        assert fingerprint("DELETE", PATH, query, b"") != old_fingerprint("DELETE", PATH, query, b"")
