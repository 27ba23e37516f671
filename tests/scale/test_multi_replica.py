"""Scale-out: two API server processes on one database and one Redis, directly and behind
PgBouncer in transaction pooling mode (docs/scaling.md).

- a retry storm split across both replicas (the same keys, alternating servers) writes each
  punch exactly once, and every answer for a key is the original or its replay;
- behind PgBouncer (statement cache 0, 8 server connections for 2 x 10 client ones, so
  consecutive transactions of one client connection land on different server connections)
  the transaction-local tenant setting, the transaction-scoped advisory locks (audit chain)
  and the idempotency claim hold: one write per key, no row of one tenant in an answer to
  the other, and the audit chains verify afterwards;
- the rate limit is shared through Redis: the accepted requests of both replicas together
  never exceed one bucket.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import psycopg
import pytest

from tests.conftest import TenantFixture, free_port, make_tenant
from tests.serving import LiveServer as Replica
from tests.serving import start_server, stop, wait_ready
from unifocus.audit.verify import verify_url
from unifocus.db.urls import with_user
from unifocus.settings import Settings

pytestmark = [pytest.mark.slow, pytest.mark.idempotency]

KEYS = 20
COPIES = 10


def _pair(owner_url: str, root: Path, extra: dict[str, str]) -> Iterator[list[Replica]]:
    env = {"UNIFOCUS_MIGRATE_ON_START": "false", **extra}
    replicas = [start_server(owner_url, root / f"replica{i}", env) for i in (0, 1)]
    try:
        wait_ready(replicas)
        yield replicas
    finally:
        stop(replicas)


@pytest.fixture(scope="module")
def pgbouncer(owner_url: str) -> Iterator[tuple[str, Path]]:
    """PgBouncer (transaction pooling) in front of the test database; yields the app role's URL
    through it and its log. Runs as `postgres` when we are root (pgbouncer refuses to run as root)."""
    binary = shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None)
    if binary is None:
        pytest.fail("pgbouncer is not installed (make tools installs it)")
    parts = urlsplit(owner_url)
    # A TCP server (DATABASE_URL), or the embedded one's unix-socket directory (?host=/dir).
    host = parts.hostname or parse_qs(parts.query).get("host", [""])[0]
    if not host:
        pytest.fail(f"cannot tell where PostgreSQL listens from {parts.netloc!r}")
    dbname = parts.path.lstrip("/")
    port = free_port()
    work = Path(tempfile.mkdtemp(prefix="unifocus-pgbouncer-"))
    work.chmod(0o755)
    (work / "userlist.txt").write_text('"unifocus_app" ""\n')
    (work / "pgbouncer.ini").write_text(f"""
[databases]
{dbname} = host={host} port={parts.port or 5432} dbname={dbname}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {work}/userlist.txt
pool_mode = transaction
default_pool_size = 8
max_client_conn = 200
ignore_startup_parameters = extra_float_digits
logfile = {work}/pgbouncer.log
pidfile = {work}/pgbouncer.pid
""")
    argv = [binary, str(work / "pgbouncer.ini")]
    if os.geteuid() == 0:
        # pgbouncer refuses root. The embedded server's socket directory is private to its own
        # OS user, so pgbouncer runs as that user there, else as postgres.
        user = pwd.getpwuid(Path(host).stat().st_uid).pw_name if host.startswith("/") else "postgres"
        argv = ["runuser", "-u", user, "--", *argv]
        for path in (work, *work.iterdir()):  # its log and pid file go here
            shutil.chown(path, user)
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=(work / "stderr").open("wb"),
                            start_new_session=True)
    try:
        deadline = time.time() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    logs = [work / "pgbouncer.log", work / "stderr"]
                    log = " | ".join(p.read_text() for p in logs if p.exists())
                    pytest.fail(f"pgbouncer did not start: {log[-2000:]}")
                time.sleep(0.05)
        through = parts._replace(netloc=f"127.0.0.1:{port}", query="").geturl()
        yield with_user(through, "unifocus_app", None), work / "pgbouncer.log"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        pidfile = work / "pgbouncer.pid"
        if pidfile.exists():  # the pgbouncer we started, should runuser not have passed SIGTERM on
            try:
                os.kill(int(pidfile.read_text().strip()), 15)
            except (ProcessLookupError, ValueError):
                pass
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def direct_pair(owner_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Replica]]:
    yield from _pair(owner_url, tmp_path_factory.mktemp("direct"),
                     {"REDIS_URL": redis_url, "UNIFOCUS_RATE_LIMIT_ENABLED": "false"})


@pytest.fixture(scope="module")
def pooled_pair(owner_url: str, redis_url: str, pgbouncer: tuple[str, Path],
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Replica]]:
    url, log = pgbouncer
    for replicas in _pair(owner_url, tmp_path_factory.mktemp("pooled"),
                          {"REDIS_URL": redis_url, "UNIFOCUS_RATE_LIMIT_ENABLED": "false",
                           "UNIFOCUS_APP_DATABASE_URL": url, "UNIFOCUS_DB_STATEMENT_CACHE_SIZE": "0"}):
        yield replicas
        # the replicas really went through the pooler, as the runtime role
        assert "user=unifocus_app" in log.read_text()


@pytest.fixture(params=["direct", "pgbouncer"])
def pair(request: pytest.FixtureRequest) -> list[Replica]:
    replicas: list[Replica] = request.getfixturevalue("direct_pair" if request.param == "direct" else "pooled_pair")
    return replicas


def _ts(i: int) -> str:
    # in the past, one per key: a unique (employee, timestamp) each
    return (datetime(2025, 3, 3, 9, 0, tzinfo=UTC) + timedelta(hours=7 * i)).isoformat()


def _clients(pair: list[Replica]) -> list[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=20, max_keepalive_connections=20)
    return [httpx.AsyncClient(base_url=r.url, limits=limits, timeout=30) for r in pair]


def _is_retryable(r: httpx.Response) -> bool:
    """What a duplicate may be told while its original is in flight (409 in progress), or any
    request when the pool is exhausted (503): both carry Retry-After."""
    return r.status_code in (409, 503) and "idempotent-replayed" not in r.headers and "retry-after" in r.headers


async def test_retry_storm_split_across_replicas_writes_once(
    pair: list[Replica], tenant_a: TenantFixture, owner_url: str, owner_sql: psycopg.Connection
) -> None:
    keys = [f"storm-{uuid.uuid4().hex}" for _ in range(KEYS)]
    bodies = {k: {"employeeId": str(tenant_a.employee_id), "type": "clock_in", "timestamp": _ts(i)}
              for i, k in enumerate(keys)}
    clients = _clients(pair)
    try:
        async def send(n: int, key: str) -> tuple[str, httpx.Response]:
            r = await clients[n % 2].post("/api/punches", json=bodies[key], headers={
                "Authorization": f"Bearer {tenant_a.manager}", "Idempotency-Key": key})
            return key, r

        jobs = [send(copy + i, key) for copy in range(COPIES) for i, key in enumerate(keys)]
        storm = await asyncio.gather(*jobs)
        originals: dict[str, httpx.Response] = {}
        for key, r in storm:
            if r.status_code == 201 and "idempotent-replayed" not in r.headers:
                assert key not in originals, f"two original writes for {key}"
                originals[key] = r
            else:
                assert r.status_code == 201 or _is_retryable(r), (r.status_code, r.text)
        for key, r in storm:
            if r.status_code == 201 and "idempotent-replayed" in r.headers:
                assert key in originals and r.content == originals[key].content
        # the client's last retry, on either replica: the original answer, replayed
        finals = {}
        for i, key in enumerate(keys):
            _, r = await send(i, key)
            assert r.status_code == 201, r.text
            if key in originals:
                assert r.headers.get("idempotent-replayed") == "true"
                assert r.content == originals[key].content
            finals[key] = r.json()
    finally:
        for c in clients:
            await c.aclose()
    rows = owner_sql.execute("SELECT id, ts FROM punches WHERE tenant_id = %s", (tenant_a.id,)).fetchall()
    assert len(rows) == KEYS, "exactly one punch per key"
    assert {str(r[0]) for r in rows} == {finals[k]["id"] for k in keys}
    audited = owner_sql.execute(
        "SELECT count(*) FROM audit_log WHERE tenant_id = %s AND entity = 'Punch'", (tenant_a.id,)).fetchone()
    assert audited is not None and audited[0] == KEYS
    report = await verify_url(owner_url, tenant_a.id)
    assert report.ok and report.entries >= KEYS, [b.describe() for b in report.bad]


def _groups_sent(replica: Replica) -> float:
    """`unifocus_write_groups_total` as the replica's /metrics shows it."""
    for line in httpx.get(f"{replica.url}/metrics", timeout=10).text.splitlines():
        if line.startswith("unifocus_write_groups_total "):
            return float(line.split()[1])
    raise AssertionError("unifocus_write_groups_total is not exported")


async def test_punches_of_many_employees_are_written_in_groups_on_both_replicas(
    pair: list[Replica], tenant_a: TenantFixture, owner_url: str, owner_sql: psycopg.Connection
) -> None:
    """Group commit directly and through PgBouncer (no prepared-statement cache): 3 waves of 48
    punches of 24 employees at once, split over the replicas, each with its own key. Writes
    queue behind each other and go in group statements; each punch is stored once, every
    answer is its own, and the chain verifies."""
    clients = _clients(pair)
    try:
        emps = []
        for i in range(24):
            r = await clients[0].post("/api/employees", json={"firstName": f"G{i}", "lastName": "Wave"},
                                      headers={"Authorization": f"Bearer {tenant_a.manager}"})
            assert r.status_code == 201, r.text
            emps.append(r.json()["id"])
        sent: dict[str, httpx.Response] = {}
        for wave in range(3):
            async def send(n: int, wave: int = wave) -> tuple[str, httpx.Response]:
                key = f"wave-{wave}-{n}-{uuid.uuid4().hex[:6]}"
                r = await clients[n % 2].post("/api/punches", headers={
                    "Authorization": f"Bearer {tenant_a.manager}", "Idempotency-Key": key}, json={
                    "employeeId": emps[n % 24], "type": "clock_in", "timestamp": _ts(wave * 48 + n)})
                return key, r
            for key, r in await asyncio.gather(*(send(n) for n in range(48))):
                assert r.status_code == 201 and "idempotent-replayed" not in r.headers, r.text
                sent[key] = r
    finally:
        for c in clients:
            await c.aclose()
    assert sum(_groups_sent(r) for r in pair) > 0, "no write went in a group"
    rows = owner_sql.execute("SELECT id::text FROM punches WHERE tenant_id = %s", (tenant_a.id,)).fetchall()
    assert sorted(r[0] for r in rows) == sorted(r.json()["id"] for r in sent.values())
    report = await verify_url(owner_url, tenant_a.id)
    assert report.ok and report.entries >= len(sent), [b.describe() for b in report.bad]


async def test_two_tenants_interleaved_across_replicas_never_leak(
    pair: list[Replica], owner_url: str, settings: Settings, owner_sql: psycopg.Connection
) -> None:
    tenants = [make_tenant(owner_url, settings, "America/New_York"), make_tenant(owner_url, settings, "Europe/London")]
    clients = _clients(pair)
    created: dict[int, set[str]] = {0: set(), 1: set()}
    try:
        async def post(n: int) -> None:
            t = tenants[n % 2]
            r = await clients[(n // 2) % 2].post("/api/punches", json={
                "employeeId": str(t.employee_id), "type": "clock_in", "timestamp": _ts(100 + n)},
                headers={"Authorization": f"Bearer {t.manager}", "Idempotency-Key": f"x-{uuid.uuid4().hex}"})
            assert r.status_code == 201, r.text
            assert r.json()["employeeId"] == str(t.employee_id)
            created[n % 2].add(r.json()["id"])

        async def read(n: int) -> None:
            t = tenants[n % 2]
            c = clients[(n // 2) % 2]
            me = await c.get("/api/me", headers={"Authorization": f"Bearer {t.manager}"})
            assert me.status_code == 200, me.text
            assert (me.json()["userId"], me.json()["tenantId"]) == (str(t.manager_id), str(t.id)), me.text
            r = await c.get("/api/punches?limit=200", headers={"Authorization": f"Bearer {t.manager}"})
            assert r.status_code == 200, r.text
            for item in r.json()["items"]:
                assert item["employeeId"] == str(t.employee_id), "a punch of the other tenant"

        jobs = []
        for n in range(40):
            jobs.append(post(n))
            jobs.append(read(n))
        await asyncio.gather(*jobs)
        for i, t in enumerate(tenants):  # after the writes: each tenant sees exactly its own
            r = await clients[i].get("/api/punches?limit=200", headers={"Authorization": f"Bearer {t.manager}"})
            assert {item["id"] for item in r.json()["items"]} == created[i]
    finally:
        for c in clients:
            await c.aclose()
    for i, t in enumerate(tenants):
        rows = owner_sql.execute("SELECT id FROM punches WHERE tenant_id = %s", (t.id,)).fetchall()
        assert {str(r[0]) for r in rows} == created[i]
        report = await verify_url(owner_url, t.id)
        assert report.ok and report.entries >= 20, [b.describe() for b in report.bad]


# --- the rate limit is shared ----------------------------------------------------------------

CAPACITY = 5


@pytest.fixture(scope="module")
def limited_pair(owner_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Replica]]:
    yield from _pair(owner_url, tmp_path_factory.mktemp("limited"), {
        "REDIS_URL": redis_url, "UNIFOCUS_RATE_LIMIT_ENABLED": "true",
        "UNIFOCUS_RATE_LIMIT_USER_CAPACITY": str(CAPACITY), "UNIFOCUS_RATE_LIMIT_USER_REFILL_PER_SECOND": "0.01",
        "UNIFOCUS_RATE_LIMIT_TENANT_CAPACITY": "1000", "UNIFOCUS_RATE_LIMIT_TENANT_REFILL_PER_SECOND": "10"})


async def test_rate_limit_is_one_bucket_across_replicas(limited_pair: list[Replica], tenant_a: TenantFixture) -> None:
    clients = _clients(limited_pair)
    try:
        for c in clients:
            ready = (await c.get("/ready")).json()
            assert ready["checks"]["redis"] == "ok", ready
        headers = {"Authorization": f"Bearer {tenant_a.manager}"}
        answers = []
        for n in range(4 * CAPACITY):
            answers.append((n % 2, await clients[n % 2].get("/api/me", headers=headers)))
    finally:
        for c in clients:
            await c.aclose()
    assert {r.status_code for _, r in answers} <= {200, 429}
    accepted = [n for n, r in answers if r.status_code == 200]
    # per-process buckets would accept CAPACITY on each replica (2 x CAPACITY)
    assert len(accepted) == CAPACITY, [(n, r.status_code) for n, r in answers]
    assert {n for n, r in answers if r.status_code == 429} == {0, 1}, "both replicas refuse once the bucket is empty"
