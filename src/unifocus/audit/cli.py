"""`unifocus audit verify [--tenant T] [--heads] [--against PATH ...]` and
`unifocus audit export --since --until --out F`."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from uuid import UUID

import typer

app = typer.Typer(help="The audit log: chain verification and SIEM export.", no_args_is_help=True)


def _tenant(value: str | None) -> UUID | None:
    if value is None:
        return None
    try:
        return UUID(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{value!r} is not a tenant id (UUID)") from exc


def parse_instant(value: str, name: str) -> datetime:
    """`YYYY-MM-DD` (midnight UTC) or an RFC 3339 instant with an offset."""
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), datetime.min.time(), tzinfo=UTC)
        ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise typer.BadParameter(f"{name}: {value!r} is neither YYYY-MM-DD nor an RFC 3339 instant") from exc
    if ts.tzinfo is None:
        raise typer.BadParameter(f"{name}: {value!r} has no UTC offset (e.g. 2026-03-08T00:00:00Z)")
    return ts


@app.command()
def verify(
    tenant: str = typer.Option(None, help="Only this tenant (id); default: every tenant."),
    heads: bool = typer.Option(False, "--heads", help="Also print each chain's last seq and hash."),
    against: list[Path] = typer.Option(
        None, "--against", metavar="PATH",
        help="Also check the chains against this outside record: an audit export file, the "
             "export directory (its *.jsonl files), or a file of `--heads` lines. Repeatable. "
             "Every recorded entry must still be in the database with the recorded hash."),
) -> None:
    """Check the audit hash chains (as the owner, DATABASE_URL). Exit 0 when intact; exit 1
    naming the first bad entry of each tampered tenant; exit 2 for a --tenant with neither a
    tenants row nor audit entries. A chain alone cannot show a rewrite whose hashes were
    recomputed: give the nightly exports with --against to detect one."""
    from unifocus.audit.verify import RecordError, UnknownTenant, record_files, verify_url
    from unifocus.cli import owner_url
    from unifocus.settings import get_settings

    tenant_id = _tenant(tenant)
    try:
        # A missing path or an empty directory is refused before connecting (or starting an
        # embedded server); verify reads the files as resolved here.
        paths = record_files(against or [])
        report = asyncio.run(verify_url(owner_url(get_settings()), tenant_id, paths))
    except RecordError as exc:
        raise typer.BadParameter(str(exc), param_hint="'--against'") from None
    except UnknownTenant as exc:
        # A bad option (exit 2, README "Exit codes"), not a failed check: nothing was checked.
        raise typer.BadParameter(str(exc), param_hint="'--tenant'") from None
    if heads:
        for h in report.heads:
            typer.echo(f"head tenant {h.tenant_id} chain {h.chain} seq {h.seq} hash {h.hash}")
    if report.ok:
        checked = (f"; {report.recorded} recorded entries from {report.sources} files match"
                   if paths else "")
        typer.echo(f"audit log intact: {report.entries} entries, {len(report.heads)} chains, "
                   f"{report.tenants} tenants{checked}")
        return
    for bad in report.bad:
        typer.echo(f"TAMPERED: {bad.describe()}")
    typer.echo(f"audit log verification FAILED for {report.failed_tenants} of {report.tenants} tenants")
    raise typer.Exit(1)


@app.command()
def export(
    since: str = typer.Option(..., help="From this instant (inclusive): YYYY-MM-DD (UTC) or RFC 3339."),
    until: str = typer.Option(..., help="To this instant (exclusive): YYYY-MM-DD (UTC) or RFC 3339."),
    out: str = typer.Option(..., help="Output file (JSON Lines, written atomically), or - for stdout."),
    tenant: str = typer.Option(None, help="Only this tenant (id); default: every tenant."),
) -> None:
    """Write audit entries as JSON Lines with an OCSF API Activity mapping per line."""
    from unifocus.audit.export import export_entries, export_to_file
    from unifocus.jobs.cli_support import with_database

    start, end = parse_instant(since, "--since"), parse_instant(until, "--until")
    if end < start:
        raise typer.BadParameter("--until is before --since")
    tenant_id = _tenant(tenant)
    tenants = None if tenant_id is None else [tenant_id]

    async def go() -> int:
        async with with_database() as (db, _settings):
            if out == "-":
                return await export_entries(db, start, end, sys.stdout.buffer.write, tenants)
            return await export_to_file(db, start, end, Path(out), tenants)

    count = asyncio.run(go())
    if out != "-":
        typer.echo(f"exported {count} audit entries to {out}")
    else:
        sys.stdout.flush()
