"""Every list route, paged one item at a time by following `nextCursor`, gives each item once,
in the order of a single page: no item repeated at a page boundary, none skipped, and the
last page says there is no next one. The routes are read from the OpenAPI document (every GET
with a `cursor` parameter), so a list route added later is paged here too."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api, TenantFixture, make_tenant
from unifocus.settings import Settings


@pytest.fixture()
async def seeded(api: Api, owner_url: str, settings: Settings) -> tuple[TenantFixture, dict[str, str]]:
    """A tenant of its own with at least two items in every list: employees, its three users,
    two schedules (the second with two shifts), four punches and the two late arrivals they
    raise, and the audit entries of all of it. Answers the tenant and the path parameters."""
    t = make_tenant(owner_url, settings)
    for n in range(2):
        r = await api.req("POST", "/api/employees", t.manager, json={"firstName": f"Pager{n}", "lastName": "Test"})
        assert r.status_code == 201, r.text
    schedules = []
    for start, end, days in (("2026-03-01", "2026-03-31", [1]), ("2026-04-01", "2026-04-30", [1, 2])):
        r = await api.req("POST", "/api/schedules", t.manager, json={
            "employeeId": str(t.employee_id), "name": f"Pager {start}", "startDate": start, "endDate": end,
            "shifts": [{"dayOfWeek": d, "startTime": "09:00", "endTime": "17:00"} for d in days]})
        assert r.status_code == 201, r.text
        schedules.append(r.json())
    for day in ("2026-03-02", "2026-03-09"):
        for kind, hhmm in (("clock_in", "09:30"), ("clock_out", "17:00")):
            r = await api.req("POST", "/api/punches", t.manager, json={
                "employeeId": str(t.employee_id), "type": kind, "timestamp": f"{day}T{hhmm}:00-05:00"})
            assert r.status_code == 201, r.text
    return t, {"schedule_id": schedules[1]["id"]}


def _list_paths(spec: dict[str, Any]) -> list[str]:
    return sorted(path for path, ops in spec["paths"].items()
                  if "get" in ops and any(p["name"] == "cursor" for p in ops["get"].get("parameters", [])))


async def test_every_list_route_pages_each_item_once(api: Api, seeded: tuple[TenantFixture, dict[str, str]]) -> None:
    t, params = seeded
    spec = (await api.req("GET", "/openapi.json")).json()
    paths = _list_paths(spec)
    assert len(paths) >= 7, paths  # punches, exceptions, schedules, shifts, employees, users, audit logs
    for template in paths:
        path = template.format(**params)
        whole = await api.req("GET", f"{path}?limit=500", t.admin)
        assert whole.status_code == 200, (path, whole.text)
        expected = [item["id"] for item in whole.json()["items"]]
        assert len(expected) >= 2, f"{path}: too few items to page ({len(expected)})"
        assert whole.json()["nextCursor"] is None
        paged: list[str] = []
        cursor: str | None = None
        for _ in range(len(expected) + 1):
            query = f"limit=1&cursor={cursor}" if cursor else "limit=1"
            page = await api.req("GET", f"{path}?{query}", t.admin)
            assert page.status_code == 200, (path, page.text)
            paged += [item["id"] for item in page.json()["items"]]
            cursor = page.json()["nextCursor"]
            if cursor is None:
                break
        assert paged == expected, f"{path}: paged one by one {paged}, in one page {expected}"
