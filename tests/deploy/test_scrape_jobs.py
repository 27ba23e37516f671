"""The scrape jobs the alerts and the dashboard name exist wherever the service runs.

APIDown is `up{job="unifocus"} == 0 or absent(up{job="unifocus"})` and the dashboard counts
`up{job="unifocus"}`: a Prometheus that scrapes the pods under another job name (a generic
`kubernetes-pods` job) leaves APIDown firing forever. So:

- every `job="..."` selector in deploy/prometheus/alerts.yml, the Grafana dashboard, the
  runbooks and the README names a job of both deploy/prometheus/prometheus.yml (compose) and
  deploy/prometheus/kubernetes-scrape.yml (a plain Prometheus in the cluster);
- the Kubernetes job's relabelling, run on the pods deploy/k8s creates, keeps the API
  Deployment's pods and nothing else, and turns them into `<pod IP>:<prometheus.io/port>`,
  `prometheus.io/path`, `instance` = the pod's name;
- neither config sets honor_labels, so the scheduler's own `job` label arrives as
  `exported_job`, which is what the queries over unifocus_job_* use (never `job`);
- both configs pass promtool.

YAML only (and promtool): no cluster.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROM_DIR = ROOT / "deploy" / "prometheus"
COMPOSE_CONFIG = PROM_DIR / "prometheus.yml"
K8S_CONFIG = PROM_DIR / "kubernetes-scrape.yml"
ALERTS = PROM_DIR / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "unifocus.json"
K8S = ROOT / "deploy" / "k8s"
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs" / "runbooks").glob("*.md"))]

# A matcher on the target label `job` (not `exported_job`, the scheduler's label once scraped).
JOB_MATCHER = re.compile(r'(?<![\w])job\s*(=~|!=|!~|=)\s*"((?:[^"\\]|\\.)*)"')
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
CODE_SPAN = re.compile(r"`([^`\n]+)`")
# APIDown's `for: 30s` is 3 failed scrapes at this interval.
SCRAPE_INTERVAL = "15s"


def _yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), path
    return data


def _jobs(path: Path) -> dict[str, dict[str, Any]]:
    return {job["job_name"]: job for job in _yaml(path)["scrape_configs"]}


def _grafana_exprs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["expr"]] if isinstance(node.get("expr"), str) else []
        return own + [e for value in node.values() for e in _grafana_exprs(value)]
    if isinstance(node, list):
        return [e for value in node for e in _grafana_exprs(value)]
    return []


def _alert_texts() -> list[str]:
    """Every rule's expression and annotations (descriptions quote the selector too)."""
    rules = [rule for group in _yaml(ALERTS)["groups"] for rule in group["rules"]]
    return [rule["expr"] for rule in rules] + [
        str(value) for rule in rules for value in rule.get("annotations", {}).values()
    ]


def _sources() -> dict[str, list[str]]:
    """PromQL (and text quoting it) by where it comes from."""
    sources = {
        ALERTS.name: _alert_texts(),
        DASHBOARD.name: _grafana_exprs(json.loads(DASHBOARD.read_text(encoding="utf-8"))),
    }
    for path in DOCS:
        sources[path.name] = CODE_SPAN.findall(path.read_text(encoding="utf-8"))
    return sources


def test_every_job_selector_names_a_job_of_both_scrape_configs() -> None:
    both = set(_jobs(COMPOSE_CONFIG)) & set(_jobs(K8S_CONFIG))
    seen: dict[str, set[str]] = {}
    problems = []
    for source, texts in _sources().items():
        for text in texts:
            for op, value in JOB_MATCHER.findall(text):
                seen.setdefault(source, set()).add(value)
                if op == "=" and value not in both:
                    problems.append(f'{source}: job="{value}" is not a job of both scrape configs ({sorted(both)})')
                if op == "=~" and not any(re.fullmatch(value, job) for job in both):
                    problems.append(f'{source}: job=~"{value}" matches no job of both scrape configs')
    # the scan found what is there today: APIDown's selector and the dashboard's
    assert "unifocus" in seen.get(ALERTS.name, set()), seen
    assert "unifocus" in seen.get(DASHBOARD.name, set()), seen
    assert not problems, "\n".join(problems)


def test_the_scheduler_job_label_is_queried_as_exported_job() -> None:
    """unifocus_job_runs_total{job=...} exports a label `job`; Prometheus renames it to
    `exported_job` (honor_labels off) because `job` is the target's."""
    for path in (COMPOSE_CONFIG, K8S_CONFIG):
        for name, job in _jobs(path).items():
            assert not job.get("honor_labels", False), f"{path.name}: job {name} sets honor_labels"
    problems = []
    for source, texts in _sources().items():
        for text in texts:
            if "unifocus_job_" not in text:
                continue
            grouped = {label.strip() for labels in GROUPING.findall(text) for label in labels.split(",")}
            if "job" in grouped:
                problems.append(f"{source}: groups unifocus_job_* by `job` (the scrape job): `{text}`")
            for op, value in JOB_MATCHER.findall(text):
                if op in {"=", "=~"} and value != "unifocus":
                    problems.append(f'{source}: job{op}"{value}" on unifocus_job_* is exported_job: `{text}`')
    assert not problems, "\n".join(problems)


def test_both_jobs_scrape_every_15_seconds_at_metrics() -> None:
    compose = _yaml(COMPOSE_CONFIG)
    for path, global_interval in ((COMPOSE_CONFIG, compose["global"].get("scrape_interval")),
                                  (K8S_CONFIG, None)):
        job = _jobs(path)["unifocus"]
        # the cluster Prometheus's global interval is unknown: the job sets its own
        assert job.get("scrape_interval", global_interval) == SCRAPE_INTERVAL, path.name
        assert job.get("metrics_path", "/metrics") == "/metrics", path.name


# --------------------------------------------------------------------------------------------
# The Kubernetes job against deploy/k8s
# --------------------------------------------------------------------------------------------


@cache
def _k8s_namespace() -> str:
    namespace = _yaml(K8S / "kustomization.yaml").get("namespace")
    assert namespace, "kustomization.yaml sets no namespace"
    return str(namespace)


def _pod_templates() -> list[tuple[str, str, dict[str, Any]]]:
    """(kind, name, pod template) of every workload of deploy/k8s."""
    out = []
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if not doc or doc.get("kind") not in {"Deployment", "Job", "CronJob"}:
                continue
            spec = doc["spec"]["jobTemplate"]["spec"] if doc["kind"] == "CronJob" else doc["spec"]
            out.append((doc["kind"], doc["metadata"]["name"], spec["template"]))
    return out


def _api_deployment() -> dict[str, Any]:
    (template,) = [t for kind, name, t in _pod_templates() if (kind, name) == ("Deployment", "unifocus-api")]
    return template


def _sanitize(name: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def _discovered(template: dict[str, Any], namespace: str, pod: str, ip: str) -> list[dict[str, str]]:
    """The targets `kubernetes_sd_configs` role pod makes of one pod: one per container port
    (one without a port for a container that declares none), with the pod's meta labels."""
    meta = template.get("metadata", {})
    base = {
        "__meta_kubernetes_namespace": namespace,
        "__meta_kubernetes_pod_name": pod,
        "__meta_kubernetes_pod_ip": ip,
        "__meta_kubernetes_pod_phase": "Running",
        "__meta_kubernetes_pod_ready": "true",
    }
    for kind, values in (("label", meta.get("labels") or {}), ("annotation", meta.get("annotations") or {})):
        for key, value in values.items():
            base[f"__meta_kubernetes_pod_{kind}_{_sanitize(key)}"] = str(value)
            base[f"__meta_kubernetes_pod_{kind}present_{_sanitize(key)}"] = "true"
    host = f"[{ip}]" if ":" in ip else ip
    targets = []
    for container in template["spec"]["containers"]:
        ports = container.get("ports") or [None]
        for port in ports:
            labels = dict(base, __meta_kubernetes_pod_container_name=container["name"])
            if port is None:
                labels["__address__"] = host
            else:
                labels["__address__"] = f"{host}:{port['containerPort']}"
                labels["__meta_kubernetes_pod_container_port_number"] = str(port["containerPort"])
                labels["__meta_kubernetes_pod_container_port_name"] = port.get("name", "")
            targets.append(labels)
    return targets


def _expand(template: str, match: re.Match[str]) -> str:
    """A replacement's `$1`, `${1}`, `$name` (a missing group expands to nothing, as in Go)."""
    def group(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        try:
            return match.group(int(name) if name.isdigit() else name) or ""
        except IndexError:
            return ""

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", group, template)


def _relabel(labels: dict[str, str], configs: list[dict[str, Any]]) -> dict[str, str] | None:
    """Prometheus's relabelling (actions replace, keep, drop), None when the target is dropped."""
    labels = dict(labels)
    for config in configs:
        action = config.get("action", "replace")
        value = config.get("separator", ";").join(labels.get(s, "") for s in config.get("source_labels", []))
        match = re.fullmatch(str(config.get("regex", "(.*)")), value)
        if action == "keep" and match is None:
            return None
        if action == "drop" and match is not None:
            return None
        if action == "replace" and match is not None:
            result = _expand(str(config.get("replacement", "$1")), match)
            if result:
                labels[config["target_label"]] = result
            else:
                labels.pop(config["target_label"], None)
        elif action not in {"keep", "drop", "replace"}:
            pytest.fail(f"relabel action {action} is not simulated here")
    return labels


def _scraped(
    template: dict[str, Any], namespace: str, pod: str = "pod-0", ip: str = "10.1.2.3"
) -> list[dict[str, str]]:
    job = _jobs(K8S_CONFIG)["unifocus"]
    out = []
    for target in _discovered(template, namespace, pod, ip):
        target |= {"job": job["job_name"], "__metrics_path__": job.get("metrics_path", "/metrics"),
                   "__scheme__": job.get("scheme", "http")}
        kept = _relabel(target, job.get("relabel_configs", []))
        if kept is not None:
            kept.setdefault("instance", kept["__address__"])
            out.append(kept)
    return out


def test_the_kubernetes_job_discovers_pods_in_the_namespace_of_deploy_k8s() -> None:
    (sd,) = _jobs(K8S_CONFIG)["unifocus"]["kubernetes_sd_configs"]
    assert sd["role"] == "pod"
    assert sd.get("namespaces", {}).get("names") == [_k8s_namespace()]


def test_the_keep_rules_name_the_api_deployments_namespace_labels_and_annotation() -> None:
    template = _api_deployment()
    labels = template["metadata"]["labels"]
    annotations = template["metadata"]["annotations"]
    keeps = {
        tuple(c["source_labels"]): str(c["regex"])
        for c in _jobs(K8S_CONFIG)["unifocus"]["relabel_configs"]
        if c.get("action") == "keep"
    }
    expected = {
        "__meta_kubernetes_namespace": _k8s_namespace(),
        "__meta_kubernetes_pod_label_app_kubernetes_io_name": labels["app.kubernetes.io/name"],
        "__meta_kubernetes_pod_label_app_kubernetes_io_component": labels["app.kubernetes.io/component"],
        "__meta_kubernetes_pod_annotation_prometheus_io_scrape": annotations["prometheus.io/scrape"],
    }
    assert {source for (source,) in keeps} >= set(expected), keeps
    for source, value in expected.items():
        assert re.fullmatch(keeps[(source,)], value), f"keep {source} =~ {keeps[(source,)]!r} drops {value!r}"
    # and the Deployment's selector is what the keep rules select on
    deployment_selector = {"app.kubernetes.io/name", "app.kubernetes.io/component"}
    assert deployment_selector <= set(labels)


def test_the_kubernetes_job_scrapes_the_api_pods_and_nothing_else() -> None:
    namespace = _k8s_namespace()
    kept = {(kind, name): _scraped(t, namespace) for kind, name, t in _pod_templates()}
    assert [k for k, targets in kept.items() if targets] == [("Deployment", "unifocus-api")], kept

    api = _api_deployment()
    annotations = api["metadata"]["annotations"]
    (container,) = [c for c in api["spec"]["containers"] if c["name"] == "api"]
    assert int(annotations["prometheus.io/port"]) in {p["containerPort"] for p in container["ports"]}
    for ip, address in (("10.1.2.3", "10.1.2.3"), ("fd00::1:2", "[fd00::1:2]")):
        (target,) = _scraped(api, namespace, pod="unifocus-api-7d9f8-abcde", ip=ip)
        assert target["__address__"] == f"{address}:{annotations['prometheus.io/port']}", target
        assert target["__metrics_path__"] == annotations["prometheus.io/path"] == "/metrics", target
        assert target["instance"] == "unifocus-api-7d9f8-abcde", target
        assert target["job"] == "unifocus", target

    # the Job's and CronJobs' pods (same app.kubernetes.io/name) stay out by their labels
    # alone, even if they were annotated for scraping
    for kind, name, template in _pod_templates():
        if (kind, name) != ("Deployment", "unifocus-api"):
            annotated = {**template, "metadata": {**template.get("metadata", {}), "annotations": annotations}}
            assert _scraped(annotated, namespace) == [], (kind, name)
    # the same pods elsewhere, or not asking to be scraped, are not scraped
    assert _scraped(api, "default") == []
    unannotated = {**api, "metadata": {**api["metadata"], "annotations": {}}}
    assert _scraped(unannotated, namespace) == []


def _promtool(config: Path) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool is not installed (make tools installs it)"
    return subprocess.run([promtool, "check", "config", str(config)], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, check=False)


def test_the_kubernetes_scrape_config_passes_promtool(tmp_path: Path) -> None:
    """In a small wrapper config, as the cluster Prometheus would hold it. Debian's promtool
    is built without Kubernetes service discovery: when it rejects `kubernetes_sd_configs`,
    the job is checked again with a static target in its place (everything else: relabel
    regexes, actions, labels, intervals)."""
    jobs = _yaml(K8S_CONFIG)["scrape_configs"]
    wrapper = tmp_path / "prometheus.yml"
    wrapper.write_text(yaml.safe_dump({"global": {"scrape_interval": "1m"}, "scrape_configs": jobs}))
    result = _promtool(wrapper)
    if result.returncode != 0 and "field kubernetes_sd_configs not found" in result.stdout + result.stderr:
        static = [{k: v for k, v in job.items() if k != "kubernetes_sd_configs"}
                  | {"static_configs": [{"targets": ["10.1.2.3:8000"]}]} for job in jobs]
        wrapper.write_text(yaml.safe_dump({"global": {"scrape_interval": "1m"}, "scrape_configs": static}))
        result = _promtool(wrapper)
    assert result.returncode == 0, result.stdout + result.stderr
