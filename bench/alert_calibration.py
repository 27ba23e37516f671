"""`make bench-alerts`: the real alert rules, in a real Prometheus, against the real service
under `make bench`'s punch load: which alerts a steady, healthy load would raise (false
positives), and how far every threshold is from what the load drives its input to.

    .venv/bin/python bench/alert_calibration.py [--duration 360] [--scrape-interval 5]
                                                [--eval-interval 5] [--clients 16]
                                                [--employees 1000] [--keep-db]

1. A fresh benchmark database on DATABASE_URL's server (else an embedded PostgreSQL), migrated
   and seeded by bench/run.py's helpers (a tenant, a manager, 2 x `--employees` employees with
   a 09:00-17:00 shift every day), and `unifocus serve --workers 2` on it as bench/run.py
   starts it (rate limits off, log level WARNING), except that the scheduler runs, as in
   production (its table-stats job feeds DBServerConnections*, its cleanup
   IdempotencyTableGrowth), and REDIS_URL, when set, is passed on (RedisUnavailable).
   A 2 s wrk warm-up (short on purpose: the long load is the measurement; bench/run.py warms
   for 8 s), then ANALYZE, as bench/run.py does.
2. /usr/bin/prometheus on a temp dir and a free port, with deploy/prometheus/prometheus.yml
   turned into a local config: its `unifocus` job (job="unifocus", as APIDown and the
   dashboard select it) pointed at the service, its `prometheus` job at itself (the
   unifocus-monitoring rules read prometheus_*), its global external labels, and
   `--scrape-interval` / `--eval-interval` (default 5 s) instead of 15 s; the `alertmanager` and
   `node` jobs are dropped (nothing runs there), and so is the `alerting` section.
   deploy/prometheus/alerts.yml is loaded unchanged, from where it is.
3. wrk -t2 -c`--clients` with bench/punch.lua (unique Idempotency-Keys, each employee's days
   oldest first) for `--duration` seconds, while bench/run.py's probes send GET /health at
   20/s and GET /ready at 5/s (from before Prometheus starts to the end).
4. Prometheus's HTTP API: `ALERTS` over the run (every alert pending or firing, for how long),
   each rule's health, and, for every alert of alerts.yml, each comparison of its expression
   (parsed from alerts.yml: `input op threshold`, split at top-level or / and / unless) as a
   range query over the load: the peak (or, for `<` / `==`, the lowest) value of its input
   next to its threshold (CPU and memory also against deploy/k8s/deployment.yaml's pod limits:
   without a cgroup limit the service divides by the machine's cores and RAM). An alert whose
   inputs come from a source that is not running here
   (node_exporter, kube-state-metrics, Alertmanager, ...), that needs history Prometheus does
   not have (`offset 1w`), or that reads a feature this run turns off (rate limits) is listed
   apart as "not exercised here". Watchdog must fire (else the pipeline is broken).
5. A table on stdout and the same figures as JSON in bench/results/alerts-<UTC stamp>.json.
   Every exercised alert that was pending or firing during the load is a false positive of a
   healthy load: the table lists it with its input's values over the load and the scheduler's
   job runs. Exit status 1 (after both) when Watchdog did not fire, a rule failed to evaluate,
   or the false positives reach 5% of the exercised alerts (the readiness gate's bound).

Pending counts as "would page if sustained": a rule whose `for:` is longer than the run can
only be pending here. Windows longer than the run ([30m] ... [3d], `increase(...[1d])`) are
evaluated over the data there is, so the long windows of the SLO burn-rate pairs see the same
few minutes as the short ones.
"""

from __future__ import annotations

import argparse
import ast
import math
import operator
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

from run import (
    SECRET,
    SPAN_DAYS,
    Server,
    analyze,
    bench_database,
    code_version,
    free_port,
    health_probes,
    midnight_days_ago,
    punch_count,
    run_wrk,
    seed,
    start_service,
    stop_probes,
    warm_up,
    write_result,
)
from unifocus.auth.tokens import mint_token
from unifocus.db.migrate import upgrade
from unifocus.settings import Settings

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PROM_DIR = ROOT / "deploy" / "prometheus"
ALERTS_FILE = PROM_DIR / "alerts.yml"
PROM_CONFIG = PROM_DIR / "prometheus.yml"
K8S_DEPLOYMENT = ROOT / "deploy" / "k8s" / "deployment.yaml"  # read only: its CPU and memory limits
# the jobs of prometheus.yml this run reproduces; the others (alertmanager, node) have nothing to scrape
LOCAL_JOBS = ("unifocus", "prometheus")
# punches per second the span of days is sized for (the service does ~1000/s on 2 cores)
MAX_PUNCH_RATE = 2000
WARM_DAYS_AGO = 2500  # the warm-up's BENCH_DAY0, far from the load's days
WARMUP_S = 2  # short on purpose: the long load that follows is the measurement

# Where a series comes from when the service does not export it (for "not exercised" reasons).
SOURCES = {"node_": "node_exporter", "kube_": "kube-state-metrics", "alertmanager_": "Alertmanager",
           "prometheus_": "Prometheus itself", "up": "a scrape target"}
# Series this run turns off, as `make bench` does: their alerts are not exercised.
DISABLED = {"unifocus_rate_limit_rejections_total":
            "rate limits are off (UNIFOCUS_RATE_LIMIT_ENABLED=false, as in make bench: one tenant's "
            "~1000 punches/s is 20x the default tenant bucket's 50/s refill)"}


# --- the rules: parsed from alerts.yml ------------------------------------------------------------

UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")
IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
NUMBER = re.compile(r"[0-9.][0-9A-Za-z_.]*")
MODIFIER = re.compile(r"^(?:on|ignoring)\s*\([^)]*\)\s*(?:group_(?:left|right)\s*(?:\([^)]*\))?)?\s*")
LABEL_LISTS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
KEYWORDS = {"and", "or", "unless", "bool", "offset", "sum", "min", "max", "avg", "count", "group", "stddev",
            "stdvar", "topk", "bottomk", "quantile", "count_values", "inf", "nan"} | LABEL_LISTS
COMPARISONS = (">=", "<=", "==", "!=", ">", "<")
OPEN, CLOSE = "({[", ")}]"


def seconds(text: str) -> float:
    """A Prometheus duration ("30s", "10m", "1h30m") in seconds."""
    parts = DURATION.findall(str(text))
    if not parts or "".join(n + u for n, u in parts) != str(text).strip():
        raise ValueError(f"not a duration: {text!r}")
    return sum(float(n) * UNITS[u] for n, u in parts)


def _skip_string(expr: str, i: int) -> int:
    quote, i = expr[i], i + 1
    while i < len(expr) and expr[i] != quote:
        i += 2 if expr[i] == "\\" else 1
    return i + 1


def _depths(expr: str, i: int = 0) -> Iterator[tuple[int, str, int]]:
    """(index, character, bracket depth after it) of every character from `i` that is not in
    a string; a closing bracket reports the depth it returns to."""
    depth = 0
    while i < len(expr):
        c = expr[i]
        if c in "\"'`":
            i = _skip_string(expr, i)
            continue
        depth += (c in OPEN) - (c in CLOSE)
        yield i, c, depth
        i += 1


def _top_level(expr: str) -> list[int]:
    """Indices of the characters outside every (), {}, [] and string."""
    return [i for i, c, depth in _depths(expr) if depth == 0 and c not in CLOSE]


def _matching(expr: str, i: int) -> int:
    """Index of the bracket closing the one at `i`."""
    for k, c, depth in _depths(expr, i):
        if depth == 0 and c in CLOSE:
            return k
    raise ValueError(f"unbalanced: {expr!r}")


def strip_parens(expr: str) -> str:
    expr = expr.strip()
    while expr.startswith("(") and _matching(expr, 0) == len(expr) - 1:
        expr = expr[1:-1].strip()
    return expr


def split_top(expr: str, words: tuple[str, ...]) -> list[tuple[str, str]]:
    """`expr` cut at its top-level binary set operators among `words`: [(operator, operand)],
    the first operator "". A vector-matching modifier (`on (...)`, `ignoring (...)`) opening an
    operand belongs to its operator and is dropped."""
    cuts: list[tuple[int, int, str]] = []
    top = set(_top_level(expr))
    for i in sorted(top):
        if i and (expr[i - 1].isalnum() or expr[i - 1] in "_:"):
            continue
        m = IDENT.match(expr, i)
        if m and m.group() in words and all(j in top for j in range(i, m.end())):
            cuts.append((i, m.end(), m.group()))
    parts, start, op = [], 0, ""
    for begin, end, word in cuts:
        parts.append((op, MODIFIER.sub("", expr[start:begin].strip())))
        start, op = end, word
    parts.append((op, MODIFIER.sub("", expr[start:].strip())))
    return parts


def number(text: str) -> float | None:
    """The value of a constant arithmetic expression ("(14.4 * 0.001)", "26 * 3600", "100e9"),
    else None (a threshold that is itself a query)."""
    ops: dict[type, Any] = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
                            ast.Div: operator.truediv, ast.Pow: operator.pow, ast.USub: operator.neg,
                            ast.UAdd: operator.pos}

    def value(node: ast.AST) -> float:
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return float(node.value)
        if isinstance(node, ast.BinOp) and type(node.op) in ops:
            return float(ops[type(node.op)](value(node.left), value(node.right)))
        if isinstance(node, ast.UnaryOp) and type(node.op) in ops:
            return float(ops[type(node.op)](value(node.operand)))
        raise ValueError(ast.dump(node))

    try:
        return value(ast.parse(text.strip(), mode="eval").body)
    except (SyntaxError, ValueError, ZeroDivisionError):
        return None


def selectors(expr: str) -> list[str]:
    """The series selectors an expression reads (`name` or `name{matchers}`), in order."""
    out: list[str] = []
    i, n = 0, len(expr)
    while i < n:
        c = expr[i]
        if c in "\"'`":
            i = _skip_string(expr, i)
        elif c == "[":
            i = _matching(expr, i) + 1
        elif c == "{":  # a selector without a name
            i = _matching(expr, i) + 1
        elif c.isdigit() or (c == "." and i + 1 < n and expr[i + 1].isdigit()):
            m = NUMBER.match(expr, i)
            i = m.end() if m else i + 1
        elif IDENT.match(c):
            m = IDENT.match(expr, i)
            assert m is not None
            name, j = m.group(), m.end()
            k = j
            while k < n and expr[k].isspace():
                k += 1
            nxt = expr[k] if k < n else ""
            if name in LABEL_LISTS and nxt == "(":
                i = _matching(expr, k) + 1
            elif name == "offset":
                d = DURATION.match(expr, k)
                i = d.end() if d else k
            elif nxt == "(" or name.lower() in KEYWORDS:
                i = j
            elif nxt == "{":
                end = _matching(expr, k)
                out.append(name + expr[k:end + 1])
                i = end + 1
            else:
                out.append(name)
                i = j
        else:
            i += 1
    return out


def metric_name(selector: str) -> str:
    return selector.split("{", 1)[0]


@dataclass
class Clause:
    """One leaf of an alert expression: `input op threshold`, or a bare expression (absent(),
    group()) when it compares nothing. `role`: "" (the first of its alternative), "and",
    "unless" (it suppresses the alert); `alternative`: which top-level `or` branch."""

    text: str
    alternative: int
    role: str
    input: str
    op: str | None = None
    threshold: str | None = None
    threshold_value: float | None = None

    @property
    def compares(self) -> bool:
        return self.op is not None


def clause(text: str, alternative: int, role: str) -> Clause:
    top = _top_level(text)
    for i in top:
        for op in COMPARISONS:
            if text.startswith(op, i) and all(j in top for j in range(i, i + len(op))):
                rhs = re.sub(r"^bool\b", "", text[i + len(op):].strip()).strip()
                return Clause(text, alternative, role, strip_parens(text[:i]), op, strip_parens(rhs),
                              number(rhs))
    return Clause(text, alternative, role, strip_parens(text))


def clauses(expr: str) -> list[Clause]:
    """The comparisons of an alert expression: its top-level `or` alternatives (a parenthesised
    operand holding `or`s is flattened into more alternatives, as `(a or b) and c` is
    `a and c or b and c`), each cut at `and` / `unless`."""
    out: list[Clause] = []

    def walk(e: str, prefix: list[tuple[str, str]]) -> None:
        e = strip_parens(e)
        alts = split_top(e, ("or",))
        if len(alts) > 1:
            for _, alt in alts:
                walk(alt, prefix)
            return
        parts = split_top(e, ("and", "unless"))
        for k, (_, operand) in enumerate(parts):
            inner = strip_parens(operand)
            if len(split_top(inner, ("or",))) > 1:
                rest = "".join(f" {op} ({p})" for op, p in parts[k + 1:])
                for _, alt in split_top(inner, ("or",)):
                    walk(f"({alt}){rest}", prefix + parts[:k])
                return
        alternative = 1 + max((c.alternative for c in out), default=0)
        for k, (op, operand) in enumerate(prefix + parts):
            out.append(clause(strip_parens(operand), alternative, (op or "and") if k else ""))

    walk(expr, [])
    return out


@dataclass
class Rule:
    name: str
    group: str
    expr: str
    for_s: float
    severity: str
    clauses: list[Clause] = field(default_factory=list)


def load_rules(path: Path = ALERTS_FILE) -> tuple[dict[str, str], list[Rule]]:
    """(recording rule -> expression, the alerting rules in file order) of alerts.yml."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    records: dict[str, str] = {}
    alerts: list[Rule] = []
    for group in doc["groups"]:
        for r in group["rules"]:
            expr = " ".join(str(r["expr"]).split())
            if "record" in r:
                records[r["record"]] = expr
            else:
                alerts.append(Rule(r["alert"], group["name"], expr, seconds(r.get("for", "0s")),
                                   r.get("labels", {}).get("severity", ""), clauses(expr)))
    return records, alerts


def base_selectors(expr: str, records: dict[str, str]) -> list[str]:
    """The scraped series behind an expression: recording rules replaced by what they read."""
    out: list[str] = []
    for s in selectors(expr):
        if metric_name(s) in records:
            out += [b for b in base_selectors(records[metric_name(s)], records) if b not in out]
        elif s not in out:
            out.append(s)
    return out


def expanded(expr: str, records: dict[str, str]) -> str:
    """`expr` with every recording rule's name replaced by its expression (for windows and offsets)."""
    for name, body in records.items():
        expr = re.sub(rf"(?<![\w:]){re.escape(name)}(?![\w:])", f"({body})", expr)
    return expr


def offsets(expr: str) -> list[float]:
    return [seconds(d) for d in re.findall(r"\boffset\s+(\S+?)(?=[\s)\]]|$)", expr)]


def windows(expr: str) -> list[float]:
    return [seconds(d) for d in re.findall(r"\[([0-9smhdwy]+)(?::[0-9smhdwy]*)?\]", expr)]


# --- Prometheus -----------------------------------------------------------------------------------

def prometheus_config(service: str, prom: str, scrape_s: float, eval_s: float) -> dict[str, Any]:
    """deploy/prometheus/prometheus.yml for this machine: its `unifocus` and `prometheus` jobs
    (their names, paths and labels unchanged) at local targets, its external labels, a short
    scrape and evaluation interval, and alerts.yml from where it is."""
    base = yaml.safe_load(PROM_CONFIG.read_text(encoding="utf-8"))
    jobs = {j["job_name"]: j for j in base["scrape_configs"]}
    missing = [j for j in LOCAL_JOBS if j not in jobs]
    if missing:
        sys.exit(f"{PROM_CONFIG.relative_to(ROOT)} has no job {missing}: this script reproduces its jobs")
    targets = {"unifocus": service, "prometheus": prom}
    interval = f"{scrape_s:g}s"
    return {
        "global": {**base.get("global", {}), "scrape_interval": interval, "scrape_timeout": interval,
                   "evaluation_interval": f"{eval_s:g}s"},
        "rule_files": [str(ALERTS_FILE)],
        "scrape_configs": [{**jobs[j], "static_configs": [{"targets": [targets[j]]}]} for j in LOCAL_JOBS],
    }


class Prom:
    def __init__(self, base: str) -> None:
        self.client = httpx.Client(base_url=base + "/api/v1", timeout=30)

    def get(self, path: str, **params: Any) -> Any:
        r = self.client.get(path, params=params)
        body = r.json()
        if body.get("status") != "success":
            raise RuntimeError(f"Prometheus {path} {params}: {body.get('error', r.text[:300])}")
        return body["data"]

    def instant(self, expr: str, t: float) -> list[dict[str, Any]]:
        data = self.get("/query", query=expr, time=f"{t:.3f}")
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        return list(data["result"])

    def series(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        """A range query: [{metric, values: [[t, "v"], ...]}]."""
        data = self.get("/query_range", query=expr, start=f"{start:.3f}", end=f"{end:.3f}", step=f"{step:g}")
        if data["resultType"] == "scalar":
            return [{"metric": {}, "values": [data["result"]]}]
        return list(data["result"])

    def present(self, selector: str, start: float, end: float) -> bool:
        return bool(self.get("/series", **{"match[]": selector, "start": f"{start:.0f}", "end": f"{end:.0f}"}))


def k8s_limits() -> dict[str, float]:
    """deploy/k8s/deployment.yaml's per-pod limits, in the units of the service's limit gauges:
    {unifocus_process_cpu_limit_cores: cores, unifocus_process_memory_limit_bytes: bytes}."""
    units = {"": 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    out: dict[str, float] = {}
    for doc in yaml.safe_load_all(K8S_DEPLOYMENT.read_text(encoding="utf-8")):
        if not doc or doc.get("kind") != "Deployment":
            continue
        for container in doc["spec"]["template"]["spec"]["containers"]:
            limits = container.get("resources", {}).get("limits", {})
            for key, metric in (("cpu", "unifocus_process_cpu_limit_cores"),
                                ("memory", "unifocus_process_memory_limit_bytes")):
                m = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(limits.get(key, "")))
                if m and m.group(2) in units:
                    out[metric] = float(m.group(1)) * units[m.group(2)]
    return out


def at_k8s_limits(expr: str, value: float, prom: Prom, t: float) -> dict[str, Any]:
    """For an input divided by the machine's CPU or memory (the service's limit gauges read
    the cgroup, else the machine), the same use divided by deploy/k8s's pod limit instead."""
    for metric, limit in k8s_limits().items():
        if metric in selectors(expr) and limit > 0:
            here = [float(r["value"][1]) for r in prom.instant(f"max({metric})", t)]
            if here:
                return {"limit_here": here[0], "limit_k8s": limit, "value_at_k8s_limit": value * here[0] / limit}
    return {}


def points(result: list[dict[str, Any]]) -> list[tuple[float, float, dict[str, str]]]:
    out = []
    for s in result:
        for t, v in s["values"]:
            x = float(v)
            if not math.isnan(x):
                out.append((float(t), x, s["metric"]))
    return out


# --- the run --------------------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=int, default=360,
                    help="seconds of punch load (>= 300: the 5-minute windows of the thresholds full of load)")
    ap.add_argument("--scrape-interval", type=float, default=5.0, help="seconds between scrapes")
    ap.add_argument("--eval-interval", type=float, default=5.0, help="seconds between rule evaluations")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--employees", type=int, default=1000)
    ap.add_argument("--prometheus", default=shutil.which("prometheus") or "/usr/bin/prometheus")
    ap.add_argument("--keep-db", action="store_true")
    args = ap.parse_args()
    for tool in ("wrk", args.prometheus, "promtool"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed (apt-get install wrk prometheus)")

    with bench_database("unifocus-alerts-", args.keep_db) as (db, work, started):
        results = calibrate(args, db, work, started)
    report(results)
    problems = results["verdict"]["problems"]
    if problems:
        sys.exit("alert calibration: " + "; ".join(problems))


def calibrate(args: argparse.Namespace, db: str, work: Path, started: list[Server]) -> dict[str, Any]:
    t_start = time.time()
    records, rules = load_rules()
    settings = Settings(database_url=db, jwt_secret=SECRET, data_dir=work / "data", scheduler_enabled=False,
                        rate_limit_enabled=False, log_level="WARNING")
    upgrade(db, settings)
    tenant, user = seed(db, args.employees)
    token = mint_token(settings, tenant, str(user), ttl_minutes=max(120, args.duration // 60 + 60))
    span = max(SPAN_DAYS, math.ceil(args.duration * MAX_PUNCH_RATE / args.employees / 2) + 1)
    if span + 2 >= WARM_DAYS_AGO:
        sys.exit(f"--duration {args.duration} needs {span} days of punches: more than the seeded schedules hold")
    base_env = {"BENCH_TOKEN": token, "BENCH_EMPLOYEES": str(args.employees), "BENCH_COUNTS": str(work / "counts"),
                "BENCH_ORDER": "forward"}

    # the service as bench/run.py starts it, with the scheduler on and Redis, as in production
    extra = {"UNIFOCUS_SCHEDULER_ENABLED": "true"}
    redis_url = os.environ.get("REDIS_URL")
    if redis_url:
        extra["REDIS_URL"] = redis_url
    service, _ = start_service(work, db, "WARNING", started, extra)
    print(f"bench database ready ({args.employees} employees); service on {service.base}; warm-up ...", flush=True)
    warm_up(service.base, {**base_env, "BENCH_SPAN": str(SPAN_DAYS)}, "awarm", midnight_days_ago(WARM_DAYS_AGO),
            WARMUP_S, args.clients, work)
    analyze(db)
    probes = health_probes(service.base)

    # Prometheus, with alerts.yml unchanged
    prom_port = free_port()
    config = prometheus_config(f"127.0.0.1:{service.port}", f"127.0.0.1:{prom_port}", args.scrape_interval,
                               args.eval_interval)
    config_path = work / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    check = subprocess.run(["promtool", "check", "config", str(config_path)], capture_output=True, text=True,
                           check=False)
    if check.returncode != 0:
        sys.exit(f"promtool check config failed:\n{check.stdout}{check.stderr}")
    prometheus = Server("prometheus", [args.prometheus, f"--config.file={config_path}",
                                       f"--storage.tsdb.path={work / 'tsdb'}",
                                       f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn"],
                        dict(os.environ), work, work, prom_port)
    started.append(prometheus)
    prometheus.wait_ready("/-/ready")
    prom_start = time.time()
    prom = Prom(prometheus.base)
    version = prom.get("/status/buildinfo").get("version")
    tick = max(args.scrape_interval, args.eval_interval)
    deadline = time.time() + 60
    while not prom.instant('up{job="unifocus"} == 1', time.time()):
        if time.time() > deadline:
            sys.exit(f"Prometheus never scraped the service: {prom.get('/targets')}")
        time.sleep(0.5)
    time.sleep(2 * tick + 1)  # two scrapes for rate(), then an evaluation

    print(f"Prometheus {version} on {prometheus.base} (scrape {args.scrape_interval:g} s, rules every "
          f"{args.eval_interval:g} s); punch load: wrk {args.clients} connections, {args.duration} s "
          "(+ /health and /ready probes) ...", flush=True)
    before = punch_count(db)
    t0 = time.time()
    load = run_wrk(service.base, {**base_env, "BENCH_PREFIX": f"al{uuid.uuid4().hex[:6]}", "BENCH_SPAN": str(span),
                                  "BENCH_DAY0": str(midnight_days_ago(2))},
                   args.duration, args.clients, work / "load.json")
    t1 = time.time()
    load["writes"] = punch_count(db) - before
    time.sleep(tick + args.scrape_interval + 1)  # the load's last scrape, evaluated
    t_end = time.time()
    stop_probes(probes)

    print("querying Prometheus ...", flush=True)
    evaluation = evaluate(prom, records, rules, prom_start, t0, t1, t_end, args.eval_interval)
    rule_health = [{"alert": r["name"], "health": r["health"], "error": r.get("lastError", "")}
                   for g in prom.get("/rules")["groups"] for r in g["rules"] if r.get("health") != "ok"]
    targets = [{"job": t["labels"].get("job"), "instance": t["labels"].get("instance"), "health": t["health"]}
               for t in prom.get("/targets")["activeTargets"]]
    peak_rss = service.peak_rss_mb()
    health, ready = (probe.summary() for probe in probes)

    verdict = judge(evaluation, rule_health)
    return {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "code": code_version(),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "params": {"duration_s": args.duration, "clients": args.clients, "wrk_threads": 2, "service_workers": 2,
                   "employees": args.employees, "span_days": span, "scrape_interval_s": args.scrape_interval,
                   "eval_interval_s": args.eval_interval, "scheduler_enabled": True, "rate_limit_enabled": False,
                   "redis": bool(redis_url), "service_log_level": "WARNING"},
        "prometheus": {"version": version, "jobs": list(LOCAL_JOBS),
                       "jobs_not_scraped": [j["job_name"] for j in yaml.safe_load(PROM_CONFIG.read_text())
                                            ["scrape_configs"] if j["job_name"] not in LOCAL_JOBS],
                       "targets": targets, "rules_file": str(ALERTS_FILE.relative_to(ROOT)),
                       "seconds_before_load": round(t0 - prom_start, 1),
                       "seconds_after_load": round(t_end - t1, 1)},
        "load": {"requests_per_s": round(load["rps"], 1),
                 "punch_writes_per_s": round(load["writes"] / load["duration_s"], 1),
                 "latency_ms": {"p50": load["p50_ms"], "p90": load["p90_ms"], "p99": load["p99_ms"],
                                "max": load["max_ms"]},
                 "non_2xx": load["non_2xx"],
                 "socket_errors": load["errors_connect"] + load["errors_read"] + load["errors_write"]
                 + load["errors_timeout"],
                 "health_ms": health, "ready_ms": ready, "service_peak_rss_mb_per_worker": peak_rss},
        "rule_health": rule_health,
        **evaluation,
        "verdict": verdict,
        "wall_seconds": round(time.time() - t_start, 1),
    }


def evaluate(prom: Prom, records: dict[str, str], rules: list[Rule], prom_start: float, t0: float, t1: float,
             t_end: float, step: float) -> dict[str, Any]:
    """Every alert: the states it reached (ALERTS), whether it was exercised here, and each
    comparison's input over the load (peak or lowest) next to its threshold."""
    history = t_end - prom_start
    ticks = max(1, int((t_end - t0) // step) + 1)
    seen: dict[str, dict[str, Any]] = {}
    active_ticks: dict[str, set[float]] = {}
    for t, _, labels in points(prom.series("ALERTS", prom_start, t_end, step)):
        a = seen.setdefault(labels["alertname"], {"pending_s": 0.0, "firing_s": 0.0, "first_s": None,
                                                  "seen_during_load": False})
        a[f"{labels['alertstate']}_s"] += step
        a["first_s"] = round(t - t0, 1) if a["first_s"] is None else min(a["first_s"], round(t - t0, 1))
        if t >= t0:
            a["seen_during_load"] = True
            active_ticks.setdefault(labels["alertname"], set()).add(t)

    presence: dict[str, bool] = {}

    def present(selector: str) -> bool:
        if selector not in presence:
            presence[selector] = prom.present(selector, prom_start, t_end)
        return presence[selector]

    alerts = []
    for rule in rules:
        # which alternatives of the expression this setup can evaluate
        gaps: dict[int, list[str]] = {}
        for c in rule.clauses:
            if c.role == "unless":
                continue
            reasons = gaps.setdefault(c.alternative, [])
            text = expanded(c.text, records)
            for s in base_selectors(c.text, records):
                name = metric_name(s)
                if name in DISABLED:
                    reasons.append(f"{name}: {DISABLED[name]}")
                elif not name.startswith("unifocus_") and not present(s):
                    source = next((v for k, v in SOURCES.items() if name.startswith(k)), "its exporter")
                    reasons.append(f"no {s} ({source} is not running or not scraped here)")
            reasons += [f"needs {o / 86400:g} d of history (offset); Prometheus has {history:.0f} s"
                        for o in offsets(text) if o > history]
        exercised = any(not r for r in gaps.values())
        state = seen.get(rule.name, {"pending_s": 0.0, "firing_s": 0.0, "first_s": None, "seen_during_load": False})
        condition = prom.series(rule.expr, t0, t_end, step)
        items = []
        for c in rule.clauses:
            item: dict[str, Any] = {"alternative": c.alternative, "role": c.role, "input": c.input, "op": c.op,
                                    "threshold": c.threshold, "threshold_value": c.threshold_value,
                                    "exercised": not gaps.get(c.alternative)}
            # the peak is read once the input's windows hold nothing but the load (a rate over a window
            # the load only partly fills counts only that part); windows longer than the load are flagged
            wins = windows(expanded(c.text, records))
            full = [w for w in wins if w <= t1 - t0]
            partial = sorted({w for w in wins if w > t1 - t0})
            item["peak_from_s"] = max(full, default=0.0)
            if partial:
                item["windows_longer_than_load_s"] = partial
            if c.compares:
                low = c.op in ("<", "<=", "==")
                every = points(prom.series(c.input, t0, t_end, step))
                pts = [p for p in every if p[0] >= t0 + item["peak_from_s"]]
                if state["seen_during_load"] or any(m in c.input for m in k8s_limits()):
                    item["timeline"] = timeline(every, t0, low)  # the evidence: the input over the whole load
                if pts:
                    t, v, labels = (min if low else max)(pts, key=lambda p: p[1])
                    item.update({"observed": "min" if low else "peak", "value": v, "at_s": round(t - t0, 1),
                                 "labels": {k: x for k, x in labels.items() if k not in ("job", "service")}})
                    item.update(at_k8s_limits(c.input, v, prom, t))
                else:
                    item.update({"observed": "min" if low else "peak", "value": None})
                if c.threshold_value is None and c.threshold:
                    th = [p for p in points(prom.series(c.threshold, t0, t_end, step))
                          if p[0] >= t0 + item["peak_from_s"]]
                    item["threshold_observed"] = ({"min": min(p[1] for p in th), "max": max(p[1] for p in th)}
                                                  if th else None)
                    # a threshold that is itself a query: the input's largest share of it at one instant
                    rhs = {t: v for t, v, _ in th}
                    shares = [v / rhs[t] for t, v, _ in pts if rhs.get(t, 0) > 0]
                    item["peak_share_of_threshold"] = max(shares) if shares else None
                item["crossed"] = bool(points(prom.series(c.text, t0, t_end, step)))
            else:
                item["crossed"] = bool(points(prom.series(c.text, t0, t_end, step)))
            items.append(item)
        if rule.name == "Watchdog":
            kind = "expected"
        elif not exercised:
            kind = "not_exercised"
        elif state["seen_during_load"]:
            kind = "false_positive"
        else:
            kind = "quiet"
        alerts.append({
            "alert": rule.name, "group": rule.group, "severity": rule.severity, "for_s": rule.for_s,
            "class": kind, "pending_s": state["pending_s"], "firing_s": state["firing_s"],
            "first_seen_s_after_load_start": state["first_s"],
            "active_share_of_load": round(len(active_ticks.get(rule.name, ())) / ticks, 3),
            "longest_active_streak_s": streak(active_ticks.get(rule.name, set()), step),
            "condition_true_during_load": bool(points(condition)),
            "not_exercised_because": sorted({r for rs in gaps.values() for r in rs}) if not exercised else [],
            "clauses": items,
        })
    unknown = sorted(set(seen) - {r.name for r in rules})
    # when the scheduler's jobs finished (relative to the load's start): what else held the pool
    jobs: dict[str, list[float]] = {}
    for _, v, labels in points(prom.series("unifocus_job_last_success_timestamp_seconds", prom_start, t_end, step)):
        done = round(v - t0, 1)
        name = labels.get("exported_job", "?")
        if v > 0 and done not in jobs.setdefault(name, []):
            jobs[name].append(done)
    return {"alerts": alerts, "alerts_not_in_rules": unknown, "scheduler_jobs_finished_s": jobs,
            "load_ticks": ticks,
            "load_window_s": round(t_end - t0, 1), "load_seconds": round(t1 - t0, 1)}


def streak(ticks: set[float], step: float) -> float:
    """The longest run of consecutive evaluations in `ticks`, in seconds (how close to its `for:`)."""
    best = run = 0
    last = None
    for t in sorted(ticks):
        run = run + 1 if last is not None and t - last <= step * 1.5 else 1
        best, last = max(best, run), t
    return best * step


def timeline(pts: list[tuple[float, float, dict[str, str]]], t0: float, low: bool) -> list[list[float]]:
    """[[seconds after the load started, value]] (the lowest or highest series at each instant)."""
    by_t: dict[float, float] = {}
    for t, v, _ in pts:
        by_t[t] = v if t not in by_t else (min if low else max)(by_t[t], v)
    return [[round(t - t0, 1), round(v, 6)] for t, v in sorted(by_t.items())]


def judge(evaluation: dict[str, Any], rule_health: list[dict[str, Any]]) -> dict[str, Any]:
    """The gate's figures: false positives among the alerts this setup exercises, as a share of
    those alerts and of their (alert, evaluation) pairs during the load."""
    alerts = evaluation["alerts"]
    exercised = [a for a in alerts if a["class"] in ("quiet", "false_positive")]
    fps = [a for a in exercised if a["class"] == "false_positive"]
    pairs = sum(a["active_share_of_load"] for a in exercised)
    watchdog = next((a for a in alerts if a["alert"] == "Watchdog"), None)
    problems = []
    if watchdog is None or watchdog["firing_s"] == 0:
        problems.append("Watchdog never fired: the rules were not evaluated")
    if rule_health:
        problems.append(f"rules failing to evaluate: {[r['alert'] for r in rule_health]}")
    share = len(fps) / len(exercised) if exercised else None
    if share is None or share >= 0.05:
        problems.append(f"false positives under the healthy load: {[a['alert'] for a in fps]} of "
                        f"{len(exercised)} exercised alerts, not below 5%")
    return {
        "exercised_alerts": len(exercised),
        "not_exercised_alerts": sum(a["class"] == "not_exercised" for a in alerts),
        "false_positive_alerts": [a["alert"] for a in fps],
        "false_positive_share_of_alerts": round(share, 4) if share is not None else None,
        "false_positive_share_of_evaluations": round(pairs / len(exercised), 4) if exercised else None,
        "gate_below_5_percent": share is not None and share < 0.05,
        "watchdog_firing_s": watchdog["firing_s"] if watchdog else 0,
        "problems": problems,
    }


# --- the table ------------------------------------------------------------------------------------

def fmt(v: float | None) -> str:
    if v is None:
        return "no data"
    if v == 0:
        return "0"
    if abs(v) >= 1e5:
        return f"{v:.3g}"
    if abs(v) >= 100:
        return f"{v:.0f}"
    return f"{v:.3g}" if abs(v) >= 0.001 else f"{v:.2e}"


def short(expr: str, width: int = 70) -> str:
    expr = " ".join(expr.split())
    return expr if len(expr) <= width else expr[:width - 3] + "..."


def headroom(item: dict[str, Any]) -> str:
    """How far the observed input stayed from the threshold: threshold / peak for `>`,
    the lowest value against the threshold for `<` and `==`."""
    v, th = item.get("value"), item.get("threshold_value")
    if v is None:
        return "no series"
    if th is None:
        share = item.get("peak_share_of_threshold")
        if share:
            return f"{1 / share:.3g}x" if share < 1 else f"over ({share:.3g}x)"
        return "threshold: no data" if not item.get("threshold_observed") else "never above 0"
    if item["op"] in (">", ">="):
        if v <= 0:
            return "never above 0"
        if th <= 0:
            return "-"
        return f"{th / v:.3g}x" if v < th else f"over ({v / th:.3g}x)"
    return f"{v - th:+.3g}"


def clause_rows(alerts: list[dict[str, Any]], classes: tuple[str, ...]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = [("alert", "sev", "for", "input (observed over the load)", "value", "condition",
                                    "headroom", "crossed")]
    for a in alerts:
        if a["class"] not in classes:
            continue
        for c in a["clauses"]:
            if not c["op"] or (a["class"] != "not_exercised" and not c["exercised"]):
                continue
            threshold = fmt(c["threshold_value"]) if c["threshold_value"] is not None else short(c["threshold"], 30)
            name = a["alert"] + (" (FP)" if a["class"] == "false_positive" else "")
            rows.append((name, a["severity"][:4], f"{a['for_s']:.0f}s",
                         f"{c['role'] + ' ' if c['role'] else ''}{short(c['input'], 58)} ({c['observed']})",
                         fmt(c["value"]) + ("*" if c.get("windows_longer_than_load_s") else ""),
                         f"{c['op']} {threshold}", headroom(c), "YES" if c["crossed"] else "no"))
    return rows


def print_table(rows: list[tuple[str, ...]]) -> None:
    if len(rows) < 2:
        print("  none")
        return
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  " + "  ".join(f"{v:<{w}}" for v, w in zip(row, widths, strict=True)).rstrip())


def report(r: dict[str, Any]) -> None:
    ld, pr, vd = r["load"], r["prometheus"], r["verdict"]
    print(f"\nload: {ld['requests_per_s']} requests/s, {ld['punch_writes_per_s']} punch writes/s, p50 / p99 "
          f"{ld['latency_ms']['p50']:.1f} / {ld['latency_ms']['p99']:.1f} ms, {ld['non_2xx']} non-2xx, "
          f"{ld['socket_errors']} socket errors; /health p99 {ld['health_ms']['p99_ms']} ms, /ready p99 "
          f"{ld['ready_ms']['p99_ms']} ms ({ld['ready_ms']['failures']} not 200); peak RSS per worker "
          f"{', '.join(map(str, ld['service_peak_rss_mb_per_worker']))} MB")
    print(f"Prometheus {pr['version']}: jobs {pr['jobs']} (not scraped here: {pr['jobs_not_scraped']}), "
          f"{r['params']['scrape_interval_s']:g} s scrape / {r['params']['eval_interval_s']:g} s rules, "
          f"{pr['seconds_before_load']} s before the load, {r['load_seconds']} s of load, "
          f"{pr['seconds_after_load']} s after")

    print("\nalerts pending or firing (ALERTS, from Prometheus's start to the end):")
    active = [a for a in r["alerts"] if a["pending_s"] or a["firing_s"]]
    for a in active:
        print(f"  {a['alert']:<32} {a['class']:<15} {a['severity']:<8} for {a['for_s']:>5.0f} s: pending "
              f"{a['pending_s']:.0f} s (longest streak {a['longest_active_streak_s']:.0f} s), firing "
              f"{a['firing_s']:.0f} s, first {a['first_seen_s_after_load_start']} s after the load started")
    if not active:
        print("  none")

    print("\nexercised alerts: each comparison's input over the load against its threshold")
    print_table(clause_rows(r["alerts"], ("quiet", "false_positive")))
    print("  value: the peak (or lowest) over the load, read once the input's windows hold only load; * a window "
          "is longer than the load,\n  so a rate or increase over it counts only the load's part of it (a ratio "
          "of two such rates is unaffected); headroom: threshold / peak")
    scaled = [(a, c) for a in r["alerts"] for c in a["clauses"] if "value_at_k8s_limit" in c and c["exercised"]]
    if scaled:
        print("\nthe same CPU and memory use against deploy/k8s/deployment.yaml's pod limits (the service divides by "
              "this machine's, having no cgroup limit here):")
        for a, c in scaled:
            v, th = c["value_at_k8s_limit"], c["threshold_value"]
            print(f"  {a['alert']:<18} {fmt(c['value'])} of {fmt(c['limit_here'])} here -> {fmt(v)} of the pod's "
                  f"{fmt(c['limit_k8s'])}: {c['op']} {fmt(th)}, {headroom({**c, 'value': v})}")
    print("\nnot exercised here (what could be observed of their inputs, for the record):")
    print_table(clause_rows(r["alerts"], ("not_exercised",)))
    for a in r["alerts"]:
        if a["class"] == "not_exercised":
            state = (f" (pending {a['pending_s']:.0f} s, firing {a['firing_s']:.0f} s)"
                     if a["pending_s"] or a["firing_s"] else "")
            print(f"  {a['alert']}{state}: {'; '.join(a['not_exercised_because'])}")
    for a in r["alerts"]:
        if a["class"] != "false_positive":
            continue
        print(f"\n{a['alert']} under the load (seconds after its start: value of the input):")
        for c in a["clauses"]:
            if c.get("timeline") and c["crossed"]:
                print(f"  {short(c['input'], 100)} {c['op']} {c['threshold']}:")
                print("    " + ", ".join(f"{t:g}: {fmt(v)}" for t, v in c["timeline"]))
        print("  scheduler jobs finished at: " + "; ".join(
            f"{job} {', '.join(f'{t:g}' for t in sorted(ts))}" for job, ts in r["scheduler_jobs_finished_s"].items()))
    if r["rule_health"]:
        print(f"\nrules that failed to evaluate: {r['rule_health']}")
    share, evals = vd["false_positive_share_of_alerts"], vd["false_positive_share_of_evaluations"]
    print(f"\nWatchdog firing {vd['watchdog_firing_s']:.0f} s. False positives under the healthy load: "
          f"{len(vd['false_positive_alerts'])} of {vd['exercised_alerts']} exercised alerts "
          f"({share * 100 if share is not None else 0:.1f}%; {evals * 100 if evals is not None else 0:.2f}% of "
          f"(alert, evaluation) pairs) {vd['false_positive_alerts'] or ''}; "
          f"{vd['not_exercised_alerts']} not exercised here. Gate (< 5%): "
          f"{'met' if vd['gate_below_5_percent'] else 'NOT met'}")
    write_result("alerts", r)


if __name__ == "__main__":
    main()
