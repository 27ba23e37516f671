"""Apply or roll back the Alembic migrations (as the owner role), and tell whether a schema
serves this code (`schema_check`: the code's head, or a newer schema that says it still
serves it; migration 0014 and docs/rollback.md)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from unifocus.db.urls import sqlalchemy_url
from unifocus.settings import Settings

MIGRATIONS = Path(__file__).parent / "migrations"
# Answers the oldest revision whose code works on the schema (migration 0014).
COMPATIBLE_FROM = "SELECT unifocus_schema_compatible_from()"


class UnknownRevision(ValueError):
    """A `--to` revision this code does not know."""


class SchemaNotServed(Exception):
    """The database's schema is newer than this code and does not serve it."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def alembic_config(owner_url: str, settings: Settings) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["sqlalchemy_url"] = sqlalchemy_url(owner_url)
    cfg.attributes["app_role"] = settings.app_db_role
    cfg.attributes["app_password"] = settings.app_db_password
    return cfg


def _scripts() -> ScriptDirectory:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(cfg)


def head_revision() -> str:
    head = _scripts().get_current_head()
    assert head is not None
    return head


def revision_number(revision: str) -> int:
    """Revisions are numbered in order (`0001`, `0002`, ...; a test holds every migration to
    it), so a revision this code does not know is newer when its number is higher."""
    if not (revision.isascii() and revision.isdigit()):
        raise ValueError(f"revision {revision!r} is not numbered")
    return int(revision)


def classify(version: str | None, compatible_from: str | None, head: str) -> str:
    """Where the database's schema stands for this code: `head`, `behind` (never migrated, or
    migrations to run), `served` (newer, and it serves this code), `not_served` (newer, and it
    needs newer code) or `unknown` (a revision that is not numbered)."""
    if version is None:
        return "behind"
    if version == head:
        return "head"
    try:
        newer = revision_number(version) > revision_number(head)
        serves = compatible_from is not None and revision_number(compatible_from) <= revision_number(head)
    except ValueError:
        return "unknown"
    if not newer:
        return "behind"
    return "served" if serves else "not_served"


def newer(version: str | None, head: str) -> bool:
    """Whether the database is at a revision after this code's head: only such a schema is
    asked what code it serves (on an older one the function of 0014 may not exist)."""
    return classify(version, None, head) == "not_served"


def _standing(state: str, version: str | None, compatible_from: str | None, head: str) -> str:
    """Where the schema stands, in words (after `ok: ` or `error: `)."""
    if state == "served":
        return f"at {version}, newer than this code ({head}) and serving code from {compatible_from}"
    if state == "not_served":
        needs = f"code at {compatible_from} or later" if compatible_from else "newer code"
        return f"at {version}, newer than this code ({head}), and it needs {needs}"
    if version is None:
        return f"no migration applied, expected {head}"
    return f"at {version}, expected {head}" + (" (run the migrations)" if state == "behind" else "")


def schema_check(version: str | None, compatible_from: str | None, head: str) -> str:
    """`ok`, `ok: ...` (a newer schema that serves this code) or `error: ...`, as `/ready`
    and `unifocus migrate` report it."""
    state = classify(version, compatible_from, head)
    if state == "head":
        return "ok"
    return ("ok: " if state == "served" else "error: ") + _standing(state, version, compatible_from, head)


def passing(check: str) -> bool:
    return check == "ok" or check.startswith("ok:")


def database_state(owner_url: str, head: str) -> tuple[str | None, str | None]:
    """The database's revision (None: never migrated) and, when it is newer than this code's
    head, what its schema says it serves (None: it does not say)."""
    import psycopg  # here: the API workers import this module for /ready, and never call this

    with psycopg.connect(owner_url, autocommit=True) as conn:
        if conn.execute("SELECT to_regclass('alembic_version')").fetchone() == (None,):
            return None, None
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        version = row[0] if row else None
        if not newer(version, head):
            return version, None
        if conn.execute("SELECT to_regprocedure('unifocus_schema_compatible_from()')").fetchone() == (None,):
            return version, None
        answer = conn.execute(COMPATIBLE_FROM).fetchone()
        return version, answer[0] if answer else None


def upgrade(owner_url: str, settings: Settings, revision: str = "head") -> None:
    command.upgrade(alembic_config(owner_url, settings), revision)


def downgrade(owner_url: str, settings: Settings, revision: str = "base") -> None:
    command.downgrade(alembic_config(owner_url, settings), revision)


def migrate(owner_url: str, settings: Settings, target: str | None = None) -> str:
    """Bring the schema to `target` (default: this code's head) and say where it is.

    With no target, a newer schema that serves this code is left as it is (a rolled-back
    release starting with `UNIFOCUS_MIGRATE_ON_START`); one that does not serve it is
    `SchemaNotServed`. A target below the database's revision downgrades to it (the way back
    from a release, run by the code that knows the newer migrations), one above upgrades."""
    head = head_revision()
    version, compatible_from = database_state(owner_url, head)
    if target is None:
        state = classify(version, compatible_from, head)
        if state == "served":
            return f"database {_standing(state, version, compatible_from, head)}: nothing to do"
        if state == "not_served":
            raise SchemaNotServed(f"database {_standing(state, version, compatible_from, head)}")
        upgrade(owner_url, settings, "head")
        return f"migrations at head ({head})"
    if target not in {script.revision for script in _scripts().walk_revisions()}:
        raise UnknownRevision(f"unknown revision {target!r} (this code knows up to {head})")
    if version is not None and revision_number(target) < revision_number(version):
        downgrade(owner_url, settings, target)
    else:
        upgrade(owner_url, settings, target)
    return f"migrations at {target}"
