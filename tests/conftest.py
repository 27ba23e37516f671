"""Fixtures: a real PostgreSQL database created for this run (and dropped after), a real
Redis when a test asks for one, the app wired exactly as in production, and two tenants.

DATABASE_URL / REDIS_URL name servers to use; without them an embedded PostgreSQL and a
`redis-server` child process are started, so a newcomer's machine passes too.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg import sql

from unifocus.app import create_app
from unifocus.auth.tokens import mint_token
from unifocus.db.migrate import upgrade
from unifocus.db.urls import app_url, database_name, with_database
from unifocus.settings import Settings

JWT_SECRET = "test-secret-" + "x" * 32


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """An owner (superuser) URL of a PostgreSQL server: DATABASE_URL's, else embedded."""
    url = os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    from unifocus.db.embedded import start_embedded

    data = Path(tempfile.mkdtemp(prefix="unifocus-test-pg-"))
    url, server = start_embedded(data)
    yield url
    server.cleanup()
    shutil.rmtree(data, ignore_errors=True)


def create_database(server: str) -> str:
    name = f"unifocus_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return with_database(server, name)


def drop_database(server: str, url: str) -> None:
    name = database_name(url)
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def owner_url(server_url: str) -> Iterator[str]:
    """A fresh, migrated database for this test run; dropped at the end."""
    url = create_database(server_url)
    upgrade(url, Settings(database_url=url))
    yield url
    drop_database(server_url, url)


@pytest.fixture(scope="session")
def settings(owner_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_settings(owner_url, tmp_path_factory.mktemp("data"))


def make_settings(owner_url: str, data_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": owner_url,
        # Tests opt in to Redis (fixture redis_url); REDIS_URL in the environment is for them.
        "redis_url": None,
        "jwt_secret": JWT_SECRET,
        "data_dir": data_dir,
        "scheduler_enabled": False,
        "rate_limit_enabled": False,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def runtime_url(settings: Settings, owner_url: str) -> str:
    return app_url(settings, owner_url)


@pytest.fixture()
def owner_sql(owner_url: str) -> Iterator[psycopg.Connection]:
    """A sync owner connection for assertions straight on the database."""
    with psycopg.connect(owner_url, autocommit=True) as conn:
        yield conn


def tenant_counts(owner_sql: psycopg.Connection, tenant: uuid.UUID, *tables: str) -> tuple[int, ...]:
    """One tenant's row count in each table, read as the owner: what a refused request must
    leave unchanged."""
    counts = []
    for table in tables:
        row = owner_sql.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE tenant_id = %s").format(sql.Identifier(table)), (tenant,)
        ).fetchone()
        assert row is not None
        counts.append(int(row[0]))
    return tuple(counts)


class Api:
    """Thin httpx wrapper over the ASGI app, with helpers for auth headers."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def req(self, method: str, path: str, token: str | None = None, key: str | None = None,
                  **kw: object) -> httpx.Response:
        headers = dict(kw.pop("headers", {}) or {})  # type: ignore[call-overload]
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if key:
            headers["Idempotency-Key"] = key
        return await self.client.request(method, path, headers=headers, **kw)  # type: ignore[arg-type]


async def start_app(settings: Settings) -> tuple[object, httpx.AsyncClient, object]:
    app = create_app(settings)
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
    return app, client, lifespan


@pytest.fixture(scope="session")
async def app_client(settings: Settings) -> AsyncIterator[tuple[object, httpx.AsyncClient]]:
    app, client, lifespan = await start_app(settings)
    yield app, client
    await client.aclose()
    await lifespan.__aexit__(None, None, None)  # type: ignore[attr-defined]


@pytest.fixture()
def api(app_client: tuple[object, httpx.AsyncClient]) -> Api:
    return Api(app_client[1])


@dataclass
class TenantFixture:
    id: uuid.UUID
    admin: str
    manager: str
    employee: str
    admin_id: uuid.UUID
    manager_id: uuid.UUID
    employee_user_id: uuid.UUID
    employee_id: uuid.UUID
    timezone: str


def make_tenant(owner_url: str, settings: Settings, timezone: str = "America/New_York") -> TenantFixture:
    """A tenant with an admin, a manager and an employee user linked to an employee record,
    inserted as the owner (fixtures may; the API under test may not)."""
    tid, admin, manager, emp_user, emp = (uuid.uuid4() for _ in range(5))
    with psycopg.connect(owner_url, autocommit=True) as conn:
        conn.execute("INSERT INTO tenants (tenant_id, name, timezone) VALUES (%s, %s, %s)",
                     (tid, f"Tenant {tid.hex[:6]}", timezone))
        conn.execute("INSERT INTO employees (tenant_id, id, first_name, last_name) VALUES (%s, %s, 'Eve', 'Worker')",
                     (tid, emp))
        for uid, role, employee in ((admin, "admin", None), (manager, "manager", None), (emp_user, "employee", emp)):
            conn.execute(
                "INSERT INTO users (tenant_id, id, email, role, employee_id, subject) VALUES (%s, %s, %s, %s, %s, %s)",
                (tid, uid, f"{role}-{uid.hex[:6]}@example.com", role, employee, str(uid)),
            )
    tok = lambda uid: mint_token(settings, tid, str(uid))  # noqa: E731
    return TenantFixture(tid, tok(admin), tok(manager), tok(emp_user), admin, manager, emp_user, emp, timezone)


@pytest.fixture()
def tenant_a(owner_url: str, settings: Settings) -> TenantFixture:
    return make_tenant(owner_url, settings, "America/New_York")


@pytest.fixture()
def tenant_b(owner_url: str, settings: Settings) -> TenantFixture:
    return make_tenant(owner_url, settings, "Europe/London")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """REDIS_URL's server, else a redis-server child process on a free port."""
    url = os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed and REDIS_URL is unset (apt-get install redis-server)")
    port = free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(5)


@contextmanager
def inserts_fail(owner_sql: psycopg.Connection, table: str, when: str = "true",
                 sqlstate: str = "P0001") -> Iterator[None]:
    """Inserting a row of `table` for which `when` (SQL over NEW) holds raises `sqlstate` inside
    the database (a trigger), as a broken or exhausted server would. Dropped on leaving."""
    name = f"fail_{uuid.uuid4().hex[:8]}"
    owner_sql.execute(f"""
        CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF {when} THEN
                RAISE EXCEPTION 'injected failure in %', TG_TABLE_NAME USING ERRCODE = '{sqlstate}';
            END IF;
            RETURN NEW;
        END $$""")
    owner_sql.execute(f"CREATE TRIGGER {name} BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION {name}()")
    try:
        yield
    finally:
        owner_sql.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
        owner_sql.execute(f"DROP FUNCTION IF EXISTS {name}()")


@contextmanager
def employee_insert_fails(owner_sql: psycopg.Connection, marker: str) -> Iterator[None]:
    """Inserting an employee whose first name is `marker` raises inside the database: an
    unexpected failure, the service's 500."""
    with inserts_fail(owner_sql, "employees", f"NEW.first_name = '{marker}'"):
        yield
