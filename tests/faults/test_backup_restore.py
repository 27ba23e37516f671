"""Disaster-recovery drill: data written through the API, `unifocus backup`, the database
dropped, `unifocus restore`: every table's row count is equal, the audit chain verifies, and
an Idempotency-Key stored before the backup still replays after the restore."""

from __future__ import annotations

import os
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from tests.conftest import JWT_SECRET, create_database, make_settings, make_tenant
from tests.faults.support import UNIFOCUS, running_app
from unifocus.backup.service import database_name
from unifocus.db.migrate import upgrade
from unifocus.db.urls import with_database
from unifocus.settings import Settings

pytestmark = [pytest.mark.slow, pytest.mark.idempotency, pytest.mark.audit]


def cli(url: str, data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": url, "UNIFOCUS_JWT_SECRET": JWT_SECRET, "UNIFOCUS_DATA_DIR": str(data_dir)}
    return subprocess.run([str(UNIFOCUS), *args], env=env, capture_output=True, text=True, timeout=60)


def drop(server: str, url: str) -> None:
    with psycopg.connect(with_database(server, "postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database_name(url))))


def snapshot(url: str) -> dict[str, Any]:
    """Row count of every table, and the audit chain (seq, hash) verbatim."""
    with psycopg.connect(url) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")]
        counts = {t: conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))).fetchone()[0]  # type: ignore[index]
                  for t in tables}
        chain = conn.execute("SELECT tenant_id, chain, seq, hash, prev_hash FROM audit_log ORDER BY 1, 2, 3").fetchall()
    return {"counts": counts, "chain": chain}


async def test_disaster_recovery_drill(server_url: str, settings: Settings, tmp_path: Path) -> None:
    db = create_database(server_url)
    try:
        upgrade(db, Settings(database_url=db))
        t = make_tenant(db, settings)
        other = make_tenant(db, settings, "Europe/Paris")
        auth = {"Authorization": f"Bearer {t.manager}"}
        key = f"dr-{uuid.uuid4().hex}"
        async with running_app(make_settings(db, tmp_path)) as (_app, client):
            r = await client.post("/api/employees", headers={**auth, "Idempotency-Key": f"dr-e-{uuid.uuid4().hex}"},
                                  json={"firstName": "Dora", "lastName": "Recovery", "externalId": "DR-1"})
            assert r.status_code == 201, r.text
            base = datetime.now(UTC) - timedelta(hours=6)
            for i, kind in enumerate(["clock_in", "break_start", "break_end", "clock_out"]):
                k = f"dr-p{i}-{uuid.uuid4().hex}"
                r = await client.post("/api/punches", headers={**auth, "Idempotency-Key": k},
                                      json={"employeeId": str(t.employee_id), "type": kind,
                                            "timestamp": (base + timedelta(minutes=30 * i)).isoformat()})
                assert r.status_code == 201, r.text
            punch_body = {"employeeId": str(t.employee_id), "type": "clock_in",
                          "timestamp": (base + timedelta(hours=3)).isoformat()}
            original = await client.post("/api/punches", headers={**auth, "Idempotency-Key": key}, json=punch_body)
            assert original.status_code == 201, original.text
            r = await client.post("/api/employees", headers={"Authorization": f"Bearer {other.admin}",
                                                             "Idempotency-Key": "dr-other"},
                                  json={"firstName": "Otto", "lastName": "Other"})
            assert r.status_code == 201, r.text
        before = snapshot(db)
        assert before["counts"]["audit_log"] >= 6 and before["counts"]["idempotency_records"] >= 6

        dump = tmp_path / "backups" / "unifocus.dump"
        out = cli(db, tmp_path, "backup", str(dump))
        assert out.returncode == 0, out.stderr
        assert dump.stat().st_size > 0

        drop(server_url, db)  # the disaster
        out = cli(db, tmp_path, "restore", str(dump))
        assert out.returncode == 0, out.stderr + out.stdout
        assert snapshot(db) == before  # every row, the audit chain verbatim

        out = cli(db, tmp_path, "audit", "verify")
        assert out.returncode == 0, out.stdout + out.stderr
        assert "intact" in out.stdout

        # A database holding tables is refused without --force, and replaced with it.
        out = cli(db, tmp_path, "restore", str(dump))
        assert out.returncode == 1 and "--force" in out.stderr, out.stderr
        out = cli(db, tmp_path, "restore", "--force", str(dump))
        assert out.returncode == 0, out.stderr
        assert snapshot(db) == before

        async with running_app(make_settings(db, tmp_path)) as (_app, client):
            replay = await client.post("/api/punches", headers={**auth, "Idempotency-Key": key}, json=punch_body)
            assert replay.status_code == 201
            assert replay.headers.get("idempotent-replayed") == "true"
            assert replay.content == original.content
            assert replay.headers["location"] == original.headers["location"]
            # The service writes on after a restore, and the chain continues intact.
            r = await client.post("/api/punches", headers={**auth, "Idempotency-Key": f"dr-after-{uuid.uuid4().hex}"},
                                  json={**punch_body, "type": "clock_out",
                                        "timestamp": (base + timedelta(hours=4)).isoformat()})
            assert r.status_code == 201, r.text
        after = snapshot(db)
        assert after["counts"]["punches"] == before["counts"]["punches"] + 1
        out = cli(db, tmp_path, "audit", "verify")
        assert out.returncode == 0, out.stdout + out.stderr
    finally:
        drop(server_url, db)


def test_restore_refuses_a_missing_file(tmp_path: Path, owner_url: str) -> None:
    out = cli(owner_url, tmp_path, "restore", str(tmp_path / "nope.dump"))
    assert out.returncode == 1 and "no such backup file" in out.stderr
