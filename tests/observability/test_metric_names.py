"""Every metric an alert or dashboard panel queries is one the application exports."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import REGISTRY

import unifocus.observability.metrics  # noqa: F401  (registers the metrics)
from tests.observability._rules import GRAFANA, ROOT, load_rules, recording_rule_names

pytestmark = pytest.mark.alerts

# Metrics that come from outside the application, each with its source.
EXTERNAL = {
    "up",  # synthesized by Prometheus for every scrape target
    # node_exporter (disk free; the app cannot see the DB volume): DiskFree*, and
    # NodeExporterMissing, the absent() guard on the same series
    "node_filesystem_avail_bytes",
    "node_filesystem_size_bytes",
    # kube-state-metrics: the CronJobs' Job pods are not scraped (BackupStale, AuditExportStale)
    "kube_cronjob_status_last_successful_time",
    "kube_cronjob_created",
    # Monitoring of the monitoring (the unifocus-monitoring group): Alertmanager's and
    # Prometheus's own metrics, scraped by the `alertmanager` and `prometheus` jobs
    "alertmanager_notifications_failed_total",
    "prometheus_rule_evaluation_failures_total",
    "prometheus_config_last_reload_successful",
}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "offset", "bool"}
SUFFIXES = ("_bucket", "_sum", "_count", "_created")


def metric_names(expr: str) -> set[str]:
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    expr = re.sub(r"\{[^}]*\}", " ", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", " ", expr)  # range / subquery selectors, $__rate_interval
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    expr = re.sub(r"\boffset\s+\w+", " ", expr)
    expr = re.sub(r"(?<![\w:])\d+(?:\.\d+)?(?:[eE][+-]?\d+)?", " ", expr)  # numbers
    names = set()
    for match in re.finditer(r"[A-Za-z_:][\w:]*", expr):
        token = match.group(0)
        rest = expr[match.end() :].lstrip()
        if token in KEYWORDS or rest.startswith("("):  # functions and aggregations
            continue
        names.add(token)
    return names


def _grafana_exprs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("expr"), str):
            yield node["expr"]
        for value in node.values():
            yield from _grafana_exprs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _grafana_exprs(value)


def exported_names() -> set[str]:
    names: set[str] = set()
    for family in REGISTRY.collect():
        names.add(family.name)
        if family.type == "counter":
            names.add(family.name + "_total")
        names.update(sample.name for sample in family.samples)
    return names


def _base(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


def test_extractor() -> None:
    assert metric_names(
        'sum by (le, route) (rate(foo_bucket{route!~"/a|/b",le="0.5"}[5m])) / on() bar offset 1w > 100e9'
    ) == {"foo_bucket", "bar"}


def test_alert_and_dashboard_metrics_are_exported() -> None:
    exprs = [rule["expr"] for rule in load_rules()]
    exprs += list(_grafana_exprs(json.loads(GRAFANA.read_text())))
    used = set().union(*(metric_names(e) for e in exprs))
    assert "unifocus_http_requests_total" in used  # the extractor found something real
    recorded = recording_rule_names()
    exported = exported_names()
    missing = sorted(
        name
        for name in used
        if name not in recorded and name not in EXTERNAL and _base(name) not in exported and name not in exported
    )
    assert missing == [], f"queried but not exported by unifocus.observability.metrics: {missing}"


def test_no_tenant_or_user_labels() -> None:
    for obj in vars(unifocus.observability.metrics).values():
        labels = getattr(obj, "_labelnames", ())
        assert not {"tenant", "tenant_id", "user", "user_id"} & set(labels), obj


def test_readme_lists_every_exported_metric() -> None:
    """The README's metrics table is what operators read: every family the service exports
    is named there (a counter by its `_total` name)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    families = sorted(f.name for f in REGISTRY.collect() if f.name.startswith("unifocus_"))
    assert "unifocus_process_cpu_limit_cores" in families
    assert [name for name in families if f"`{name}" not in readme] == []


def test_punch_source_labels_are_the_api_sources() -> None:
    from unifocus.observability.metrics import PUNCH_SOURCES
    from unifocus.punches.schemas import PunchSource

    assert set(PUNCH_SOURCES) == {source.value for source in PunchSource}
    assert ", ".join(PUNCH_SOURCES) in unifocus.observability.metrics.PUNCHES_CREATED._documentation
