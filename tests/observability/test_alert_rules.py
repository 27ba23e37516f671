"""Alerting rules gate (seed section 5): rules are valid, unit-tested, routed and documented."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from tests.observability._rules import ALERTMANAGER, ALERTS, ROOT, RULE_TESTS, RUNBOOKS, alert_rules

pytestmark = pytest.mark.alerts

RUNBOOK_PREFIX = "https://github.com/unifocus/unifocus/blob/main/docs/runbooks/"
SECTIONS = ("## Verify", "## Diagnose", "## Respond", "## Post-incident")
SEVERITIES = {"critical", "warning", "none"}
# Always firing by design, so it cannot have a non-firing case.
ALWAYS_FIRING = {"Watchdog"}


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:  # fail, never skip: CI installs prometheus / prometheus-alertmanager
        pytest.fail(f"{name} not found on PATH (apt-get install prometheus prometheus-alertmanager)")
    return path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)


def test_promtool_check_rules() -> None:
    result = _run(_tool("promtool"), "check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests() -> None:
    assert RULE_TESTS, "no deploy/prometheus/alerts*.test.yml"
    result = _run(_tool("promtool"), "test", "rules", *map(str, RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_severity_annotations_and_runbook() -> None:
    rules = alert_rules()
    assert rules
    for name, rule in rules.items():
        labels = rule.get("labels", {})
        annotations = rule.get("annotations", {})
        assert labels.get("severity") in SEVERITIES, name
        assert labels.get("alertgroup"), f"{name}: alertgroup label drives inhibition"
        assert labels.get("service") == "unifocus", name
        for key in ("summary", "description", "runbook_url"):
            assert annotations.get(key, "").strip(), f"{name}: missing annotation {key}"
        assert annotations["runbook_url"] == f"{RUNBOOK_PREFIX}{name}.md", name
        runbook = RUNBOOKS / f"{name}.md"
        assert runbook.is_file(), f"missing runbook {runbook}"
        text = runbook.read_text()
        for section in SECTIONS:
            assert section in text, f"{runbook.name}: missing section {section!r}"
    assert "Watchdog" in rules and rules["Watchdog"]["expr"].strip() == "vector(1)"


def test_runbook_index_lists_every_alert() -> None:
    index = (RUNBOOKS / "README.md").read_text()
    for name in alert_rules():
        assert f"[{name}]({name}.md)" in index, name


def test_warning_critical_pairs_share_an_alertgroup() -> None:
    for name, rule in alert_rules().items():
        if name.endswith("Warning"):
            twin = alert_rules().get(name.removesuffix("Warning") + "Critical")
            if twin is not None:
                assert twin["labels"]["alertgroup"] == rule["labels"]["alertgroup"], name


def test_every_alert_has_firing_and_quiet_unit_tests() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in RULE_TESTS:
        doc = yaml.safe_load(path.read_text())
        assert "alerts.yml" in doc["rule_files"], path
        for group in doc["tests"]:
            for case in group.get("alert_rule_test", []):
                exp = case.get("exp_alerts") or []
                (firing if exp else quiet).add(case["alertname"])
                for alert in exp:
                    assert alert.get("exp_labels", {}).get("severity"), f"{path.name}: {case['alertname']}"
    names = set(alert_rules())
    assert names - firing == set(), "alerts without a firing test case"
    assert names - ALWAYS_FIRING - quiet == set(), "alerts without a non-firing test case"
    assert (firing | quiet) - names == set(), "test cases for alerts that do not exist"


def test_amtool_check_config() -> None:
    result = _run(_tool("amtool"), "check-config", str(ALERTMANAGER))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (("alertname=APIDown", "severity=critical", "alertgroup=availability"), "pager"),
        (("alertname=SlowQueries", "severity=warning", "alertgroup=database-latency"), "team"),
        (("alertname=RedisUnavailable", "severity=warning", "alertgroup=rate-limit"), "team"),
        (("alertname=Watchdog", "severity=none", "alertgroup=meta"), "deadmansswitch"),
        (("alertname=NodeExporterMissing", "severity=warning", "alertgroup=disk-monitoring"), "team"),
        # critical, and copied to the team: the failing integration may be the pager's
        (("alertname=AlertmanagerNotificationsFailing", "severity=critical", "alertgroup=alert-delivery",
          "integration=webhook"), "team,pager"),
        (("alertname=PrometheusRuleEvaluationFailures", "severity=critical", "alertgroup=rule-evaluation"), "pager"),
        (("alertname=PrometheusConfigReloadFailed", "severity=warning", "alertgroup=prometheus-config"), "team"),
    ],
)
def test_alertmanager_routes(labels: tuple[str, ...], receiver: str) -> None:
    result = _run(
        _tool("amtool"),
        "config",
        "routes",
        "test",
        f"--config.file={ALERTMANAGER}",
        f"--verify.receivers={receiver}",
        *labels,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_alertmanager_inhibits_warning_by_critical_of_same_group() -> None:
    config = yaml.safe_load(ALERTMANAGER.read_text())
    rules = config["inhibit_rules"]
    assert any(
        'severity="critical"' in r.get("source_matchers", [])
        and 'severity="warning"' in r.get("target_matchers", [])
        and {"alertgroup", "service"} <= set(r.get("equal", []))
        for r in rules
    )
