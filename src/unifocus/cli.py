"""The `unifocus` command (contract section 8). Feature commands live in their folders
(`<feature>/cli.py`) and are mounted here."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import uuid
from pathlib import Path
from typing import Any, NoReturn

import typer

from unifocus.db.urls import app_url
from unifocus.settings import Settings, get_settings

main_app = typer.Typer(help="Unifocus time-and-attendance service.", no_args_is_help=True, add_completion=False)
tenants_app = typer.Typer(help="Tenants.", no_args_is_help=True)
main_app.add_typer(tenants_app, name="tenants")

_embedded: Any = None  # keeps the embedded server alive for the life of the process


def owner_url(settings: Settings, start: bool = True) -> str:
    """DATABASE_URL when set (never starts a server); else the embedded PostgreSQL."""
    global _embedded
    if settings.database_url:
        return settings.database_url
    if not start:
        raise typer.BadParameter("DATABASE_URL is unset")
    from unifocus.db.embedded import start_embedded

    url, _embedded = start_embedded(Path(settings.data_dir))
    return url


def _migrate(settings: Settings, url: str, target: str | None = None) -> str:
    from unifocus.db.migrate import migrate as run_migrations

    # An unreachable database, or a newer schema that does not serve this code, is main()'s
    # one line (exit 1), not a stack trace.
    return run_migrations(url, settings, target)


@main_app.command()
def migrate(
    to: str = typer.Option(None, "--to", help="Revision to bring the schema to, up or down (default: this "
                                             "code's head). Going down is how a release's schema is rolled "
                                             "back: run it with the code that has the newer migrations "
                                             "(docs/rollback.md)."),
) -> None:
    """Apply the database migrations (as the owner role of DATABASE_URL).

    A newer schema that still serves this code (a rolled-back release) is left as it is."""
    from unifocus.db.migrate import UnknownRevision

    settings = get_settings()
    try:
        typer.echo(_migrate(settings, owner_url(settings), to))
    except UnknownRevision as exc:
        raise typer.BadParameter(str(exc), param_hint="--to") from exc


def _prepare_env(settings: Settings, url: str | None, workers: int) -> None:
    """Workers are separate processes: hand them the resolved URLs and a metrics dir."""
    if url is not None:
        os.environ["DATABASE_URL"] = url
        os.environ["UNIFOCUS_APP_DATABASE_URL"] = app_url(settings, url)
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(Path(settings.data_dir).resolve() / "metrics")
    if not settings.jwks_url:
        # Every worker builds its own token verifier, and with no UNIFOCUS_JWT_SECRET each would
        # generate and write a dev secret if the file is not there yet (check, then write): two
        # workers starting together would keep different secrets, and tokens would be accepted
        # by one and refused by the other. Generate it here, once, before any worker starts.
        from unifocus.auth.tokens import resolve_secret

        resolve_secret(settings)
    metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if metrics_dir:
        # Files of a previous run's processes would be summed with ours (pids repeat in a
        # restarted container): start from an empty directory.
        Path(metrics_dir).mkdir(parents=True, exist_ok=True)
        for stale in Path(metrics_dir).glob("*.db"):
            stale.unlink()
    get_settings.cache_clear()


def _stop_embedded() -> None:
    if _embedded is not None:
        _embedded.cleanup()


def _run_server(host: str | None, port: int | None, workers: int | None) -> None:
    import signal

    import uvicorn

    settings = get_settings()
    # uvicorn re-raises SIGTERM after its graceful shutdown; turning it into SystemExit lets the
    # embedded PostgreSQL be stopped instead of the process dying with it still running.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        _uvicorn_run(uvicorn, settings, host, port, workers)
    finally:
        _stop_embedded()


def _uvicorn_run(uvicorn: Any, settings: Settings, host: str | None, port: int | None, workers: int | None) -> None:
    from unifocus.observability.logging import uvicorn_log_config

    uvicorn.run(
        "unifocus.app:app_from_env",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers or settings.workers,
        timeout_graceful_shutdown=max(1, int(settings.shutdown_grace_seconds - settings.shutdown_drain_seconds)),
        log_level=settings.log_level.lower(),
        # uvicorn's own lines (start, stop, a worker that died, a malformed request) as JSON
        # lines through our handler, in the supervisor and in every worker, not its plain text
        log_config=uvicorn_log_config(settings.log_level, settings.log_json),
        access_log=False,
        loop="uvloop",
        # httptools, with a response's header block and body sent together (httpserver.py)
        http="unifocus.httpserver:CoalescingHttpToolsProtocol",
    )


@main_app.command()
def serve(
    host: str = typer.Option(None, help="Bind address (default UNIFOCUS_HOST, 127.0.0.1)."),
    port: int = typer.Option(None, help="Port (default UNIFOCUS_PORT, 8000)."),
    workers: int = typer.Option(None, help="Worker processes (default UNIFOCUS_WORKERS, 1)."),
) -> None:
    """Run the API. Migrates on start; embedded PostgreSQL when DATABASE_URL is unset.

    Logs JSON lines from the start (alembic's migration lines, a fatal start-up error): a
    server's output is read by a log pipeline, not by a person at a terminal."""
    from unifocus.observability.logging import configure_logging

    try:
        settings = get_settings()
    except Exception:
        configure_logging()  # the defaults: main() logs the configuration error as a JSON line
        raise
    configure_logging(settings.log_level, settings.log_json)
    url: str | None = None
    if settings.database_url or not settings.app_database_url:
        url = owner_url(settings)
        if settings.migrate_on_start:
            _migrate(settings, url)
    # else: only the runtime role's URL is configured (production pods): never start an
    # embedded server, never migrate (the migration job does, as the owner).
    _prepare_env(settings, url, workers or settings.workers)
    _run_server(host, port, workers)


@main_app.command()
def demo(
    host: str = typer.Option(None), port: int = typer.Option(None), workers: int = typer.Option(None),
    seed_only: bool = typer.Option(
        False, "--seed-only",
        help="Seed the two demo tenants into the configured database (DATABASE_URL, else the embedded one) "
             "and exit without starting a server: a staging environment's test tenants. Migrates first, "
             "unless UNIFOCUS_MIGRATE_ON_START=false: then a schema that is not migrated is refused (exit 1). "
             "Re-runs add nothing. Prints each tenant's name, zone and id, whether this run seeded it, "
             "and the ids of its admin, manager and employee users; no tokens (its output may be a "
             "cluster's log): mint one with `unifocus token --tenant T --user U`."),
    print_tokens: bool = typer.Option(
        False, "--print-tokens",
        help="With --seed-only, print the 24-hour admin, manager and employee tokens too, signed with "
             "UNIFOCUS_JWT_SECRET (else the data directory's development secret). Without --seed-only "
             "it changes nothing: `demo` always prints them."),
) -> None:
    """`serve` plus two demo tenants (created once, reused on later starts); prints tokens.

    With --seed-only: the tenants alone, no server, no tokens unless --print-tokens (staging's seed Job)."""
    from unifocus.demo import seed_demo

    settings = get_settings()
    if settings.jwks_url:
        # Refused before a server is started or a schema migrated (seed_demo refuses it too, but
        # only after both): the demo signs its own HS256 tokens, which an OIDC verifier refuses.
        typer.echo("demo: the demo mints its own HS256 tokens; unset UNIFOCUS_JWKS_URL", err=True)
        raise typer.Exit(2)
    url = owner_url(settings)
    if seed_only:
        _demo_seed_only(settings, url, print_tokens)
        return
    _migrate(settings, url)
    _prepare_env(settings, url, workers or settings.workers)
    summary = asyncio.run(seed_demo(get_settings(), url))
    base = f"http://{host or settings.host}:{port or settings.port}"
    for tenant in summary:
        typer.echo(f"\n== {tenant['name']} ({tenant['timezone']}) tenant {tenant['tenantId']}")
        for role, token in tenant["tokens"].items():
            typer.echo(f"  {role:<8} token: {token}")
        typer.echo(f"  try: curl -s -H 'Authorization: Bearer {tenant['tokens']['admin']}' {base}/api/me")
    typer.echo("")
    _run_server(host, port, workers)


def _demo_seed_only(settings: Settings, url: str, print_tokens: bool) -> None:
    import secrets

    from unifocus.demo import seed_demo
    from unifocus.demo.seed_only import report, schema_problem

    if not print_tokens and not settings.jwt_secret:
        # The seeding's own requests carry tokens it mints and verifies in-process; with none
        # printed, nothing outside this run needs their secret. A per-run one, then, instead of
        # a development secret file written (and warned about) in the data directory.
        settings = settings.model_copy(update={"jwt_secret": secrets.token_urlsafe(48)})
    try:
        if settings.migrate_on_start:
            _migrate(settings, url)  # as `demo` and `serve` do
        elif (problem := schema_problem(url)) is not None:
            # Not our migration to run (a Job in staging runs it): say what to wait for. Exit 1,
            # a failed check, which the seed Job retries until the migration Job is done.
            typer.echo(f"demo --seed-only: the schema is not ready ({problem}); UNIFOCUS_MIGRATE_ON_START=false "
                       "leaves it to `unifocus migrate`", err=True)
            raise typer.Exit(1)
        summary = asyncio.run(seed_demo(settings, url))
    finally:
        _stop_embedded()
    for line in report(summary, tokens=print_tokens):
        typer.echo(line)


@tenants_app.command("create")
def tenants_create(
    name: str = typer.Option(..., help="Tenant name."),
    timezone: str = typer.Option(..., help="IANA time zone, e.g. America/New_York."),
    admin_email: str = typer.Option(..., help="Email of the first admin."),
    admin_subject: str = typer.Option(
        None, help="The admin's subject: the `sub` your identity provider puts in the admin's tokens "
                   "(default: the admin's user id)."),
) -> None:
    """Create a tenant and its first admin; prints {tenantId, adminUserId, token}.

    `token` is an HS256 token for the admin, or null when an OIDC issuer signs the tokens
    (UNIFOCUS_JWKS_URL): the admin then signs in there, as --admin-subject."""
    from unifocus.auth.tokens import mint_token

    settings = get_settings()
    _check_tenant_options(name, timezone, admin_email, admin_subject)
    url = owner_url(settings)
    _migrate(settings, url)
    tenant_id, admin_id = asyncio.run(_create_tenant(settings, url, name, timezone, admin_email, admin_subject))
    token: str | None = None
    if settings.jwks_url:
        # The verifier takes the issuer's RS256/ES256 tokens only: an HS256 token would be
        # refused, and minting one would write a dev secret file this deployment never uses.
        if admin_subject is None:
            typer.echo(f"tenants create: the admin's subject is its id {admin_id}; the identity provider's "
                       "tokens for the admin must carry it as `sub` (or pass --admin-subject)", err=True)
    else:
        token = mint_token(settings, tenant_id, admin_subject or str(admin_id))
    typer.echo(json.dumps({"tenantId": str(tenant_id), "adminUserId": str(admin_id), "token": token}))


def _check_tenant_options(name: str, timezone: str, email: str, subject: str | None) -> None:
    """The API's own rules for a tenant and a user, checked before anything is written, so a
    bad option is named (exit 2) instead of surfacing as a database constraint."""
    from pydantic import ValidationError

    from unifocus.tenants.schemas import TenantPatch
    from unifocus.users.schemas import UserCreate

    options = {"name": "--name", "timezone": "--timezone", "email": "--admin-email", "subject": "--admin-subject"}
    try:
        TenantPatch(name=name, timezone=timezone)
        UserCreate(email=email, role="admin", subject=subject)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else ""
        message = f"{timezone} is not an IANA time zone" if field == "timezone" else error["msg"]
        raise typer.BadParameter(message, param_hint=f"'{options.get(field, field)}'") from None


async def _create_tenant(
    settings: Settings, url: str, name: str, timezone: str, email: str, subject: str | None = None
) -> tuple[Any, Any]:
    import asyncpg

    from unifocus.tenants.service import create_with_admin

    conn = await asyncpg.connect(app_url(settings, url))
    try:
        async with conn.transaction():
            return await create_with_admin(conn, name, timezone, email, f"cli-{uuid.uuid4().hex}",
                                           settings.audit_chains, admin_subject=subject)
    finally:
        await conn.close()


@main_app.command()
def token(
    tenant: str = typer.Option(..., help="Tenant id."),
    user: str = typer.Option(..., help="User id, or the user's subject."),
    ttl_minutes: int = typer.Option(
        None, min=1, help="Lifetime in minutes (default UNIFOCUS_TOKEN_TTL_MINUTES)."),
) -> None:
    """Print a signed HS256 token for a user (development, tests, the demo).

    A --user that is the id of a user of the tenant is signed as that user's subject (the
    token's `sub` must be the subject, which may differ from the id); anything else is signed
    as a subject. The lookup uses DATABASE_URL (or UNIFOCUS_APP_DATABASE_URL): a tenant that
    does not exist is exit 1 (no token), and a user found by neither id nor subject a warning
    on stderr. Without either URL, U is signed as given and nothing is checked."""
    from unifocus.auth.tokens import mint_token

    settings = get_settings()
    if settings.jwks_url:
        typer.echo("token: this deployment uses an OIDC issuer (UNIFOCUS_JWKS_URL); ask it for tokens", err=True)
        raise typer.Exit(2)
    try:
        tenant_id = uuid.UUID(tenant)
    except ValueError:
        raise typer.BadParameter(f"{tenant!r} is not a tenant id (UUID)", param_hint="'--tenant'") from None
    subject = user
    try:
        user_id: uuid.UUID | None = uuid.UUID(user)
    except ValueError:
        user_id = None  # not an id: a subject
    if not (settings.database_url or settings.app_database_url):
        # No database configured: looking the user up would start an embedded server (initdb
        # and migrations, or a second one beside `make run`'s) just to print a token.
        typer.echo(f"token: no DATABASE_URL; signing {user!r} as the subject (a user's subject is "
                   "its id unless it was set); neither the tenant nor the user was checked", err=True)
    else:
        known, found = asyncio.run(_user_subject(settings, tenant_id, user_id, user))
        if not known:
            # A token for a tenant that does not exist can never sign in (401): say so, print none.
            typer.echo(f"token: no tenant {tenant_id}", err=True)
            raise typer.Exit(1)
        if found is None:
            typer.echo(f"token: tenant {tenant_id} has no user {user!r} (by id or subject); signing it as a "
                       "subject: the API answers 401 until a user has that subject", err=True)
        else:
            subject, active = found
            if not active:
                typer.echo(f"token: user {user!r} is deactivated; the API will answer 403", err=True)
    typer.echo(mint_token(settings, tenant_id, subject, ttl_minutes))


def _runtime_url(settings: Settings) -> str:
    """The app role's URL: UNIFOCUS_APP_DATABASE_URL as is, else DATABASE_URL's server with the
    app role (the caller checked that one of them is set: no embedded server is started)."""
    return settings.app_database_url or app_url(settings, owner_url(settings, start=False))


async def _user_subject(settings: Settings, tenant_id: uuid.UUID, user_id: uuid.UUID | None,
                        subject: str) -> tuple[bool, tuple[str, bool] | None]:
    """Whether the tenant exists, and (subject, active) of its user with this id, else with
    this subject (None when neither)."""
    import asyncpg

    from unifocus.db.pool import set_tenant

    conn = await asyncpg.connect(_runtime_url(settings))
    try:
        # tenants and users are under row-level security: the app role sees a tenant's rows
        # only with the tenant set, and set_tenant is transaction-local.
        async with conn.transaction(readonly=True):
            await set_tenant(conn, tenant_id)
            known = await conn.fetchval("SELECT EXISTS (SELECT 1 FROM tenants WHERE tenant_id = $1)", tenant_id)
            row = await conn.fetchrow(
                "SELECT subject, active FROM users WHERE tenant_id = $1 AND (id = $2 OR subject = $3) "
                "ORDER BY id = $2 DESC LIMIT 1", tenant_id, user_id, subject)
    finally:
        await conn.close()
    return bool(known), None if row is None else (row["subject"], row["active"])


def _mount_feature_commands() -> None:
    from unifocus.audit.cli import app as audit_app
    from unifocus.idempotency.cli import app as idempotency_app
    from unifocus.timeexceptions.cli import app as exceptions_app

    main_app.add_typer(idempotency_app, name="idempotency")
    main_app.add_typer(audit_app, name="audit")
    main_app.add_typer(exceptions_app, name="exceptions")

    from unifocus.backup import cli as backup_cli

    main_app.command("backup")(backup_cli.backup)
    main_app.command("restore")(backup_cli.restore)

    from unifocus.client import cli as client_cli

    main_app.command("smoke")(client_cli.smoke)
    main_app.add_typer(client_cli.gate_app, name="gate")


def main() -> None:
    from pydantic import ValidationError

    from unifocus.settings import ConfigurationError

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if metrics_dir:
        # One-off commands (an export, the sweep) count metrics too, and prometheus_client
        # fails on a missing directory: a Job's fresh /tmp has none. Before any command module
        # is imported, since a metric's file is created with the metric.
        Path(metrics_dir).mkdir(parents=True, exist_ok=True)
    _mount_feature_commands()
    # Settings are read inside each command: a bad environment is the operator's to fix, so it
    # is named on one line (exit 2, like a bad option) instead of a stack trace.
    try:
        main_app()
    except ConfigurationError as exc:
        _config_error([str(exc)])
    except ValidationError as exc:
        if exc.title != Settings.__name__:
            raise
        # Without the input values: they may be secrets (a password in a URL, the JWT secret).
        _config_error([f"{_env_name(e['loc'])}: {e['msg']}" for e in exc.errors(include_input=False)])
    except _failures() as exc:
        # A database that is down or refuses, a file that cannot be written: one line in the
        # driver's or the OS's words and exit 1, for every command (the CronJobs' included);
        # the one place commands' failures are turned into that line.
        from unifocus.errors import one_line

        _fatal(f"unifocus: {type(exc).__name__}: {one_line(exc, default='failed')}")
        sys.exit(1)


def _failures() -> tuple[type[BaseException], ...]:
    import asyncpg
    import psycopg
    from sqlalchemy.exc import OperationalError

    from unifocus.db.migrate import SchemaNotServed
    from unifocus.db.pool import UNAVAILABLE
    from unifocus.demo.seed import DemoSeedError
    from unifocus.errors import ServiceUnavailable

    # ServiceUnavailable: the pool's answer when it cannot reach the database. DemoSeedError:
    # a seeding request the API refused (`demo`, `demo --seed-only`).
    return (*UNAVAILABLE, ServiceUnavailable, SchemaNotServed, DemoSeedError, asyncpg.PostgresError,
            psycopg.Error, OperationalError)


def _env_name(loc: tuple[int | str, ...]) -> str:
    """The variable behind a Settings field: its alias (DATABASE_URL) or UNIFOCUS_<FIELD>."""
    name = str(loc[0]) if loc else "?"
    return name if name.isupper() else f"UNIFOCUS_{name.upper()}"


def _config_error(lines: list[str]) -> NoReturn:
    for line in lines:
        _fatal(f"configuration: {line}")
    sys.exit(2)


def _fatal(line: str) -> None:
    """A command's fatal error: a JSON line (logger `unifocus.cli`) from `serve`, which logs
    JSON from its start; plain text on stderr for the other commands, run by a person or a
    Job whose output is read as text."""
    from unifocus.observability.logging import configured

    if configured():
        logging.getLogger("unifocus.cli").error(line)
    else:
        typer.echo(line, err=True)
