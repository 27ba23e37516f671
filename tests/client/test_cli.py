"""`unifocus smoke` and `unifocus gate verify` against a live server: pass on a healthy one;
the gate fails (idempotency row) on one started with replays switched off."""

from __future__ import annotations

import subprocess

import pytest

from tests.client.conftest import Server, run_server
from tests.conftest import TenantFixture
from tests.serving import UNIFOCUS

pytestmark = pytest.mark.slow


def unifocus(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([UNIFOCUS, *args], capture_output=True, text=True, timeout=120, env=env)


def row_of(output: str, name: str) -> str:
    return next(line for line in output.splitlines() if line.startswith(name + " "))


def test_smoke_passes(live: Server, ta: TenantFixture) -> None:
    done = unifocus("smoke", live.url, "--token", ta.admin)
    assert done.returncode == 0, done.stdout + done.stderr
    for step in ("health", "punch in (idempotent retry)", "resolve exception", "audit entries", "cleanup"):
        assert " PASS " in row_of(done.stdout, step), done.stdout
    assert "PASSED: 12 passed, 0 failed" in done.stdout


def test_smoke_fails_with_a_bad_token(live: Server) -> None:
    done = unifocus("smoke", live.url, "--token", "not-a-token")
    assert done.returncode == 1
    assert " FAIL " in row_of(done.stdout, "me") and "Unauthorized" in done.stdout
    assert " PASS " in row_of(done.stdout, "health")


@pytest.mark.idempotency
@pytest.mark.tenants
@pytest.mark.audit
@pytest.mark.health
@pytest.mark.alerts
def test_gate_verify_passes(live: Server, ta: TenantFixture, tb: TenantFixture) -> None:
    done = unifocus("gate", "verify", live.url, "--token-a", ta.admin, "--token-b", tb.admin)
    assert done.returncode == 0, done.stdout + done.stderr
    for gate in ("readiness", "idempotency", "tenancy", "audit", "alerts/monitoring"):
        assert " PASS " in row_of(done.stdout, gate), done.stdout
    assert "FAILED" not in done.stdout


@pytest.mark.idempotency
def test_gate_verify_fails_when_replays_are_off(owner_url: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    with run_server(owner_url, tmp_path_factory.mktemp("broken"), UNIFOCUS_IDEMPOTENCY_REPLAY_ENABLED="false") as srv:
        # --create: the gate makes its own two tenants through DATABASE_URL.
        done = unifocus("gate", "verify", srv.url, "--create", env=srv.env)
    assert done.returncode != 0, done.stdout + done.stderr
    assert " FAIL " in row_of(done.stdout, "idempotency"), done.stdout
    assert " PASS " in row_of(done.stdout, "readiness"), done.stdout
    assert " PASS " in row_of(done.stdout, "tenancy"), done.stdout
