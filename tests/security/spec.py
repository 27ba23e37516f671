"""The app's OpenAPI document, read once at collection time without a database, and the
operations derived from it: so a route added later is fuzzed and attacked without anyone
editing a list here."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from tests.conftest import JWT_SECRET
from unifocus.app import create_app
from unifocus.settings import Settings

HTTP_METHODS = ("get", "put", "post", "patch", "delete")
PATH_PARAM = re.compile(r"{(\w+)}")


@cache
def document() -> dict[str, Any]:
    # Never connects: only the route table is read.
    app = create_app(Settings(database_url="postgresql://unused@127.0.0.1:1/unused", jwt_secret=JWT_SECRET,
                              scheduler_enabled=False, rate_limit_enabled=False))
    return app.openapi()


def operations() -> list[tuple[str, str, dict[str, Any]]]:
    """(METHOD, path template, operation object) of every documented operation."""
    return sorted(
        ((method.upper(), path, op) for path, item in document()["paths"].items()
         for method, op in item.items() if method in HTTP_METHODS),
        key=lambda t: (t[1], t[0]),
    )


def parameters(op: dict[str, Any], where: str) -> list[dict[str, Any]]:
    return [p for p in op.get("parameters", []) if p["in"] == where]


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref:
        return resolve(document()["components"]["schemas"][ref.rsplit("/", 1)[-1]])
    return schema


def is_plain_string(schema: dict[str, Any]) -> bool:
    """A free-form string (no format, no enum): where arbitrary text reaches the handler."""
    for option in schema.get("anyOf", [schema]):
        option = resolve(option)
        if option.get("type") == "string" and "format" not in option and "enum" not in option:
            return True
    return False


def id_operations() -> list[tuple[str, str, dict[str, Any]]]:
    """Every operation taking an id in its path."""
    return [(m, p, op) for m, p, op in operations() if PATH_PARAM.search(p)]


def label(method: str, path: str) -> str:
    return f"{method} {path}"
