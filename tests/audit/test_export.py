"""`unifocus audit export` and the nightly export job: JSON Lines with an OCSF mapping."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.audit.util import create_employee, rid
from tests.conftest import Api, TenantFixture, make_settings
from unifocus.audit.export import export_to_file, nightly_export
from unifocus.db.pool import Database
from unifocus.jobs.registry import build_scheduler

pytestmark = pytest.mark.audit

FIELDS = {"id", "tenantId", "userId", "userEmail", "action", "entity", "entityId", "changes", "employeeId",
          "punchId", "exceptionId", "requestId", "createdAt", "chain", "seq", "prevHash", "hash", "ocsf"}


@pytest.fixture()
async def written(api: Api, tenant_a: TenantFixture) -> dict[str, str]:
    ids = {"created": rid(), "updated": rid(), "deleted": rid()}
    r = await create_employee(api, tenant_a.manager, "Exp", request_id=ids["created"])
    emp = r.json()["id"]
    await api.req("PATCH", f"/api/employees/{emp}", tenant_a.manager, json={"lastName": "Ort"},
                  headers={"X-Request-ID": ids["updated"]})
    await api.req("DELETE", f"/api/employees/{emp}", tenant_a.manager,
                  headers={"X-Request-ID": ids["deleted"]})
    return ids


def read_lines(path: Path, tenant: TenantFixture) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return [e for e in lines if e["tenantId"] == str(tenant.id)]


async def test_export_lines_and_ocsf_mapping(db: Database, tenant_a: TenantFixture, written: dict[str, str],
                                             tmp_path: Path) -> None:
    now = datetime.now(UTC)
    out = tmp_path / "audit.jsonl"
    count = await export_to_file(db, now - timedelta(hours=1), now + timedelta(hours=1), out, [tenant_a.id])
    lines = read_lines(out, tenant_a)
    assert count == len(lines) == 3
    assert [e["action"] for e in lines] == ["created", "updated", "deleted"]  # time-ascending
    for e in lines:
        assert set(e) == FIELDS
        o = e["ocsf"]
        assert (o["class_uid"], o["category_uid"]) == (6003, 6)
        assert o["activity_id"] == {"created": 1, "updated": 3, "deleted": 4}[e["action"]]
        assert o["type_uid"] == 600300 + o["activity_id"]
        ts = datetime.fromisoformat(e["createdAt"].replace("Z", "+00:00"))
        assert o["time"] == int(ts.timestamp() * 1000)
        assert o["actor"]["user"]["uid"] == str(tenant_a.manager_id) == e["userId"]
        assert o["actor"]["user"]["email_addr"] == e["userEmail"]
        assert o["api"]["request"]["uid"] == written[e["action"]] == e["requestId"]
        assert o["metadata"]["product"]["name"] == "Unifocus" and o["metadata"]["uid"] == e["id"]
        assert o["unmapped"]["entity"] == "Employee" and o["unmapped"]["entityId"] == e["entityId"]
        assert len(e["hash"]) == 64
    assert lines[0]["changes"]["before"] is None and lines[1]["changes"]["after"]["lastName"] == "Ort"
    assert os.listdir(tmp_path) == ["audit.jsonl"]  # no temporary file left


async def test_export_window_is_half_open(db: Database, tenant_a: TenantFixture, written: dict[str, str],
                                          tmp_path: Path) -> None:
    out = tmp_path / "all.jsonl"
    now = datetime.now(UTC)
    await export_to_file(db, now - timedelta(hours=1), now + timedelta(hours=1), out, [tenant_a.id])
    first, second, _ = read_lines(out, tenant_a)
    cut = datetime.fromisoformat(second["createdAt"].replace("Z", "+00:00"))
    await export_to_file(db, now - timedelta(hours=1), cut, out, [tenant_a.id])
    assert [e["id"] for e in read_lines(out, tenant_a)] == [first["id"]]
    await export_to_file(db, cut, now + timedelta(hours=1), out, [tenant_a.id])
    assert [e["id"] for e in read_lines(out, tenant_a)][0] == second["id"]


async def test_nightly_job_writes_yesterday_once(db: Database, tenant_a: TenantFixture, owner_url: str,
                                                 written: dict[str, str], tmp_path: Path) -> None:
    job_settings = make_settings(owner_url, tmp_path, audit_export_dir=tmp_path / "exports")
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    count = await nightly_export(db, job_settings, now=tomorrow)
    path = tmp_path / "exports" / f"audit-{datetime.now(UTC).date().isoformat()}.jsonl"
    assert path.exists() and count >= 3
    assert len(read_lines(path, tenant_a)) == 3
    stamp = path.stat().st_mtime_ns
    assert await nightly_export(db, job_settings, now=tomorrow) == 0  # exists: skipped
    assert path.stat().st_mtime_ns == stamp
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_nightly_job_is_registered_only_when_configured(owner_url: str, tmp_path: Path) -> None:
    on = make_settings(owner_url, tmp_path, audit_export_dir=tmp_path, audit_export_cron="15 3 * * *")
    jobs = {j.name: j.cron for j in build_scheduler(Database("postgresql://unused/x", on), on).jobs}
    assert jobs["audit-export"] == "15 3 * * *"
    off = make_settings(owner_url, tmp_path)
    names = {j.name for j in build_scheduler(Database("postgresql://unused/x", off), off).jobs}
    assert "audit-export" not in names


async def test_cli_export(tenant_a: TenantFixture, written: dict[str, str], owner_url: str,
                          tmp_path: Path) -> None:
    out = tmp_path / "cli.jsonl"
    now = datetime.now(UTC)
    since, until = (now - timedelta(hours=1)).isoformat(), (now + timedelta(hours=1)).isoformat()
    cmd = [str(Path(sys.executable).parent / "unifocus"), "audit", "export", "--since", since,
           "--until", until, "--out", str(out), "--tenant", str(tenant_a.id)]
    env = {**os.environ, "DATABASE_URL": owner_url}
    done = await asyncio.to_thread(subprocess.run, cmd, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "exported 3 audit entries" in done.stdout
    assert len(read_lines(out, tenant_a)) == 3
    bad = cmd[:4] + ["2026-01-01T00:00:00"] + cmd[5:]
    refused = await asyncio.to_thread(subprocess.run, bad, env=env, capture_output=True, text=True,
                                      timeout=60)
    assert refused.returncode == 2
