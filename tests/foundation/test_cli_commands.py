"""The `unifocus` commands of contract section 8 run as an operator runs them: the installed
script in a subprocess, against a database of its own that `unifocus migrate` set up from
empty. What they print is then used against the app, in-process on the same database."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import psycopg
import pytest

from tests.conftest import JWT_SECRET, Api, create_database, drop_database, free_port, make_settings, start_app
from unifocus.auth.tokens import mint_token
from unifocus.db.migrate import head_revision

# Subprocesses: starts extra processes (slow); what they do is tenant and token bootstrapping.
pytestmark = [pytest.mark.slow, pytest.mark.tenants]

UNIFOCUS = Path(sys.executable).parent / "unifocus"


@dataclass
class CliDb:
    url: str
    data_dir: Path
    migrated: subprocess.CompletedProcess[str]


def cli_env(url: str, data_dir: Path) -> dict[str, str]:
    """The test process's environment without its UNIFOCUS_* settings (a developer's own would
    change what the commands do), pointed at `url` in HS256 mode."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("UNIFOCUS_")}
    env.update(DATABASE_URL=url, UNIFOCUS_DATA_DIR=str(data_dir), UNIFOCUS_JWT_SECRET=JWT_SECRET)
    return env


def oidc_env(url: str, data_dir: Path) -> dict[str, str]:
    """OIDC mode: tokens come from an issuer (never fetched by these commands)."""
    env = cli_env(url, data_dir)
    del env["UNIFOCUS_JWT_SECRET"]
    env.update(UNIFOCUS_JWKS_URL="https://issuer.invalid/.well-known/jwks.json",
               UNIFOCUS_JWT_ISSUER="https://issuer.invalid/", UNIFOCUS_JWT_AUDIENCE="unifocus")
    return env


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(UNIFOCUS), *args], env=env, capture_output=True, text=True, timeout=120)
    # Whatever the outcome, a user never reads a stack trace.
    assert "Traceback" not in done.stdout + done.stderr, done.stdout + done.stderr
    return done


async def arun(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(run, env, *args)


@pytest.fixture(scope="module")
def cli_db(server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CliDb]:
    """An empty database, migrated by `unifocus migrate` (not by the fixtures)."""
    url = create_database(server_url)
    data_dir = tmp_path_factory.mktemp("cli-data")
    migrated = run(cli_env(url, data_dir), "migrate")
    yield CliDb(url, data_dir, migrated)
    drop_database(server_url, url)


@pytest.fixture(scope="module")
async def cli_api(cli_db: CliDb, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Api]:
    """The app on the CLI's database, with the secret the CLI signs with."""
    app, client, lifespan = await start_app(make_settings(cli_db.url, tmp_path_factory.mktemp("cli-app")))
    yield Api(client)
    await client.aclose()
    await lifespan.__aexit__(None, None, None)  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def acme(cli_db: CliDb) -> dict[str, str]:
    done = run(cli_env(cli_db.url, cli_db.data_dir), "tenants", "create", "--name", "Acme",
               "--timezone", "UTC", "--admin-email", "boss@example.com")
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def users_row(url: str, user_id: str) -> tuple[str, str]:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT subject, role FROM users WHERE id = %s", (user_id,)).fetchone()
    assert row is not None
    return row[0], row[1]


def tenant_count(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM tenants").fetchone()
    assert row is not None
    return int(row[0])


def test_migrate_builds_the_schema_on_an_empty_database(cli_db: CliDb) -> None:
    assert cli_db.migrated.returncode == 0, cli_db.migrated.stderr
    assert "migrations at head" in cli_db.migrated.stdout
    with psycopg.connect(cli_db.url) as conn:
        version = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        tables = conn.execute(
            "SELECT to_regclass('tenants'), to_regclass('users'), to_regclass('punches'), "
            "to_regclass('audit_log')").fetchone()
    assert version == (head_revision(),)
    assert tables is not None and None not in tables


async def test_tenants_create_prints_a_token_that_signs_in_the_admin(
    cli_api: Api, acme: dict[str, str]
) -> None:
    assert set(acme) == {"tenantId", "adminUserId", "token"}
    me = await cli_api.req("GET", "/api/me", acme["token"])
    assert me.status_code == 200, me.text
    assert me.json() == {"userId": acme["adminUserId"], "tenantId": acme["tenantId"],
                         "email": "boss@example.com", "role": "admin", "employeeId": None}
    tenant = (await cli_api.req("GET", "/api/tenant", acme["token"])).json()
    assert (tenant["name"], tenant["timezone"]) == ("Acme", "UTC")


async def test_admin_subject_is_stored_and_token_by_user_id_signs_it(cli_db: CliDb, cli_api: Api) -> None:
    env = cli_env(cli_db.url, cli_db.data_dir)
    created = await arun(env, "tenants", "create", "--name", "Oidc Co", "--timezone", "Europe/London",
                         "--admin-email", "root@example.com", "--admin-subject", "auth0|root-1")
    assert created.returncode == 0, created.stderr
    out = json.loads(created.stdout)
    assert users_row(cli_db.url, out["adminUserId"]) == ("auth0|root-1", "admin")
    assert (await cli_api.req("GET", "/api/me", out["token"])).json()["userId"] == out["adminUserId"]

    # The user's id is not their subject: a token whose `sub` is the id names nobody.
    by_id_as_sub = mint_token(make_settings(cli_db.url, cli_db.data_dir), uuid.UUID(out["tenantId"]),
                              out["adminUserId"])
    assert (await cli_api.req("GET", "/api/me", by_id_as_sub)).status_code == 401
    by_id = await arun(env, "token", "--tenant", out["tenantId"], "--user", out["adminUserId"])
    by_subject = await arun(env, "token", "--tenant", out["tenantId"], "--user", "auth0|root-1")
    for done in (by_id, by_subject):
        assert done.returncode == 0, done.stderr
        assert done.stderr == ""  # found, by id and by its own subject: no "has no user" warning
        me = await cli_api.req("GET", "/api/me", done.stdout.strip())
        assert me.status_code == 200, me.text
        assert (me.json()["userId"], me.json()["role"]) == (out["adminUserId"], "admin")


async def test_tenants_create_under_an_oidc_issuer_mints_no_token(cli_db: CliDb, tmp_path: Path) -> None:
    done = await arun(oidc_env(cli_db.url, tmp_path), "tenants", "create", "--name", "Idp Co", "--timezone", "UTC",
                      "--admin-email", "idp@example.com", "--admin-subject", "idp-sub-42")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["token"] is None
    assert users_row(cli_db.url, out["adminUserId"]) == ("idp-sub-42", "admin")
    assert not (tmp_path / "jwt-secret").exists()  # no dev secret for a deployment that never uses one


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--timezone", "Mars/Olympus", "Mars/Olympus is not an IANA time zone"),
    ("--name", "x" * 201, "at most 200 characters"),  # once a database constraint's stack trace
])
async def test_tenants_create_names_a_bad_option(cli_db: CliDb, option: str, value: str, message: str) -> None:
    before = tenant_count(cli_db.url)
    options = {"--name": "Bad Co", "--timezone": "UTC", "--admin-email": "bad@example.com", option: value}
    done = await arun(cli_env(cli_db.url, cli_db.data_dir), "tenants", "create",
                      *(part for pair in options.items() for part in pair))
    assert done.returncode == 2
    assert option in done.stderr and message in done.stderr
    assert tenant_count(cli_db.url) == before


@pytest.mark.parametrize(("oidc", "tenant", "message"), [
    (False, "not-a-uuid", "'not-a-uuid' is not a tenant id"),
    (True, str(uuid.uuid4()), "uses an OIDC issuer"),
])
async def test_token_refusals_exit_2(cli_db: CliDb, tmp_path: Path, oidc: bool, tenant: str, message: str) -> None:
    env = (oidc_env if oidc else cli_env)(cli_db.url, tmp_path)
    done = await arun(env, "token", "--tenant", tenant, "--user", "x")
    assert done.returncode == 2
    assert message in done.stderr
    assert done.stdout == ""


def test_token_without_a_database_signs_the_id_and_starts_no_server(cli_db: CliDb, tmp_path: Path) -> None:
    """No DATABASE_URL: `--user <id>` is signed as the subject (a user's default) instead of
    starting an embedded PostgreSQL to look the user up."""
    env = cli_env(cli_db.url, tmp_path)
    del env["DATABASE_URL"]
    user, tenant = str(uuid.uuid4()), str(uuid.uuid4())
    done = run(env, "token", "--tenant", tenant, "--user", user)
    assert done.returncode == 0, done.stderr
    assert "no DATABASE_URL" in done.stderr
    claims = jwt.decode(done.stdout.strip(), JWT_SECRET, algorithms=["HS256"])
    assert (claims["sub"], claims["tenant_id"]) == (user, tenant)
    assert list(tmp_path.iterdir()) == []  # no embedded server's data directory, no secret file


async def test_token_for_a_tenant_that_does_not_exist_prints_none(cli_db: CliDb, acme: dict[str, str]) -> None:
    """Such a token could never sign in (401): exit 1 and say why, rather than print it."""
    env = cli_env(cli_db.url, cli_db.data_dir)
    missing = str(uuid.uuid4())
    done = await arun(env, "token", "--tenant", missing, "--user", acme["adminUserId"])
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.strip() == f"token: no tenant {missing}"


async def test_token_for_an_unknown_user_warns_and_a_known_subject_does_not(
    cli_db: CliDb, cli_api: Api, acme: dict[str, str]
) -> None:
    env = cli_env(cli_db.url, cli_db.data_dir)
    unknown = await arun(env, "token", "--tenant", acme["tenantId"], "--user", "nobody-yet")
    assert unknown.returncode == 0, unknown.stderr
    assert "has no user 'nobody-yet'" in unknown.stderr and "401" in unknown.stderr
    assert (await cli_api.req("GET", "/api/me", unknown.stdout.strip())).status_code == 401
    known = await arun(env, "token", "--tenant", acme["tenantId"], "--user", acme["adminUserId"])
    assert known.returncode == 0 and known.stderr == ""


def test_help_writes_nothing_on_stderr(cli_db: CliDb) -> None:
    """Alembic once logged seven lines on every command, --help too."""
    for args in (["--help"], ["token", "--help"], ["audit", "verify", "--help"]):
        done = run(cli_env(cli_db.url, cli_db.data_dir), *args)
        assert done.returncode == 0 and done.stdout and done.stderr == "", (args, done.stderr)


async def test_a_bad_setting_is_named_without_its_value(cli_db: CliDb, tmp_path: Path) -> None:
    env = cli_env(cli_db.url, tmp_path) | {"UNIFOCUS_DB_POOL_MAX": "s3cret-looking"}
    done = await arun(env, "token", "--tenant", str(uuid.uuid4()), "--user", "x")
    assert done.returncode == 2
    assert "UNIFOCUS_DB_POOL_MAX" in done.stderr and "s3cret-looking" not in done.stderr


async def test_exceptions_sweep_raises_absences(cli_db: CliDb, cli_api: Api, acme: dict[str, str]) -> None:
    """A 00:00-01:00 shift every day (the tenant is on UTC) that nobody came to: yesterday's
    ended long over `missedPunchAfterMinutes` ago, so the sweep raises its absence."""
    token = acme["token"]
    emp = await cli_api.req("POST", "/api/employees", token, json={"firstName": "Al", "lastName": "Sent"})
    assert emp.status_code == 201, emp.text
    today = datetime.now(UTC).date()
    sched = await cli_api.req("POST", "/api/schedules", token, json={
        "employeeId": emp.json()["id"], "startDate": str(today - timedelta(days=2)), "endDate": str(today),
        "shifts": [{"dayOfWeek": d, "startTime": "00:00", "endTime": "01:00"} for d in range(1, 8)]})
    assert sched.status_code == 201, sched.text

    done = await arun(cli_env(cli_db.url, cli_db.data_dir), "exceptions", "sweep")
    assert done.returncode == 0, done.stderr
    raised = int(done.stdout.split("raised ", 1)[1].split()[0])
    listed = await cli_api.req("GET", f"/api/exceptions?employeeId={emp.json()['id']}", token)
    kinds = [(e["type"], e["shiftDate"]) for e in listed.json()["items"]]
    assert ("absence", str(today - timedelta(days=1))) in kinds
    assert raised == len(kinds) >= 2




async def test_a_one_off_command_creates_a_missing_metrics_directory(cli_db: CliDb, tmp_path: Path) -> None:
    """A Job's pod (deploy/k8s) starts with an empty /tmp while PROMETHEUS_MULTIPROC_DIR names
    /tmp/metrics: the export must run, not fail on the missing directory."""
    metrics = tmp_path / "fresh-tmp" / "metrics"
    env = cli_env(cli_db.url, cli_db.data_dir) | {"PROMETHEUS_MULTIPROC_DIR": str(metrics)}
    out = tmp_path / "audit.jsonl"
    done = await arun(env, "audit", "export", "--since", "2026-01-01T00:00:00Z", "--until", "2026-01-02T00:00:00Z",
                      "--out", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    assert out.exists() and metrics.is_dir()


@pytest.mark.parametrize("command", [
    ["idempotency", "cleanup"],
    ["exceptions", "sweep"],
    ["audit", "verify"],
    ["audit", "export", "--since", "2026-01-01T00:00:00Z", "--until", "2026-01-02T00:00:00Z", "--out", "x.jsonl"],
    ["migrate"],
    ["tenants", "create", "--name", "N", "--timezone", "UTC", "--admin-email", "a@example.com"],
], ids=lambda c: " ".join(c[:2]))
def test_a_database_that_is_down_is_one_line_and_exit_1(tmp_path: Path, command: list[str]) -> None:
    """Every command, the CronJobs' included: no stack trace (`run` checks), a non-zero exit."""
    port = free_port()  # nothing listens there
    env = cli_env(f"postgresql://postgres@127.0.0.1:{port}/nowhere", tmp_path)
    done = run(env, *[str(tmp_path / a) if a == "x.jsonl" else a for a in command])
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.strip(), "no message"
    assert not (tmp_path / "x.jsonl").exists()
