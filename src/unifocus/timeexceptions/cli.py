"""`unifocus exceptions sweep`."""

from __future__ import annotations

import asyncio
from functools import partial

import typer

app = typer.Typer(help="The exception engine.", no_args_is_help=True)


@app.command()
def sweep() -> None:
    """Raise time-based exceptions now (absence, missed punches): the look-back, then the late
    punches' days, each as its scheduled job runs it (under its lock); prints what each did.
    Both run even when the first fails; exit 1 if either failed, 3 if both were running in
    another replica."""
    from unifocus.errors import one_line
    from unifocus.jobs.cli_support import with_database
    from unifocus.jobs.scheduler import run_exclusive
    from unifocus.timeexceptions.sweep import sweep as run_sweep
    from unifocus.timeexceptions.sweep import sweep_late_punches

    jobs = (("look-back", "exception-sweep", run_sweep),
            ("late-punch pass", "exception-sweep-late", sweep_late_punches))

    async def go() -> list[tuple[str, int | None | BaseException]]:
        outcomes: list[tuple[str, int | None | BaseException]] = []
        async with with_database() as (db, settings):
            for what, name, fn in jobs:
                try:
                    outcomes.append((what, await run_exclusive(db, name, partial(fn, chains=settings.audit_chains))))
                except Exception as exc:  # logged by run_exclusive; the other pass still runs
                    outcomes.append((what, exc))
        return outcomes

    outcomes = asyncio.run(go())
    for what, got in outcomes:
        if isinstance(got, BaseException):
            typer.echo(f"{what}: failed: {one_line(got)}", err=True)
        elif got is None:
            typer.echo(f"{what}: skipped: running in another replica")
        else:
            typer.echo(f"{what}: raised {got} exceptions")
    if any(isinstance(got, BaseException) for _, got in outcomes):
        raise typer.Exit(1)
    if all(got is None for _, got in outcomes):
        raise typer.Exit(3)
