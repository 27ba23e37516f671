"""`unifocus smoke URL --token T` and `unifocus gate verify URL --token-a T1 --token-b T2`
(mounted by `unifocus.cli`). Both print a pass/fail table and exit 0 only when all passed."""

from __future__ import annotations

import asyncio
import logging
import uuid

import typer

from unifocus.client.report import Row, render

gate_app = typer.Typer(help="The production readiness gate against a live deployment.", no_args_is_help=True)


def _quiet_http_logs() -> None:
    # httpx logs every request at INFO; the table is the output.
    logging.getLogger("httpx").setLevel(logging.WARNING)


def _finish(title: str, rows: list[Row], quiet: bool) -> None:
    typer.echo(render(title, rows, verbose=not quiet))
    raise typer.Exit(0 if all(r.ok for r in rows) else 1)


def smoke(
    url: str = typer.Argument(..., help="Base URL of the deployment, e.g. http://127.0.0.1:8000."),
    token: str = typer.Option(..., envvar="UNIFOCUS_TOKEN", help="A manager or admin token (admin: audit too)."),
    max_attempts: int = typer.Option(5, help="Tries per call (retries on connection errors, 409 in-progress, "
                                             "429, 503)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Evidence only for failed steps."),
) -> None:
    """The main flows end to end: health, ready, me, employee, schedule + shift, punch in (with
    an idempotent retry) and out, exceptions, resolve, timesheet + CSV, audit (admin)."""
    from unifocus.client.smoke import run_smoke
    from unifocus.client.sync import Client

    _quiet_http_logs()
    with Client(url, token, max_attempts=max_attempts, timeout=30) as client:
        rows = run_smoke(client)
    _finish(f"unifocus smoke {url}", rows, quiet)


def _create_tenants() -> tuple[str, str]:
    """Two fresh tenants with an admin each, through DATABASE_URL (like `tenants create`)."""
    from unifocus.auth.tokens import mint_token
    from unifocus.cli import _create_tenant
    from unifocus.settings import get_settings

    settings = get_settings()
    if not settings.database_url:
        raise typer.BadParameter("--create needs DATABASE_URL (the deployment's owner connection)")
    if settings.jwks_url:
        raise typer.BadParameter("--create mints HS256 tokens; this deployment uses an OIDC issuer")
    tokens = []
    for label, tz in (("A", "America/New_York"), ("B", "Europe/London")):
        run = uuid.uuid4().hex[:8]
        tenant_id, admin_id = asyncio.run(_create_tenant(settings, settings.database_url, f"Gate {label} {run}",
                                                         tz, f"gate-admin-{run}@example.com"))
        tokens.append(mint_token(settings, tenant_id, str(admin_id)))
    return tokens[0], tokens[1]


@gate_app.command("verify")
def verify(
    url: str = typer.Argument(..., help="Base URL of the deployment."),
    token_a: str = typer.Option(None, "--token-a", envvar="UNIFOCUS_GATE_TOKEN_A", help="Tenant A's admin token."),
    token_b: str = typer.Option(None, "--token-b", envvar="UNIFOCUS_GATE_TOKEN_B", help="Tenant B's admin token."),
    create: bool = typer.Option(False, "--create", help="Create two tenants through DATABASE_URL instead."),
    metrics_token: str = typer.Option(None, envvar="UNIFOCUS_METRICS_TOKEN", help="Bearer token for /metrics."),
    storm: int = typer.Option(30, help="Concurrent same-key requests in the retry storm."),
    health_calls: int = typer.Option(50, help="/health calls for the p99 latency."),
    hammer: int = typer.Option(300, help="/health calls fired fast to prove it is never rate limited."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Evidence only for failed gates."),
) -> None:
    """Check the five gates (readiness, idempotency, tenancy, audit, alerts/monitoring) against
    a live deployment; a table with evidence; exit 1 when any gate fails."""
    from unifocus.client.gate import verify as run_verify

    _quiet_http_logs()
    if create:
        token_a, token_b = _create_tenants()
    if not token_a or not token_b:
        raise typer.BadParameter("give --token-a and --token-b (two tenants' admins), or --create")
    rows = asyncio.run(run_verify(url, token_a, token_b, metrics_token=metrics_token, storm=storm,
                                  health_calls=health_calls, hammer=hammer))
    _finish(f"unifocus gate verify {url}", rows, quiet)
