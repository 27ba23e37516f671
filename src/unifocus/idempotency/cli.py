"""`unifocus idempotency cleanup`."""

from __future__ import annotations

import asyncio

import typer

app = typer.Typer(help="Idempotency records.", no_args_is_help=True)


@app.command()
def cleanup() -> None:
    """Delete expired idempotency records now (one replica at a time); prints how many."""
    from unifocus.idempotency.cleanup import cleanup_expired
    from unifocus.jobs.cli_support import with_database
    from unifocus.jobs.scheduler import run_exclusive

    async def go() -> int | None:
        async with with_database() as (db, settings):
            return await run_exclusive(
                db, "idempotency-cleanup", lambda d: cleanup_expired(d, settings.idempotency_cleanup_batch)
            )

    removed = asyncio.run(go())
    if removed is None:
        typer.echo("skipped: the cleanup is running in another replica")
        raise typer.Exit(3)
    typer.echo(f"removed {removed} expired idempotency records")
