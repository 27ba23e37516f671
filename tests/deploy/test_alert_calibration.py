"""bench/alert_calibration.py (`make bench-alerts`) reads its thresholds from
deploy/prometheus/alerts.yml rather than hard-coding them: its parser must see every alert,
cut each expression into its comparisons (`input op threshold`, at top-level or / and /
unless) and read the constant thresholds as the numbers the rules compare with; the scrape
config it derives from prometheus.yml must keep the job names the rules select.

Parsing only (and promtool on the derived config): no service, no Prometheus, nothing timed.
"""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.alerts

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
# where every series the rules read comes from: the service, or the exporters prometheus.yml names
SOURCES = ("unifocus_", "node_", "kube_", "alertmanager_", "prometheus_")


@pytest.fixture(scope="module")
def calibration() -> ModuleType:
    sys.path.insert(0, str(BENCH))  # it imports bench/run.py's helpers as `run`
    try:
        return importlib.import_module("alert_calibration")
    finally:
        sys.path.remove(str(BENCH))


@pytest.fixture(scope="module")
def parsed(calibration: ModuleType) -> tuple[dict[str, str], dict[str, Any]]:
    records, rules = calibration.load_rules(ALERTS)
    return records, {r.name: r for r in rules}


def _yaml_rules() -> list[dict[str, Any]]:
    return [r for g in yaml.safe_load(ALERTS.read_text(encoding="utf-8"))["groups"] for r in g["rules"]]


def test_every_alert_and_recording_rule_is_read(calibration: ModuleType,
                                                parsed: tuple[dict[str, str], dict[str, Any]]) -> None:
    records, rules = parsed
    assert set(rules) == {r["alert"] for r in _yaml_rules() if "alert" in r}
    assert set(records) == {r["record"] for r in _yaml_rules() if "record" in r}
    for r in _yaml_rules():
        if "alert" in r:
            assert rules[r["alert"]].for_s == calibration.seconds(r.get("for", "0s")), r["alert"]
            assert rules[r["alert"]].clauses, r["alert"]
    assert (rules["APIDown"].for_s, rules["IdempotencyTableGrowth"].for_s, rules["AuditLogGrowth"].for_s) == (
        30, 1800, 3600)


def test_constant_thresholds_are_read_as_numbers(parsed: tuple[dict[str, str], dict[str, Any]]) -> None:
    _, rules = parsed

    def comparisons(name: str) -> list[tuple[int, str, str, str, float | None]]:
        return [(c.alternative, c.role, c.input, c.op, c.threshold_value) for c in rules[name].clauses if c.op]

    assert comparisons("APILatencyP99Warning") == [
        (1, "", "unifocus:http_request_duration_seconds:p99_rate5m", ">", 0.5)]
    assert rules["APILatencyP99Warning"].for_s == 600
    assert comparisons("ErrorRateCritical") == [
        (1, "", "unifocus:http_errors:ratio_rate5m", ">", 0.05),
        (1, "and", "unifocus:http_requests:rate5m", ">", 0.2)]
    burn = comparisons("SLOAvailabilityBurnRateCritical")
    assert [(a, role, i) for a, role, i, _, _ in burn] == [
        (1, "", "unifocus:http_errors:ratio_rate1h"), (1, "and", "unifocus:http_errors:ratio_rate5m"),
        (2, "", "unifocus:http_errors:ratio_rate6h"), (2, "and", "unifocus:http_errors:ratio_rate30m")]
    assert [t for *_, t in burn] == pytest.approx([0.0144, 0.0144, 0.006, 0.006])
    assert comparisons("IdempotencyFailure")[0][3:] == (">", 50.0)
    assert comparisons("DBConnectionsWarning")[0][3:] == (">", 0.8)
    assert comparisons("AuthSuccessRateCritical")[0][3:] == ("<", 0.95)
    assert comparisons("IdempotencyTableGrowth")[0][3:] == (">", 26 * 3600)
    assert comparisons("AuditLogGrowth")[0][3:] == (">", 100e9)
    assert comparisons("APIDown")[0][2:] == ('up{job="unifocus"}', "==", 0.0)


def test_thresholds_that_are_queries_stay_queries(parsed: tuple[dict[str, str], dict[str, Any]]) -> None:
    _, rules = parsed
    first = rules["PunchCreationRateWarning"].clauses[0]
    assert first.op == ">" and first.threshold_value is None
    assert "offset 1w" in (first.threshold or "")


def test_set_operators_and_nested_alternatives(parsed: tuple[dict[str, str], dict[str, Any]]) -> None:
    _, rules = parsed
    readiness = rules["ReadinessCheckFailing"].clauses
    assert [c.role for c in readiness] == ["", "unless"]
    # (absent(a) or absent(b)) and on () group(up{...}): two alternatives, each with the guard
    ksm = rules["KubeStateMetricsMissing"].clauses
    assert [(c.alternative, c.role) for c in ksm] == [(1, ""), (1, "and"), (2, ""), (2, "and")]
    assert all(c.input.startswith("group(up{") for c in ksm if c.role == "and")
    assert not any(c.op for c in rules["Watchdog"].clauses)


def test_every_selector_names_a_real_series(calibration: ModuleType,
                                            parsed: tuple[dict[str, str], dict[str, Any]]) -> None:
    """The selector scanner skips functions, keywords, label lists, durations and numbers:
    what it returns is a recording rule or a series of the service or an exporter."""
    records, rules = parsed
    for rule in rules.values():
        for c in rule.clauses:
            for selector in calibration.base_selectors(c.text, records):
                name = calibration.metric_name(selector)
                assert name == "up" or name.startswith(SOURCES), (rule.name, selector)
    assert calibration.offsets(calibration.expanded("unifocus:http_errors:ratio_rate5m", records)) == []
    assert max(calibration.windows(calibration.expanded("unifocus:http_errors:ratio_rate3d", records))) == 3 * 86400


def test_the_derived_scrape_config_keeps_the_job_names(calibration: ModuleType, tmp_path: Path) -> None:
    config = calibration.prometheus_config("127.0.0.1:8000", "127.0.0.1:9090", 5, 5)
    assert [j["job_name"] for j in config["scrape_configs"]] == ["unifocus", "prometheus"]
    assert config["rule_files"] == [str(ALERTS)]
    assert config["global"]["scrape_timeout"] == config["global"]["scrape_interval"] == "5s"
    promtool = shutil.which("promtool")
    if promtool is None:  # fail, never skip: `make test` installs it (scripts/install-tools.sh)
        pytest.fail("promtool not found on PATH (apt-get install prometheus)")
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    check = subprocess.run([promtool, "check", "config", str(path)], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
