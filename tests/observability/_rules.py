"""Shared helpers for the alerting tests (paths and YAML loading)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
PROM_DIR = ROOT / "deploy" / "prometheus"
ALERTS = PROM_DIR / "alerts.yml"
# alerts.longrange.test.yml holds cases whose windows reach back a day or a week; it is
# evaluated hourly because promtool evaluates every rule at every step up to eval_time.
# alerts.drill.test.yml is evaluated every 15 s, as Prometheus does: the monthly drill's cases
# (docs/runbooks/README.md) and others where a short event races a rule's `for:`.
RULE_TESTS = sorted(PROM_DIR.glob("alerts*.test.yml"))
ALERTMANAGER = ROOT / "deploy" / "alertmanager.yml"
GRAFANA = ROOT / "deploy" / "grafana" / "unifocus.json"
RUNBOOKS = ROOT / "docs" / "runbooks"


def load_rules() -> list[dict[str, Any]]:
    data = yaml.safe_load(ALERTS.read_text())
    return [rule for group in data["groups"] for rule in group["rules"]]


def alert_rules() -> dict[str, dict[str, Any]]:
    return {rule["alert"]: rule for rule in load_rules() if "alert" in rule}


def recording_rule_names() -> set[str]:
    return {rule["record"] for rule in load_rules() if "record" in rule}
