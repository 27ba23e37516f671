"""`unifocus gate verify`: the five gates of the production readiness gate, checked against a
live deployment through the client library, with evidence. Readiness, idempotency and
alerts/monitoring live here; tenancy and audit in `gate_tenancy`."""

from __future__ import annotations

import asyncio
import math
import re
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from unifocus.client import ops
from unifocus.client.aio import AsyncClient
from unifocus.client.core import ApiResponse, Call, new_key
from unifocus.client.errors import IdempotencyInProgress, IdempotencyKeyReused
from unifocus.client.report import FAIL, SKIP, Row, Timer

EXPECTED_SERIES = (
    "unifocus_http_requests_total", "unifocus_http_request_duration_seconds", "unifocus_http_requests_in_progress",
    "unifocus_db_pool_connections_in_use", "unifocus_db_pool_connections_max", "unifocus_auth_attempts_total",
    "unifocus_punches_created_total", "unifocus_idempotency_lookups_total", "unifocus_idempotency_records",
    "unifocus_audit_entries_written_total", "unifocus_audit_write_failures_total",
    "unifocus_rate_limit_rejections_total", "unifocus_readiness_check", "unifocus_tenant_scope_violations_total",
    "unifocus_exceptions_raised_total",
)


@dataclass
class Write:
    """A write the gate made, to be found in the audit log."""

    request_id: str
    entity: str
    entity_id: str
    action: str


@dataclass
class Context:
    url: str
    a: AsyncClient  # tenant A's admin, retrying
    b: AsyncClient  # tenant B's admin, retrying
    raw_a: AsyncClient  # tenant A's admin, one try per call: every answer as sent
    anon: AsyncClient  # no token, one try per call
    metrics: AsyncClient
    storm: int = 30
    health_calls: int = 50
    hammer: int = 300
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    tenant_a: str = ""
    tenant_b: str = ""
    writes: list[Write] = field(default_factory=list)
    audited_once: list[str] = field(default_factory=list)
    b_request_ids: list[str] = field(default_factory=list)

    def rid(self, what: str) -> str:
        return f"gate-{self.run}-{what}-{uuid.uuid4().hex[:6]}"

    async def aclose(self) -> None:
        for c in (self.a, self.b, self.raw_a, self.anon, self.metrics):
            await c.aclose()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


async def preflight(ctx: Context, row: Row) -> None:
    me_a, me_b = await asyncio.gather(ctx.a.me(), ctx.b.me())
    ctx.tenant_a, ctx.tenant_b = me_a["tenantId"], me_b["tenantId"]
    row.check(me_a["role"] == "admin" and me_b["role"] == "admin",
              f"token A: {me_a['email']} ({me_a['role']}), token B: {me_b['email']} ({me_b['role']}); both admin")
    row.check(ctx.tenant_a != ctx.tenant_b, f"two tenants: A {ctx.tenant_a}, B {ctx.tenant_b}")


async def readiness(ctx: Context, row: Row) -> None:
    h = await ctx.anon.send(ops.health())
    body = h.json() if h.ok else {}
    shape = (body.get("status") == "ok" and isinstance(body.get("uptime"), int | float)
             and isinstance(body.get("version"), str) and _instant(body.get("timestamp")))
    row.check(h.status == 200 and bool(shape), f"/health without a token: {h.status} {h.text[:120]}")
    await ctx.anon.send(ops.health())
    took = []
    for _ in range(ctx.health_calls):
        t0 = time.perf_counter()
        r = await ctx.anon.send(ops.health())
        took.append(time.perf_counter() - t0)
        if r.status != 200:
            row.check(False, f"/health answered {r.status} during the latency run")
            break
    p99, p50 = percentile(took, 0.99) * 1000, percentile(took, 0.5) * 1000
    row.check(p99 < 100, f"/health p99 {p99:.1f} ms, p50 {p50:.1f} ms over {len(took)} calls (< 100 ms)")
    r = await ctx.anon.send(ops.ready())
    ready = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
    checks = ready.get("checks") or {}
    row.check(r.status == 200 and ready.get("status") == "ready" and checks.get("database") == "ok"
              and checks.get("migrations") == "ok", f"/ready without a token: {r.status} {r.text[:160]}")
    bogus = AsyncClient(ctx.url, "not-a-valid-token", max_attempts=1)
    try:
        with_bad = [await bogus.send(replace(call, auth=True)) for call in (ops.health(), ops.ready())]
    finally:
        await bogus.aclose()
    row.check(all(x.status == 200 for x in with_bad),
              f"with an invalid bearer token: /health {with_bad[0].status}, /ready {with_bad[1].status} (auth ignored)")
    sem = asyncio.Semaphore(50)

    async def one(make: Callable[[], Call[Any]]) -> int:
        async with sem:
            return (await ctx.anon.send(make())).status

    statuses = Counter(await asyncio.gather(*([one(ops.health) for _ in range(ctx.hammer)]
                                              + [one(ops.ready) for _ in range(ctx.hammer // 10)])))
    row.check(set(statuses) == {200},
              f"hammer: {ctx.hammer} x /health + {ctx.hammer // 10} x /ready, 50 in flight: {dict(statuses)} (no 429)")


def _instant(value: object) -> bool:
    try:
        return isinstance(value, str) and datetime.fromisoformat(value.replace("Z", "+00:00")).tzinfo is not None
    except ValueError:
        return False


def _kind(resp: ApiResponse) -> str:
    if resp.ok:
        return f"{resp.status}{' replayed' if resp.replayed else ''}"
    return f"{resp.status} {resp.error().slug}"


async def idempotency(ctx: Context, row: Row) -> None:
    body = {"firstName": "Gate", "lastName": f"Idem-{ctx.run}"}
    key, rid = new_key(), ctx.rid("idem")
    call = ops.create_employee({"firstName": body["firstName"], "lastName": body["lastName"]}, key, rid)
    first = await ctx.raw_a.send(call)
    row.check(first.status == 201 and not first.replayed, f"POST /api/employees, Idempotency-Key {key}: {_kind(first)}")
    if first.status == 201:
        emp_id = first.json()["id"]
        ctx.writes.append(Write(rid, "Employee", emp_id, "created"))
        ctx.audited_once.append(emp_id)
    again = await ctx.raw_a.send(call)
    same = again.content == first.content and again.location == first.location
    row.check(again.status == first.status and again.replayed and same,
              f"same key + same body: {_kind(again)}, Idempotent-Replayed={again.headers.get('idempotent-replayed')}"
              f", body and Location byte-identical={same}")
    other = await ctx.raw_a.send(ops.create_employee({"firstName": "Gate", "lastName": f"Other-{ctx.run}"}, key))
    err = None if other.ok else other.error()
    row.check(isinstance(err, IdempotencyKeyReused), f"same key + another body: {_kind(other)}")

    last = f"Storm-{ctx.run}"
    skey, srid = new_key(), ctx.rid("storm")
    scall = ops.create_employee({"firstName": "Gate", "lastName": last}, skey, srid)
    answers = await asyncio.gather(*(ctx.raw_a.send(scall) for _ in range(ctx.storm)))
    originals = [r for r in answers if r.status == 201 and not r.replayed]
    replays = [r for r in answers if r.status == 201 and r.replayed]
    busy = [r for r in answers if r.status == 409 and isinstance(r.error(), IdempotencyInProgress)]
    tally = dict(Counter(_kind(r) for r in answers))
    row.check(len(originals) == 1, f"storm of {ctx.storm} concurrent same-key POSTs: {tally}")
    others_ok = len(replays) + len(busy) == len(answers) - 1 and all(
        r.content == originals[0].content for r in replays) if len(originals) == 1 else False
    row.check(others_ok, "every other answer is the original byte for byte (replayed) or 409 in-progress")
    stored = [e async for e in ctx.a.iter_employees(page_size=500) if e["lastName"] == last]
    row.check(len(stored) == 1, f"employees named Gate {last} by listing: {len(stored)} (exactly one created)")
    if len(originals) == 1:
        emp_id = originals[0].json()["id"]
        ctx.writes.append(Write(srid, "Employee", emp_id, "created"))
        ctx.audited_once.append(emp_id)


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)", re.M)


async def alerts(ctx: Context, row: Row) -> None:
    r = await ctx.metrics.send(ops.metrics())
    row.check(r.status == 200 and "text/plain" in r.headers.get("content-type", ""),
              f"/metrics: {r.status} {r.headers.get('content-type')} ({len(r.content)} bytes)")
    text = r.text if r.ok else ""
    missing = [n for n in EXPECTED_SERIES
               if not re.search(rf"^(# (HELP|TYPE) )?{n}(_bucket|_sum|_count)?[ {{]", text, re.M)]
    row.check(not missing, f"{len(EXPECTED_SERIES) - len(missing)}/{len(EXPECTED_SERIES)} expected series exposed"
              + (f"; missing {missing}" if missing else ""))
    samples: dict[str, float] = {}
    for name, labels, value in _SAMPLE.findall(text):
        try:
            samples[name + (labels or "")] = samples.get(name + (labels or ""), 0.0) + float(value)
        except ValueError:
            continue
    db_ready = samples.get('unifocus_readiness_check{check="database"}')
    row.check(db_ready == 1.0, f'unifocus_readiness_check{{check="database"}} = {db_ready}')
    violations = sum(v for k, v in samples.items() if k.startswith("unifocus_tenant_scope_violations_total"))
    row.check(violations == 0, f"unifocus_tenant_scope_violations_total = {violations:g} (must stay 0)")
    for series in ("unifocus_idempotency_lookups_total", "unifocus_audit_entries_written_total"):
        seen = {k[len(series):] or "total": v for k, v in samples.items() if k.startswith(series)}
        row.note(f"{series} {seen}")


Gate = Callable[[Context, Row], Awaitable[None]]


async def run_gates(ctx: Context, gates: list[tuple[str, Gate, bool]]) -> list[Row]:
    """`gates`: (name, check, needs the tokens). A failed preflight skips the token gates."""
    rows: list[Row] = []
    tokens_ok = True
    for name, gate, needs_tokens in gates:
        row = Row(name)
        rows.append(row)
        if needs_tokens and not tokens_ok:
            row.status = SKIP
            row.note("the tokens' preflight failed")
            continue
        with Timer(row):
            try:
                await gate(ctx, row)
            except Exception as exc:  # the gate fails with the error as evidence
                row.error(exc)
        if name == "preflight" and row.status == FAIL:
            tokens_ok = False
    return rows


async def verify(url: str, token_a: str, token_b: str, *, metrics_token: str | None = None, storm: int = 30,
                 health_calls: int = 50, hammer: int = 300, base_delay: float = 0.2) -> list[Row]:
    from unifocus.client.gate_tenancy import audit, tenancy

    def client(token: str | None, attempts: int = 5) -> AsyncClient:
        return AsyncClient(url, token, max_attempts=attempts, base_delay=base_delay, timeout=30)

    ctx = Context(url, client(token_a), client(token_b), client(token_a, 1), client(None, 1),
                  client(metrics_token, 1), storm=storm, health_calls=health_calls, hammer=hammer)
    try:
        # Readiness first (quiet server), alerts last (the series the others produced).
        return await run_gates(ctx, [
            ("preflight", preflight, True), ("readiness", readiness, False), ("idempotency", idempotency, True),
            ("tenancy", tenancy, True), ("audit", audit, True), ("alerts/monitoring", alerts, False),
        ])
    finally:
        await ctx.aclose()
