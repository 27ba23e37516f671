"""`unifocus backup FILE` and `unifocus restore FILE [--force]` (the owner URL: DATABASE_URL,
else the embedded server's). See docs/backup.md for the production strategy."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="Whole-database backup and restore.", no_args_is_help=True)


@app.command("backup")
def backup(file: Path = typer.Argument(..., help="Output file (pg_dump custom format).")) -> None:
    """Write the whole database (every table, the audit log and idempotency records included)
    to FILE with pg_dump --format=custom."""
    from unifocus.backup import service
    from unifocus.cli import owner_url
    from unifocus.settings import get_settings

    try:
        tools = service.backup(owner_url(get_settings()), file)
    except service.BackupError as exc:
        typer.echo(f"backup: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"backup written to {file} ({file.stat().st_size} bytes, pg_dump {tools.major})")


@app.command("restore")
def restore(
    file: Path = typer.Argument(..., help="A file written by `unifocus backup`."),
    force: bool = typer.Option(False, "--force", help="Drop the database's contents first if it holds tables."),
) -> None:
    """Restore FILE into the database of DATABASE_URL (created if missing). Refuses a database
    that holds tables unless --force. The audit chain is restored verbatim: run
    `unifocus audit verify` afterwards."""
    from unifocus.backup import service
    from unifocus.cli import owner_url
    from unifocus.settings import get_settings

    settings = get_settings()
    try:
        service.restore(owner_url(settings), file, force=force, app_role=settings.app_db_role)
    except service.BackupError as exc:
        typer.echo(f"restore: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"restored {file}; check it with `unifocus audit verify`")
