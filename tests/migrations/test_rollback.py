"""Rolling a release back (docs/rollback.md): the previous code stays ready on a newer schema
that says it still serves it, and refuses one that does not; `unifocus migrate --to` takes the
schema down and back up.

A "newer release" is made here from the current one: the database's revision is set past
this code's head, and `unifocus_schema_compatible_from()` (migration 0014) is replaced to say
what that release's schema would say.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from tests.conftest import make_settings
from tests.faults.support import running_app
from tests.health.test_health_ready import READY_BOUND_S, assert_not_ready, timed_get
from unifocus.db.migrate import _scripts, classify, head_revision, revision_number, schema_check, upgrade
from unifocus.settings import Settings

UNIFOCUS = Path(sys.executable).parent / "unifocus"
HEAD = head_revision()
NEWER = f"{revision_number(HEAD) + 1:04d}"


def as_newer_release(url: str, compatible_from: str | None) -> None:
    """The schema of a release after this code's: its revision, and what it says it serves
    (None: a schema that does not say, as before migration 0014)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE alembic_version SET version_num = %s", (NEWER,))
        if compatible_from is None:
            conn.execute("DROP FUNCTION unifocus_schema_compatible_from()")
        else:
            conn.execute("CREATE OR REPLACE FUNCTION unifocus_schema_compatible_from() RETURNS text "
                         f"LANGUAGE sql IMMUTABLE AS $$ SELECT '{compatible_from}'::text $$")


def cli(url: str, data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UNIFOCUS_")}
    env.update(DATABASE_URL=url, UNIFOCUS_DATA_DIR=str(data_dir))
    done = subprocess.run([str(UNIFOCUS), "migrate", *args], env=env, capture_output=True, text=True, timeout=120)
    assert "Traceback" not in done.stdout + done.stderr, done.stdout + done.stderr
    return done


def version_of(url: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    assert row is not None
    return str(row[0])


def test_revisions_are_numbered_in_order() -> None:
    """`schema_check` tells a newer revision by its number: every migration is numbered one
    after the one it revises."""
    scripts = sorted(_scripts().walk_revisions(), key=lambda s: revision_number(s.revision))
    for n, script in enumerate(scripts, start=1):
        assert script.revision == f"{n:04d}", script.path
        assert script.down_revision == (f"{n - 1:04d}" if n > 1 else None), script.path


@pytest.mark.parametrize(("version", "compatible_from", "state"), [
    (HEAD, None, "head"),
    (None, None, "behind"),
    ("0001", None, "behind"),
    (NEWER, HEAD, "served"),
    (NEWER, "0001", "served"),
    (NEWER, NEWER, "not_served"),
    (NEWER, None, "not_served"),
    ("abc", None, "unknown"),
    (NEWER, "abc", "unknown"),
])
def test_where_a_schema_stands(version: str | None, compatible_from: str | None, state: str) -> None:
    assert classify(version, compatible_from, HEAD) == state
    check = schema_check(version, compatible_from, HEAD)
    assert check == "ok" if state == "head" else check.startswith("ok: " if state == "served" else "error: ")


async def test_the_previous_code_stays_ready_on_a_newer_schema_that_serves_it(
    scratch_db: str, tmp_path: Path
) -> None:
    upgrade(scratch_db, Settings(database_url=scratch_db))
    as_newer_release(scratch_db, HEAD)
    async with running_app(make_settings(scratch_db, tmp_path)) as (_, client):
        r, elapsed = await timed_get(client, "/ready")
    assert r.status_code == 200, r.text
    assert elapsed < READY_BOUND_S
    assert r.json()["checks"]["migrations"].startswith(f"ok: at {NEWER}, newer than this code ({HEAD})")


@pytest.mark.parametrize("compatible_from", [NEWER, None], ids=["needs newer code", "says nothing"])
async def test_a_newer_schema_that_does_not_serve_this_code_is_not_ready(
    scratch_db: str, tmp_path: Path, compatible_from: str | None
) -> None:
    upgrade(scratch_db, Settings(database_url=scratch_db))
    as_newer_release(scratch_db, compatible_from)
    async with running_app(make_settings(scratch_db, tmp_path)) as (_, client):
        r, elapsed = await timed_get(client, "/ready")
    assert_not_ready(r, elapsed, failing="migrations")
    assert f"at {NEWER}, newer than this code" in r.json()["checks"]["migrations"]


def test_migrate_leaves_a_served_newer_schema_alone_and_refuses_one_that_is_not(
    scratch_db: str, tmp_path: Path
) -> None:
    """A rolled-back release that migrates on start must neither fail on the newer schema
    (Alembic does not know its revision) nor touch it."""
    upgrade(scratch_db, Settings(database_url=scratch_db))
    as_newer_release(scratch_db, HEAD)
    served = cli(scratch_db, tmp_path)
    assert served.returncode == 0, served.stderr
    assert "nothing to do" in served.stdout and version_of(scratch_db) == NEWER
    as_newer_release(scratch_db, NEWER)
    refused = cli(scratch_db, tmp_path)
    assert refused.returncode == 1
    last = refused.stderr.strip().splitlines()[-1]
    assert last.startswith("unifocus: SchemaNotServed: ") and f"needs code at {NEWER} or later" in last
    assert version_of(scratch_db) == NEWER


def test_migrate_to_takes_the_schema_down_and_back_up(scratch_db: str, tmp_path: Path) -> None:
    previous = f"{revision_number(HEAD) - 1:04d}"
    up = cli(scratch_db, tmp_path)
    assert up.returncode == 0 and version_of(scratch_db) == HEAD, up.stderr
    down = cli(scratch_db, tmp_path, "--to", previous)
    assert down.returncode == 0, down.stderr
    assert down.stdout.strip() == f"migrations at {previous}" and version_of(scratch_db) == previous
    again = cli(scratch_db, tmp_path)
    assert again.returncode == 0 and version_of(scratch_db) == HEAD, again.stderr
    unknown = cli(scratch_db, tmp_path, "--to", "9999")
    assert unknown.returncode == 2 and "unknown revision" in unknown.stderr
    assert version_of(scratch_db) == HEAD
