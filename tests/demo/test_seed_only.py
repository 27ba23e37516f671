"""`unifocus demo --seed-only` as an operator, or staging's seed Job (deploy/overlays/staging),
runs it: the installed script in a subprocess, against a database of its own. It seeds the two
demo tenants, starts no server and exits; it prints the tenants' and their users' ids and no
token (its output is a Job's log) unless given --print-tokens; a second run adds no row to any
table; with UNIFOCUS_MIGRATE_ON_START=false it refuses a schema that is not migrated instead of
migrating; a database that is down is one line and exit 1."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.conftest import JWT_SECRET, Api, create_database, drop_database, free_port, make_settings, start_app
from unifocus.db.migrate import head_revision
from unifocus.demo.scenario import TENANTS, planned_count
from unifocus.timeexceptions.rules import EXCEPTION_TYPES

# Subprocesses: starts extra processes (slow).
pytestmark = [pytest.mark.slow]

UNIFOCUS = Path(sys.executable).parent / "unifocus"
REPORT = re.compile(r"^== (?P<name>.+) \((?P<timezone>[^)]+)\) tenant (?P<id>[0-9a-f-]{36}): (?P<done>.+)$")
USER = re.compile(r"^  (admin|manager|employee) +user: ([0-9a-f-]{36})$", re.M)
TOKEN = re.compile(r"^  (admin|manager|employee) +token: (\S+)$", re.M)
# A JWT anywhere: three base64url segments, the first a JSON header (`{"` is `eyJ`).
JWT = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
ROLES = {"admin", "manager", "employee"}


def cli_env(url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """The test process's environment without its UNIFOCUS_* settings (a developer's own would
    change what the command does), pointed at `url` in HS256 mode."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("UNIFOCUS_")}
    env.update(DATABASE_URL=url, UNIFOCUS_DATA_DIR=str(data_dir), UNIFOCUS_JWT_SECRET=JWT_SECRET, **extra)
    return env


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(UNIFOCUS), *args], env=env, capture_output=True, text=True, timeout=120)
    # Whatever the outcome, a user never reads a stack trace.
    assert "Traceback" not in done.stdout + done.stderr, done.stdout + done.stderr
    return done


def errors(done: subprocess.CompletedProcess[str]) -> list[str]:
    """stderr without the log lines every command writes (alembic's set-up, the seeder's)."""
    return [line for line in done.stderr.splitlines() if line.strip() and not line.startswith("INFO ")]


def seeded(done: subprocess.CompletedProcess[str]) -> list[dict[str, str]]:
    """The per-tenant lines of the report, in order (stdout also carries the app's JSON logs)."""
    return [m.groupdict() for m in map(REPORT.match, done.stdout.splitlines()) if m]


def block(done: subprocess.CompletedProcess[str], tenant_id: str) -> str:
    """The report's lines for one tenant: from its `==` line to the next tenant's."""
    return done.stdout.split(f"tenant {tenant_id}:", 1)[1].split("\n== ", 1)[0]


def user_ids(done: subprocess.CompletedProcess[str], tenant_id: str) -> dict[str, str]:
    return dict(USER.findall(block(done, tenant_id)))


def row_counts(url: str) -> dict[str, int]:
    """Every table's row count, read as the owner (no row-level security applies)."""
    with psycopg.connect(url) as conn:
        tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        counts = {}
        for table in tables:
            row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()
            assert row is not None
            counts[table] = int(row[0])
    return counts


def per_tenant(url: str, table: str) -> dict[str, int]:
    """Rows of `table` per tenant name."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(sql.SQL("SELECT t.name, count(x.*) FROM tenants t LEFT JOIN {} x USING (tenant_id) "
                                    "GROUP BY t.name").format(sql.Identifier(table))).fetchall()
    return {name: int(count) for name, count in rows}


@pytest.fixture()
def empty_db(server_url: str) -> Iterator[str]:
    """A database of its own, with no schema: the command migrates it (or refuses to)."""
    url = create_database(server_url)
    yield url
    drop_database(server_url, url)


async def test_seed_only_seeds_two_tenants_and_a_second_run_adds_no_row(empty_db: str, tmp_path: Path) -> None:
    # As staging's Job runs it: no UNIFOCUS_JWT_SECRET (it needs none), no --print-tokens.
    data = tmp_path / "data"
    env = cli_env(empty_db, data)
    del env["UNIFOCUS_JWT_SECRET"]
    first = run(env, "demo", "--seed-only")
    assert first.returncode == 0, first.stdout + first.stderr
    report = seeded(first)
    assert [(t["name"], t["timezone"], t["done"]) for t in report] == [
        (spec.name, spec.timezone, "seeded") for spec in TENANTS]
    # Ids, and not one token: the output is a Job's log, collected by the cluster.
    assert not JWT.search(first.stdout + first.stderr), "a token in the output"
    assert not TOKEN.search(first.stdout)
    # Its own requests were signed with a secret of its own: no development secret written.
    assert not (data / "jwt-secret").exists() and "UNIFOCUS_JWT_SECRET is unset" not in first.stderr
    with psycopg.connect(empty_db) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == (head_revision(),)
        stored = dict(conn.execute("SELECT tenant_id::text, name FROM tenants").fetchall())
        roles = {(str(t), str(u)): r for t, u, r in conn.execute("SELECT tenant_id, id, role FROM users")}
    assert stored == {t["id"]: t["name"] for t in report}, "exactly the two demo tenants, with the ids printed"
    users = {t["id"]: user_ids(first, t["id"]) for t in report}
    for tenant_id, ids in users.items():
        assert set(ids) == ROLES, block(first, tenant_id)
        assert {role: roles[(tenant_id, user_id)] for role, user_id in ids.items()} == {r: r for r in ROLES}
        assert f"unifocus token --tenant {tenant_id} --user USER_ID" in block(first, tenant_id)
    employees, punches = per_tenant(empty_db, "employees"), per_tenant(empty_db, "punches")
    exceptions = per_tenant(empty_db, "exceptions")
    for spec in TENANTS:
        assert employees[spec.name] == len(spec.staff)
        assert punches[spec.name] == planned_count(spec)
        assert exceptions[spec.name] >= len(EXCEPTION_TYPES)

    # A re-run adds nothing; with --print-tokens (and the API's secret) it prints the tokens too.
    before = row_counts(empty_db)
    env = cli_env(empty_db, data)
    second = run(env, "demo", "--seed-only", "--print-tokens")
    assert second.returncode == 0, second.stdout + second.stderr
    assert [(t["name"], t["id"], t["done"]) for t in seeded(second)] == [
        (t["name"], t["id"], "already seeded, nothing added") for t in report]
    assert row_counts(empty_db) == before
    assert {t["id"]: user_ids(second, t["id"]) for t in report} == users, "the same users, the same ids"

    # The tokens printed, and those `unifocus token` mints from the ids printed (what a staging
    # tester does), sign in the tenants' users against the API on this database.
    app, client, lifespan = await start_app(make_settings(empty_db, tmp_path / "app"))
    try:
        api = Api(client)
        for tenant in report:
            tokens = dict(TOKEN.findall(block(second, tenant["id"])))
            assert set(tokens) == ROLES
            for role, token in tokens.items():
                minted = run(env, "token", "--tenant", tenant["id"], "--user", users[tenant["id"]][role])
                assert minted.returncode == 0, minted.stderr
                for bearer in (token, minted.stdout.strip()):
                    me = await api.req("GET", "/api/me", bearer)
                    assert me.status_code == 200, me.text
                    assert (me.json()["role"], me.json()["tenantId"], me.json()["userId"]) == (
                        role, tenant["id"], users[tenant["id"]][role])
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)  # type: ignore[attr-defined]


def test_with_migrate_on_start_off_an_unmigrated_schema_is_refused(empty_db: str, tmp_path: Path) -> None:
    """What staging's Job does (it leaves migrating to the migration Job): refuse, exit 1, until
    the schema is there; then seed."""
    env = cli_env(empty_db, tmp_path, UNIFOCUS_MIGRATE_ON_START="false")
    refused = run(env, "demo", "--seed-only")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    (line,) = errors(refused)
    assert "the schema is not ready (no migration applied" in line and "`unifocus migrate`" in line
    assert seeded(refused) == []
    with psycopg.connect(empty_db) as conn:
        assert conn.execute("SELECT to_regclass('alembic_version'), to_regclass('tenants')").fetchone() == (None, None)

    migrated = run(env, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    done = run(env, "demo", "--seed-only")
    assert done.returncode == 0, done.stdout + done.stderr
    assert [(t["name"], t["done"]) for t in seeded(done)] == [(spec.name, "seeded") for spec in TENANTS]


@pytest.mark.parametrize("migrate_on_start", ["true", "false"])
def test_a_database_that_is_down_is_one_line_and_exit_1(tmp_path: Path, migrate_on_start: str) -> None:
    """Unreachable whether the command migrates (SQLAlchemy) or only checks the schema (psycopg)."""
    env = cli_env(f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere", tmp_path,
                  UNIFOCUS_MIGRATE_ON_START=migrate_on_start)
    done = run(env, "demo", "--seed-only")
    assert done.returncode == 1, done.stdout + done.stderr
    (line,) = errors(done)
    assert line.startswith("unifocus: OperationalError: ") and "Connection refused" in line, line
    assert seeded(done) == []


def test_an_oidc_deployment_is_refused_before_anything_starts(tmp_path: Path) -> None:
    """The demo mints HS256 tokens: under an OIDC issuer it cannot seed, and says so (exit 2, a
    configuration to fix: the staging Job's pod failure policy does not retry it)."""
    env = cli_env(f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere", tmp_path)
    del env["UNIFOCUS_JWT_SECRET"]
    env.update(UNIFOCUS_JWKS_URL="https://issuer.invalid/.well-known/jwks.json",
               UNIFOCUS_JWT_ISSUER="https://issuer.invalid/", UNIFOCUS_JWT_AUDIENCE="unifocus")
    done = run(env, "demo", "--seed-only")
    assert done.returncode == 2, done.stdout + done.stderr
    assert errors(done) == ["demo: the demo mints its own HS256 tokens; unset UNIFOCUS_JWKS_URL"]
    assert list(tmp_path.iterdir()) == []  # no embedded server's data directory, no secret file
