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
    grew = {op for op, n in after.items() if n > before.get(op, 0)}
    # BEGIN and COMMIT, the enter-and-read function, the folded last statement
    assert {"other", "select", "with"} <= grew, grew
    assert all(op == op.lower() for op in after), after
