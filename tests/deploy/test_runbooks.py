"""The runbooks (docs/runbooks/*.md) against this stack: someone pastes their commands during an
incident, so what they name must exist.

- Every `kubectl` command passes the namespace of deploy/k8s (unless it only touches
  cluster-scoped objects or applies the kustomization, which sets it), names only objects
  deploy/k8s defines there (`deployment/unifocus-api`, `job/unifocus-migrate`, ...), and every
  `-l` selector matches the labels of something deploy/k8s creates: the pods' labels when the
  command is about pods. Every `-c` names a container. `kubectl logs -l` passes `--tail`
  (kubectl prints only 10 lines per pod otherwise).
- A command that needs the database owner (`unifocus migrate`, ...) is never run in pods that
  hold only the runtime role's URL; every `unifocus ...` command and option exists in the CLI.
- Every jq query over `kubectl logs` reads only fields the service writes and compares `.event`,
  `.logger` and `.level` only with values it logs (src/unifocus: the access line of
  observability/middleware.py and the logging calls).
- Every alert of deploy/prometheus/alerts.yml has a runbook, every runbook link resolves, and
  every runbook belongs to an alert.

Text and YAML only: no cluster, no kubectl, no database.
"""

from __future__ import annotations

import ast
import re
import shlex
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import typer
import typer.core
import typer.main
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
RUNBOOKS = ROOT / "docs" / "runbooks"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
SRC = ROOT / "src" / "unifocus"
REPO_URL = "https://github.com/unifocus/unifocus/blob/main/"

# --------------------------------------------------------------------------------------------
# What deploy/k8s creates
# --------------------------------------------------------------------------------------------

# kubectl's names for the kinds deploy/k8s holds (an Endpoints object is named after its Service).
KIND_NAMES = {
    "Deployment": ("deployment", "deployments", "deploy"),
    "Job": ("job", "jobs"),
    "CronJob": ("cronjob", "cronjobs", "cj"),
    "Service": ("service", "services", "svc", "endpoints", "ep"),
    "HorizontalPodAutoscaler": ("horizontalpodautoscaler", "horizontalpodautoscalers", "hpa"),
    "PodDisruptionBudget": ("poddisruptionbudget", "poddisruptionbudgets", "pdb"),
    "PersistentVolumeClaim": ("persistentvolumeclaim", "persistentvolumeclaims", "pvc"),
    "ConfigMap": ("configmap", "configmaps", "cm"),
    "Secret": ("secret", "secrets"),
    "Namespace": ("namespace", "namespaces", "ns"),
}
KINDS = {alias: kind for kind, aliases in KIND_NAMES.items() for alias in aliases}
WORKLOADS = {"Deployment", "Job", "CronJob"}
POD_TYPES = {"pod", "pods", "po"}
# Types that need no namespace: nodes (not ours) and namespaces.
CLUSTER_TYPES = {"node", "nodes", "no", "namespace", "namespaces", "ns"}
PLACEHOLDER = re.compile(r"^<[^<>]+>$")


@dataclass(frozen=True)
class K8sObject:
    kind: str
    name: str
    namespace: str
    labels: dict[str, str]
    pod_labels: dict[str, str] | None  # workloads: their pods' labels
    containers: frozenset[str]
    owner_database: bool  # its pods get the owner's URL (secret key DATABASE_URL)


def _pod_template(doc: dict[str, Any]) -> dict[str, Any] | None:
    spec = doc.get("spec") or {}
    if doc["kind"] == "CronJob":
        return dict(spec["jobTemplate"]["spec"]["template"])
    if doc["kind"] in WORKLOADS:
        return dict(spec["template"])
    return None


@cache
def k8s_objects() -> tuple[K8sObject, ...]:
    """Every object of deploy/k8s, in the namespace it gets when applied. secret.example.yaml
    is included: the real Secret is created out of band with its name."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    objects = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if not doc:
                continue
            meta = doc["metadata"]
            template = _pod_template(doc)
            containers = (template or {}).get("spec", {}).get("containers", [])
            owner = any(
                env.get("name") == "DATABASE_URL"
                and env.get("valueFrom", {}).get("secretKeyRef", {}).get("key") == "DATABASE_URL"
                for container in containers
                for env in container.get("env", [])
            )
            objects.append(K8sObject(
                kind=doc["kind"],
                name=meta["name"],
                namespace=kustomization.get("namespace") or meta.get("namespace", "default"),
                labels=dict(meta.get("labels") or {}),
                pod_labels=dict(template["metadata"].get("labels") or {}) if template else None,
                containers=frozenset(c["name"] for c in containers),
                owner_database=owner,
            ))
    return tuple(objects)


def namespaces() -> set[str]:
    return {o.namespace for o in k8s_objects()} | {o.name for o in k8s_objects() if o.kind == "Namespace"}


# --------------------------------------------------------------------------------------------
# What the service logs
# --------------------------------------------------------------------------------------------

# structlog's processors in observability/logging.py add these to every line (checked below).
LINE_FIELDS = {"event": "", "level": "add_log_level", "logger": "add_logger_name",
               "timestamp": "TimeStamper(", "exception": "format_exc_info"}
LEVELS = {"debug", "info", "warning", "error", "critical"}
LOG_METHODS = {"debug", "info", "warning", "error", "exception", "critical"}


def _is_logger(node: ast.expr) -> bool:
    """`log`, `access_log`, `logger` or a `get_logger(...)` / `getLogger(...)` call."""
    if isinstance(node, ast.Name):
        return node.id in {"log", "logger", "access_log"}
    if isinstance(node, ast.Call):
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        return name in {"get_logger", "getLogger"}
    return False


@dataclass
class Logged:
    fields: set[str] = field(default_factory=set)
    loggers: set[str] = field(default_factory=set)
    events: set[str] = field(default_factory=set)  # messages; %-placeholders stand for any text


@cache
def logged() -> Logged:
    """Fields, logger names and messages of every log line src/unifocus can write."""
    logging_py = (SRC / "observability" / "logging.py").read_text(encoding="utf-8")
    for name, processor in LINE_FIELDS.items():
        assert processor in logging_py, f"observability/logging.py no longer adds `{name}`"
    found = Logged(fields=set(LINE_FIELDS))
    for path in SRC.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        module = ".".join(path.relative_to(SRC.parent).with_suffix("").parts)
        found.loggers |= set(re.findall(r"get_?[lL]ogger\(\"([\w.]+)\"\)", text))
        if "getLogger(__name__)" in text:
            found.loggers.add(module)
        for node in ast.walk(ast.parse(text)):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            if node.func.attr not in LOG_METHODS or not _is_logger(node.func.value):
                continue
            if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                found.events.add(node.args[0].value)
            # structlog: keyword arguments become fields (the access line's request_id, route, ...)
            found.fields |= {kw.arg for kw in node.keywords if kw.arg and kw.arg not in {"exc_info", "stack_info"}}
    assert "request" in found.events, "the access line (observability/middleware.py) was not found"
    return found


_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(?:\*|\d+)?(?:\.(?:\*|\d+))?[diouxXeEfFgGcrsa%]")


def _message_matches(template: str, text: str, prefix: bool) -> bool:
    """Whether a line logged with `template` can read `text` (prefix: start with `text`)."""
    pieces: list[str | None] = []  # literal characters; None where a %-placeholder puts any text
    pos = 0
    for spec in _SPEC.finditer(template):
        pieces += list(template[pos:spec.start()])
        pieces.append("%" if spec.group() == "%%" else None)
        pos = spec.end()
    pieces += list(template[pos:])
    for end in range(len(pieces) + 1) if prefix else (len(pieces),):
        pattern = "".join(".*" if p is None else re.escape(p) for p in pieces[:end])
        if re.fullmatch(pattern, text, re.S):
            return True
    return False


# --------------------------------------------------------------------------------------------
# Reading the runbooks' commands
# --------------------------------------------------------------------------------------------

FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.M | re.S)
SPAN = re.compile(r"`([^`]+)`")


def snippets(text: str) -> list[str]:
    """Code in a runbook: each line of a fenced block (backslash continuations joined) and
    each inline code span (on one line)."""
    out = [line for block in FENCE.findall(text) for line in block.replace("\\\n", " ").splitlines()]
    out += [span.replace("\n", " ") for span in SPAN.findall(FENCE.sub("", text))]
    return [s.strip() for s in out if s.strip()]


def pipelines(snippet: str) -> list[list[list[str]]]:
    """The shell pipelines of a snippet (split at `;`, `&&`, `||`), each a list of commands
    (split at `|`), each a list of words; quotes are respected."""
    result: list[list[str]] = [[]]
    start, i, quote = 0, 0, ""
    while i < len(snippet):
        c = snippet[i]
        if quote:
            if c == "\\" and quote == '"':
                i += 2
                continue
            if c == quote:
                quote = ""
        elif c in "'\"":
            quote = c
        elif c == "\\":
            i += 2
            continue
        elif snippet.startswith(("&&", "||"), i) or c == ";":
            result[-1].append(snippet[start:i])
            result.append([])
            i += 1 if c == ";" else 2
            start = i
            continue
        elif c == "|":
            result[-1].append(snippet[start:i])
            start = i + 1
        i += 1
    result[-1].append(snippet[start:])
    commands = [[shlex.split(cmd, comments=True) for cmd in line if cmd.strip()] for line in result]
    return [[words for words in line if words] for line in commands if any(line)]


# Options that take a value (`-f` / `-p` too, except for `logs`: follow / previous).
VALUE_OPTIONS = {
    "-n", "--namespace", "-l", "--selector", "-c", "--container", "-o", "--output", "-k", "--kustomize",
    "--type", "--for", "--timeout", "--since", "--since-time", "--tail", "--replicas", "--from",
    "--field-selector", "--sort-by", "--context", "--max-log-requests", "-L", "--label-columns",
}
LONG = {"-n": "--namespace", "-l": "--selector", "-c": "--container", "-o": "--output", "-k": "--kustomize",
        "-f": "--filename", "-p": "--patch", "-L": "--label-columns", "-A": "--all-namespaces"}
POD_VERBS = {"logs", "exec", "attach", "port-forward", "cp"}
# `unifocus` commands that need the owner role (README: migrations, audit verify, backups).
OWNER_ONLY = (("migrate",), ("backup",), ("restore",), ("audit", "verify"))


@dataclass
class Kubectl:
    verb: str
    args: list[str]
    options: dict[str, list[str]]
    command: list[str]  # after `--` (exec)


def parse_kubectl(words: list[str]) -> Kubectl:
    verb = ""
    args: list[str] = []
    options: dict[str, list[str]] = {}
    command: list[str] = []
    i = 1
    while i < len(words):
        word = words[i]
        if word == "--":
            command = words[i + 1:]
            break
        if word.startswith("-") and word != "-":
            name, eq, value = word.partition("=")
            takes = name in VALUE_OPTIONS or (name in {"-f", "--filename", "-p", "--patch"} and verb != "logs")
            if takes and not eq:
                i += 1
                value = words[i] if i < len(words) else ""
            options.setdefault(LONG.get(name, name), []).append(value)
        elif not verb:
            verb = word
        else:
            args.append(word)
        i += 1
    return Kubectl(verb, args, options, command)


def _selector_matches(selector: str, labels: dict[str, str]) -> bool:
    for term in selector.split(","):
        term = term.strip()
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key) != value:
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def kubectl_problems(cmd: Kubectl) -> list[str]:
    problems: list[str] = []
    objects = k8s_objects()
    opts = cmd.options
    args = list(cmd.args)
    if cmd.verb in {"rollout", "set"} and args:
        args = args[1:]  # the subcommand: rollout history|undo|restart|status, set image|env
    if cmd.verb == "create":
        args = []  # creates a new object; only --from must exist
    applies = cmd.verb in {"apply", "kustomize", "diff", "delete"} and (
        "--kustomize" in opts or "--filename" in opts or cmd.verb == "kustomize")
    if applies:
        for path in [*opts.get("--kustomize", []), *opts.get("--filename", []), *args]:
            if path != "-" and not (ROOT / path).exists():
                problems.append(f"{path} does not exist")
        args = []

    refs: list[tuple[str, str | None]] = []
    if args and "/" in args[0]:
        refs = [(a.split("/", 1)[0], a.split("/", 1)[1]) for a in args]
    elif args and cmd.verb in POD_VERBS:
        refs = [("pod", args[0])]
    elif args:
        refs = [(t, n) for t in args[0].split(",") for n in (args[1:] or [None])]
    refs += [(f.split("/", 1)[0], f.split("/", 1)[1]) for f in opts.get("--from", []) if "/" in f]

    if "--all-namespaces" in opts:
        problems.append("-A / --all-namespaces: name the namespace")
    given = opts.get("--namespace", [])
    for ns in given:
        if ns not in namespaces():
            problems.append(f"namespace {ns!r} is not deploy/k8s's ({', '.join(sorted(namespaces()))})")
    needs_namespace = not applies and (any(t not in CLUSTER_TYPES for t, _ in refs) or "--selector" in opts)
    if needs_namespace and not given:
        problems.append(f"no -n: deploy/k8s puts everything in namespace {', '.join(sorted(namespaces()))}")
    in_ns = [o for o in objects if not given or o.namespace in given]

    targets: list[K8sObject] = []
    for kind_name, name in refs:
        if kind_name in POD_TYPES:
            if name is not None and not PLACEHOLDER.match(name):
                problems.append(f"pod {name!r}: pod names are generated; use deploy/<name>, -l or <pod>")
            continue
        if kind_name in CLUSTER_TYPES - set(KIND_NAMES["Namespace"]):
            continue
        kind = KINDS.get(kind_name)
        if kind is None:
            problems.append(f"resource type {kind_name!r} is not one deploy/k8s holds")
            continue
        found = [o for o in in_ns if o.kind == kind and (name is None or o.name == name)]
        if not found:
            what = f"{kind} {name!r}" if name else f"any {kind}"
            problems.append(f"{what} is not in deploy/k8s (namespace {', '.join(given) or 'not given'})")
        elif name is not None:
            targets += found

    about_pods = cmd.verb in POD_VERBS or any(t in POD_TYPES for t, _ in refs)
    for selector in opts.get("--selector", []):
        if about_pods:
            candidates = [o.pod_labels for o in in_ns if o.pod_labels is not None]
            what = "pod template"
        else:
            kinds = {KINDS.get(t) for t, _ in refs} - {None}
            candidates = [o.labels for o in in_ns if not kinds or o.kind in kinds]
            what = "object"
        if " in " in selector or " notin " in selector or "(" in selector:
            problems.append(f"selector {selector!r}: use equality terms")
        elif not any(_selector_matches(selector, labels) for labels in candidates):
            problems.append(f"selector {selector!r} matches no {what} labels in deploy/k8s")
    if cmd.verb == "logs" and "--selector" in opts and "--tail" not in opts:
        problems.append("kubectl logs -l without --tail prints only the last 10 lines of each pod")

    workloads = [o for o in targets if o.kind in WORKLOADS]
    for container in opts.get("--container", []):
        pool = workloads or [o for o in in_ns if o.kind in WORKLOADS]
        if not any(container in o.containers for o in pool):
            problems.append(f"container {container!r} is in none of {', '.join(o.name for o in pool)}")

    if cmd.verb == "exec" and cmd.command[:1] == ["unifocus"]:
        pods = workloads or [o for o in in_ns if o.kind == "Deployment"]
        sub = tuple(w for w in cmd.command[1:] if not w.startswith("-"))
        if any(sub[: len(o)] == o for o in OWNER_ONLY) and not all(o.owner_database for o in pods):
            problems.append(
                f"`unifocus {' '.join(sub)}` needs the owner role; {', '.join(o.name for o in pods)} hold only "
                "the runtime role's URL (migrations: the Job unifocus-migrate)")
    return problems


@cache
def _cli() -> Any:
    from unifocus import cli

    if "audit" not in {group.name for group in cli.main_app.registered_groups}:
        cli._mount_feature_commands()  # what cli.main() does before dispatching
    return typer.main.get_command(cli.main_app)


def unifocus_problems(argv: list[str]) -> list[str]:
    """The command and its options exist in the real command tree (values are not parsed:
    runbooks write placeholders such as <start>)."""
    command = _cli()
    path: list[str] = []
    rest = list(argv)
    while isinstance(command, typer.core.TyperGroup):
        if not rest or rest[0].startswith("-"):
            return [f"`unifocus {' '.join(path)}` needs a subcommand"]
        name = rest.pop(0)
        sub = command.get_command(typer.Context(command), name)
        if sub is None:
            return [f"`unifocus {' '.join([*path, name])}` is not a command"]
        path.append(name)
        command = sub
    known = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)} | {"--help"}
    return [f"`unifocus {' '.join(path)}` has no option {word.split('=')[0]}"
            for word in rest if word.startswith("--") and word.split("=")[0] not in known]


JQ_VALUE_OPTIONS = {"--arg": 2, "--argjson": 2, "--slurpfile": 2, "--rawfile": 2, "--indent": 1}


def jq_program(words: list[str]) -> str | None:
    i = 1
    while i < len(words):
        if words[i] in JQ_VALUE_OPTIONS:
            i += JQ_VALUE_OPTIONS[words[i]] + 1
        elif words[i].startswith("-"):
            i += 1
        else:
            return words[i]
    return None


def _jq_code(program: str) -> tuple[str, list[str]]:
    """The program with every string literal replaced by a marker \\0N\\0 (the code of its
    `\\(...)` interpolations kept), and the literals' text."""
    code: list[str] = []
    literals: list[str] = []
    i = 0
    while i < len(program):
        if program[i] != '"':
            code.append(program[i])
            i += 1
            continue
        i += 1
        text: list[str] = []
        while i < len(program) and program[i] != '"':
            if program[i] == "\\" and program[i + 1: i + 2] == "(":
                depth, j = 1, i + 2
                while j < len(program) and depth:
                    depth += {"(": 1, ")": -1}.get(program[j], 0)
                    j += 1
                code.append(f" ({program[i + 2: j - 1]}) ")
                text.append("\x01")
                i = j
            elif program[i] == "\\":
                text.append(program[i + 1: i + 2])
                i += 2
            else:
                text.append(program[i])
                i += 1
        i += 1
        code.append(f"\x00{len(literals)}\x00")
        literals.append("".join(text))
    return "".join(code), literals


def jq_problems(program: str) -> list[str]:
    """A jq filter over the service's log lines reads only fields they have, and compares
    `.event`, `.logger`, `.level` only with values the service writes."""
    known = logged()
    code, literals = _jq_code(program)
    problems: list[str] = []
    reads = set(re.findall(r"(?<![\w\x00\]\)])\.([A-Za-z_]\w*)", code))
    for body in re.findall(r"\{([^{}]*)\}", code):  # {route, request_id}: shorthand reads
        reads |= {item.strip() for item in body.split(",") if re.fullmatch(r"\s*[A-Za-z_]\w*\s*", item)}
    for name in sorted(reads - known.fields):
        problems.append(f"jq reads .{name}, which no log line has (fields: {', '.join(sorted(known.fields))})")
    for key, index in re.findall(r"\.(event|logger|level)\s*==\s*\x00(\d+)\x00", code):
        value = literals[int(index)]
        ok = {
            "event": lambda v: any(_message_matches(t, v, prefix=False) for t in known.events),
            "logger": lambda v: v in known.loggers,
            "level": lambda v: v in LEVELS,
        }[key](value)
        if not ok:
            problems.append(f'jq compares .{key} with "{value}", which the service never logs')
    for index in re.findall(r"\.event\s*\|\s*startswith\(\s*\x00(\d+)\x00\s*\)", code):
        value = literals[int(index)]
        if not any(_message_matches(t, value, prefix=True) for t in known.events):
            problems.append(f'jq looks for events starting "{value}", which the service never logs')
    return problems


def problems(text: str) -> tuple[list[str], int, int]:
    """(problems, kubectl commands seen, log queries seen) of one runbook's text."""
    found: list[str] = []
    seen_kubectl = seen_queries = 0
    for snippet in snippets(text):
        try:
            lines = pipelines(snippet)
        except ValueError as exc:  # unbalanced quotes
            if "kubectl" in snippet or "unifocus " in snippet:
                found.append(f"`{snippet}`: cannot be parsed ({exc})")
            continue
        for line in lines:
            head = line[0] if line else []
            for words in line:
                if words[:1] == ["unifocus"] and len(words) > 1:  # alone, `unifocus` is a name
                    found += [f"`{snippet}`: {p}" for p in unifocus_problems(words[1:])]
            if head[:1] != ["kubectl"]:
                continue
            seen_kubectl += 1
            cmd = parse_kubectl(head)
            found += [f"`{snippet}`: {p}" for p in kubectl_problems(cmd)]
            if cmd.command[:1] == ["unifocus"]:
                found += [f"`{snippet}`: {p}" for p in unifocus_problems(cmd.command[1:])]
            if cmd.verb != "logs":
                continue
            for words in line[1:]:
                program = jq_program(words) if words[:1] == ["jq"] else None
                if program is not None:
                    seen_queries += 1
                    found += [f"`{snippet}`: {p}" for p in jq_problems(program)]
    return found, seen_kubectl, seen_queries


def _runbooks() -> list[Path]:
    return sorted(RUNBOOKS.glob("*.md"))


def _alerts() -> list[dict[str, Any]]:
    data = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return [rule for group in data["groups"] for rule in group["rules"] if "alert" in rule]


# --------------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", _runbooks(), ids=lambda p: p.name)
def test_runbook_commands_name_what_this_stack_has(path: Path) -> None:
    found, _, _ = problems(path.read_text(encoding="utf-8"))
    assert not found, f"{path.name}:\n" + "\n".join(found)


def test_the_checks_see_the_runbooks_commands() -> None:
    """Guards the parser: a change that made it find nothing would pass every runbook."""
    totals = [problems(p.read_text(encoding="utf-8"))[1:] for p in _runbooks()]
    assert sum(k for k, _ in totals) >= 50
    assert sum(q for _, q in totals) >= 25


API = "app.kubernetes.io/name=unifocus,app.kubernetes.io/component=api"
LOGS = f"kubectl -n unifocus logs -l {API} --tail=-1 --since=15m"


@pytest.mark.parametrize("snippet", [
    # what the audit found in the runbooks
    "kubectl rollout undo deployment/unifocus",
    "kubectl -n unifocus rollout undo deployment/unifocus",
    "kubectl rollout undo deployment/unifocus-api",
    "kubectl exec deploy/unifocus -- date -u",
    "kubectl -n unifocus get pods -l app=unifocus",
    "kubectl -n default get pods -l app.kubernetes.io/name=unifocus",
    "kubectl -n unifocus logs -l app=postgres --tail=-1",
    "kubectl -n unifocus exec deploy/unifocus-api -c api -- unifocus migrate",
    f"kubectl -n unifocus logs -l {API} --since=15m | jq -c 'select(.level==\"error\")'",
    f"{LOGS} | jq -c 'select(.path==\"/api/punches\") | .requestId'",
    f"{LOGS} | jq -c 'select(.event==\"auth_failed\" or .status==401) | {{path, reason, requestId}}'",
    f"{LOGS} | jq -c 'select(.job==\"idempotency_cleanup\")'",
    f"{LOGS} | jq -c 'select(.event==\"tenant_scope_violation\")'",
    # and a few more ways to go wrong
    "kubectl -n unifocus exec deploy/unifocus-api -c web -- date -u",
    "kubectl -n unifocus logs unifocus-api-7d9f8-abcde",
    "kubectl -n unifocus describe job unifocus-migration",
    "kubectl -n unifocus top pod -l app.kubernetes.io/component=migrat",
    f"{LOGS} | jq -c 'select(.logger==\"unifocus.jobz\")'",
    f"{LOGS} | jq -c 'select(.level==\"fatal\")'",
    f"{LOGS} | jq -c 'select(.event | startswith(\"auth failed\"))'",
    "unifocus audit frobnicate",
    "unifocus idempotency cleanup --force",
])
def test_the_checks_reject_wrong_commands(snippet: str) -> None:
    found, _, _ = problems(f"`{snippet}`")
    assert found, f"not caught: {snippet}"


@pytest.mark.parametrize("snippet", [
    "kubectl get nodes",
    "kubectl apply -k deploy/k8s -l app.kubernetes.io/component=migrate",
    "kubectl -n unifocus create job --from=cronjob/unifocus-backup unifocus-backup-manual",
    "kubectl -n unifocus wait --for=condition=complete job/unifocus-migrate --timeout=15m",
    "kubectl -n unifocus exec <pod> -c api -- df -h",
    f"{LOGS} | jq -cR 'fromjson? | select(.event==\"request\" and .status==401) | {{route, request_id}}'",
    f"{LOGS} | jq -cR 'fromjson? | select(.logger==\"unifocus.jobs\" and "
    f"(.event | startswith(\"job idempotency-cleanup \")))'",
    f"{LOGS} | jq -rR 'fromjson? | select(.level==\"error\") | \"\\(.timestamp) \\(.event)\"'",
])
def test_the_checks_accept_right_commands(snippet: str) -> None:
    found, seen, _ = problems(f"`{snippet}`")
    assert seen and not found, found


def test_every_alert_has_a_runbook_and_its_link_resolves() -> None:
    alerts = _alerts()
    assert alerts
    for rule in alerts:
        name = rule["alert"]
        assert (RUNBOOKS / f"{name}.md").is_file(), f"{name}: no docs/runbooks/{name}.md"
        url = rule.get("annotations", {}).get("runbook_url", "")
        assert url.startswith(REPO_URL), f"{name}: runbook_url {url!r} is not in this repository"
        target = ROOT / url.removeprefix(REPO_URL)
        assert target.is_file(), f"{name}: runbook_url {url} resolves to nothing ({target.relative_to(ROOT)})"
        assert target.parent == RUNBOOKS, f"{name}: runbook_url {url} points outside docs/runbooks"


# The pages of docs/runbooks that are no alert's runbook: the index, and the drill log.
NOT_RUNBOOKS = {"README.md", "drills.md"}


def test_every_runbook_belongs_to_an_alert() -> None:
    names = {rule["alert"] for rule in _alerts()}
    orphans = [p.name for p in _runbooks() if p.name not in NOT_RUNBOOKS and p.stem not in names]
    assert not orphans, f"runbooks of no alert in {ALERTS.relative_to(ROOT)}: {orphans}"


@pytest.mark.parametrize("path", _runbooks(), ids=lambda p: p.name)
def test_runbook_links_resolve(path: Path) -> None:
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        assert (path.parent / target.split("#")[0]).exists(), f"{path.name}: link {target} resolves to nothing"
