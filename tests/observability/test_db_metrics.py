"""Database time by statement kind: what a punch sends is counted, under the lower-case label
values the metric's help names (dashboards and alert tests group by them)."""

from __future__ import annotations

from prometheus_client import REGISTRY

from tests.conftest import Api, TenantFixture
from tests.punches.test_punches import MONDAY, punch


def counts() -> dict[str, float]:
    out: dict[str, float] = {}
    for metric in REGISTRY.collect():
        if metric.name == "unifocus_db_query_duration_seconds":
            for sample in metric.samples:
                if sample.name.endswith("_count"):
                    out[sample.labels["operation"]] = sample.value
    return out


async def test_a_punch_is_counted_by_statement_kind(api: Api, tenant_a: TenantFixture) -> None:
    before = counts()
    r = await punch(api, tenant_a, "clock_in", f"{MONDAY}T09:00:00-05:00")
    assert r.status_code == 201, r.text
    after = counts()
    # the two statements of a punch: unifocus_read_punch, then unifocus_write_punch
    assert after["select"] - before.get("select", 0) >= 2, (before, after)
    # a void runs in a transaction: BEGIN and COMMIT are "other", the punch's row an update
    voided = await api.req("DELETE", f"/api/punches/{r.json()['id']}?reason=test", tenant_a.manager)
    assert voided.status_code == 204, voided.text
    final = counts()
    grew = {op for op, n in final.items() if n > after.get(op, 0)}
    assert {"other", "select", "update"} <= grew, grew
    assert all(op == op.lower() for op in final), final
