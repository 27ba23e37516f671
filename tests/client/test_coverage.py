"""`unifocus.client` covers every operation of the service's OpenAPI document (README: "covers
every operation"): a route added without a client call fails here."""

from __future__ import annotations

import inspect
import re

from tests.tenancy.routes import APP
from unifocus.client import ops

PLACEHOLDER = "ID-0"
TEMPLATE = re.compile(r"{[^}]+}")


def _client_operations() -> set[tuple[str, str]]:
    """(METHOD, path with `{}` for ids) of every call the ops module builds."""
    found = set()
    for name, fn in inspect.getmembers(ops, inspect.isfunction):
        if fn.__module__ != ops.__name__ or name.startswith("_"):
            continue
        args = [PLACEHOLDER if "id" in p.name else {} for p in inspect.signature(fn).parameters.values()
                if p.default is inspect.Parameter.empty]
        call = fn(*args)
        found.add((call.method, call.path.replace(PLACEHOLDER, "{}")))
    return found


def test_every_documented_operation_has_a_client_call() -> None:
    documented = {(method.upper(), TEMPLATE.sub("{}", path))
                  for path, item in APP.openapi()["paths"].items()
                  for method in item if method in {"get", "post", "put", "patch", "delete"}}
    documented -= {("GET", "/docs"), ("GET", "/openapi.json")}  # for browsers, not API clients
    assert documented - _client_operations() == set()
