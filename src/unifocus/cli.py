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
from typing import Any

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


def _migrate(settings: Settings, url: str) -> None:
    from unifocus.db.migrate import upgrade

    upgrade(url, settings)


@main_app.command()
def migrate() -> None:
    """Apply the database migrations (as the owner role of DATABASE_URL)."""
    settings = get_settings()
    _migrate(settings, owner_url(settings))
    typer.echo("migrations at head")


def _prepare_env(settings: Settings, url: str | None, workers: int) -> None:
    """Workers are separate processes: hand them the resolved URLs and a metrics dir."""
    if url is not None:
        os.environ["DATABASE_URL"] = url
        os.environ["UNIFOCUS_APP_DATABASE_URL"] = app_url(settings, url)
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(Path(settings.data_dir).resolve() / "metrics")
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
    uvicorn.run(
        "unifocus.app:app_from_env",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers or settings.workers,
        timeout_graceful_shutdown=max(1, int(settings.shutdown_grace_seconds - settings.shutdown_drain_seconds)),
        log_level=settings.log_level.lower(),
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
    """Run the API. Migrates on start; embedded PostgreSQL when DATABASE_URL is unset."""
    settings = get_settings()
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
    host: str = typer.Option(None), port: int = typer.Option(None), workers: int = typer.Option(None)
) -> None:
    """`serve` plus two demo tenants (created once, reused on later starts); prints tokens."""
    from unifocus.demo import seed_demo

    settings = get_settings()
    url = owner_url(settings)
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


@tenants_app.command("create")
def tenants_create(
    name: str = typer.Option(..., help="Tenant name."),
    timezone: str = typer.Option(..., help="IANA time zone, e.g. America/New_York."),
    admin_email: str = typer.Option(..., help="Email of the first admin."),
) -> None:
    """Create a tenant and its first admin; prints {tenantId, adminUserId, token}."""
    from unifocus.auth.tokens import mint_token
    from unifocus.tenants.schemas import TenantPatch

    settings = get_settings()
    try:
        TenantPatch(timezone=timezone)
    except ValueError as exc:
        raise typer.BadParameter(f"{timezone} is not an IANA time zone") from exc
    url = owner_url(settings)
    _migrate(settings, url)
    tenant_id, admin_id = asyncio.run(_create_tenant(settings, url, name, timezone, admin_email))
    token = mint_token(settings, tenant_id, str(admin_id))
    typer.echo(json.dumps({"tenantId": str(tenant_id), "adminUserId": str(admin_id), "token": token}))


async def _create_tenant(settings: Settings, url: str, name: str, timezone: str, email: str) -> tuple[Any, Any]:
    import asyncpg

    from unifocus.tenants.service import create_with_admin

    conn = await asyncpg.connect(app_url(settings, url))
    try:
        async with conn.transaction():
            return await create_with_admin(conn, name, timezone, email, f"cli-{uuid.uuid4().hex}",
                                           settings.audit_chains)
    finally:
        await conn.close()


@main_app.command()
def token(
    tenant: str = typer.Option(..., help="Tenant id."),
    user: str = typer.Option(..., help="User id, or the user's subject."),
    ttl_minutes: int = typer.Option(None, help="Lifetime in minutes (default UNIFOCUS_TOKEN_TTL_MINUTES)."),
) -> None:
    """Print a signed HS256 token for a user (development, tests, the demo)."""
    from unifocus.auth.tokens import mint_token

    settings = get_settings()
    if settings.jwks_url:
        typer.echo("token: this deployment uses an OIDC issuer (UNIFOCUS_JWKS_URL); ask it for tokens", err=True)
        raise typer.Exit(2)
    typer.echo(mint_token(settings, uuid.UUID(tenant), user, ttl_minutes))


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
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    _mount_feature_commands()
    main_app()
