"""`unifocus exceptions sweep`."""

from __future__ import annotations

import asyncio

import typer

app = typer.Typer(help="The exception engine.", no_args_is_help=True)


@app.command()
def sweep() -> None:
    """Raise time-based exceptions now (absence, missed punches); prints how many."""
    from unifocus.jobs.cli_support import with_database
    from unifocus.jobs.scheduler import run_exclusive
    from unifocus.timeexceptions.sweep import sweep as run_sweep

    async def go() -> int | None:
        async with with_database() as (db, settings):
            return await run_exclusive(db, "exception-sweep", lambda d: run_sweep(d, chains=settings.audit_chains))

    raised = asyncio.run(go())
    if raised is None:
        typer.echo("skipped: the sweep is running in another replica")
        raise typer.Exit(3)
    typer.echo(f"raised {raised} exceptions")
