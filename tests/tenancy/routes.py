"""The app's operations, enumerated once at collection time, and how to call any of them
with ids filled in: so a route added later is probed without anyone editing a list.

They are read from the app's own OpenAPI document (built from app.routes): the contract
requires every operation to be documented there, and it is the stable, public view of the
route table (FastAPI's included routers are lazy internals)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

from tests.conftest import JWT_SECRET, Api
from unifocus.app import create_app
from unifocus.settings import Settings

# Never connects: only its route table is read.
APP = create_app(Settings(database_url="postgresql://unused@127.0.0.1:1/unused", jwt_secret=JWT_SECRET, redis_url=None,
                          scheduler_enabled=False, rate_limit_enabled=False))

# Bodies that are valid for the route, so the request reaches the handler (an invalid body
# would be refused with 422 before the id is ever looked up, and prove nothing). Routes not
# listed get `{}`; if that is not valid for a new route, its probe fails and says so.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("PATCH", "/api/users/{user_id}"): {"role": "employee", "active": False},
    ("PATCH", "/api/employees/{employee_id}"): {"firstName": "Mallory", "externalId": "MALLORY"},
    ("POST", "/api/schedules/{schedule_id}/shifts"): {"dayOfWeek": 2, "startTime": "09:00", "endTime": "17:00"},
    ("PUT", "/api/exceptions/{exception_id}/resolve"): {"status": "approved", "note": "probe"},
}
QUERY_VALUES = {"reason": "cross-tenant probe", "from": "2026-01-05", "to": "2026-01-12"}
PARAM = re.compile(r"{(\w+)(?::\w+)?}")


HTTP_METHODS = {"get", "post", "put", "patch", "delete"}


def all_operations() -> list[tuple[str, str]]:
    """(METHOD, path template) of every /api operation."""
    return sorted(
        (method.upper(), path)
        for path, item in APP.openapi()["paths"].items()
        if path.startswith("/api")
        for method in item
        if method in HTTP_METHODS
    )


def operations(with_ids: bool) -> list[tuple[str, str]]:
    """Every /api operation with (or without) a path parameter."""
    return [(m, p) for m, p in all_operations() if bool(PARAM.search(p)) == with_ids]


def path_params(path: str) -> list[str]:
    return PARAM.findall(path)


def required_query(method: str, path: str, fallback_id: uuid.UUID) -> dict[str, str]:
    """A value for every required query parameter (ids get `fallback_id`)."""
    operation = APP.openapi()["paths"][path][method.lower()]
    out: dict[str, str] = {}
    for param in operation.get("parameters", []):
        if param["in"] == "query" and param.get("required"):
            name = param["name"]
            out[name] = QUERY_VALUES.get(name, str(fallback_id) if name.lower().endswith("id") else "x")
    return out


async def call(api: Api, token: str, method: str, path: str, values: Mapping[str, object],
               fallback_id: uuid.UUID) -> Any:
    url = PARAM.sub(lambda m: str(values[m.group(1)]), path)
    body = BODIES.get((method, path), {}) if method in ("POST", "PUT", "PATCH") else None
    return await api.req(method, url, token, json=body, params=required_query(method, path, fallback_id))
