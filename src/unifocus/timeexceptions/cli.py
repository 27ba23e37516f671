"""`unifocus exceptions sweep`."""

from __future__ import annotations

import asyncio

import typer

app = typer.Typer(help="The exception engine.", no_args_is_help=True)


@app.command()
def sweep() -> None:
    """Raise time-based exceptions now (absence, missed punches): the look-back, then the late
    punches' days, each as its scheduled job runs it; prints how many."""
    from unifocus.jobs.cli_support import with_database
    from unifocus.jobs.scheduler import run_exclusive
    from unifocus.timeexceptions.sweep import sweep as run_sweep
    from unifocus.timeexceptions.sweep import sweep_late_punches

    async def go() -> tuple[int | None, int | None]:
        async with with_database() as (db, settings):
            chains = settings.audit_chains
            recent = await run_exclusive(db, "exception-sweep", lambda d: run_sweep(d, chains=chains))
            late = await run_exclusive(db, "exception-sweep-late", lambda d: sweep_late_punches(d, chains=chains))
            return recent, late

    recent, late = asyncio.run(go())
    if recent is None and late is None:
        typer.echo("skipped: the sweep is running in another replica")
        raise typer.Exit(3)
    typer.echo(f"raised {(recent or 0) + (late or 0)} exceptions"
               + ("" if recent is not None and late is not None else
                  f" (the {'look-back' if recent is None else 'late-punch pass'} is running in another replica: "
                  "skipped)"))
