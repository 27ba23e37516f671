"""With PROMETHEUS_MULTIPROC_DIR set, values from several worker processes are aggregated."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.serving import run_server

pytestmark = pytest.mark.alerts

WORKER = textwrap.dedent(
    """
    import sys
    from unifocus.observability import metrics as m
    n = int(sys.argv[1])
    m.AUTH_ATTEMPTS.labels(result="success").inc(n)
    m.HTTP_REQUEST_DURATION.labels(route="/api/punches", method="POST", status_class="2xx").observe(0.01 * n)
    m.DB_POOL_CONNECTIONS_MAX.set(10)
    m.AUDIT_TABLE_BYTES.set(1000 * n)
    m.update_process_metrics()
    """
)
RENDER = textwrap.dedent(
    """
    import sys
    from unifocus.observability import metrics as m
    body, content_type = m.render_metrics()
    assert content_type.startswith("text/plain"), content_type
    sys.stdout.write(body.decode())
    """
)


def _python(code: str, *args: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_counters_are_summed_across_processes(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    _python(WORKER, "3", env=env)
    _python(WORKER, "4", env=env)
    text = _python(RENDER, env=env)

    samples = {
        (s.name, tuple(sorted((k, v) for k, v in s.labels.items() if k != "pid"))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("unifocus_auth_attempts_total", (("result", "success"),))] == 7  # 3 + 4, not one process
    hist_labels = (("method", "POST"), ("route", "/api/punches"), ("status_class", "2xx"))
    assert samples[("unifocus_http_request_duration_seconds_count", hist_labels)] == 2
    assert samples[("unifocus_audit_table_bytes", ())] == 4000  # max mode
    # livesum: the workers have exited but were not marked dead, so their values still count.
    assert samples[("unifocus_db_pool_connections_max", ())] == 20
    pids = {
        s.labels.get("pid")
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "unifocus_process_resident_memory_bytes"
    }
    assert len(pids) >= 2  # liveall keeps one series per worker pid


def test_mark_process_dead_drops_live_gauges(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    code = WORKER + "\nprint(__import__('os').getpid())\n"
    pid = _python(code, "2", env=env).strip().splitlines()[-1]
    _python(
        "import sys\nfrom unifocus.observability import metrics as m\nm.mark_process_dead(int(sys.argv[1]))",
        pid,
        env=env,
    )
    text = _python(RENDER, env=env)
    assert f'pid="{pid}"' not in text
    assert 'unifocus_auth_attempts_total{result="success"} 2.0' in text  # counters survive


def _live_gauges(url: str) -> tuple[float, set[str], float]:
    """(pool connections max, pids with an RSS series, requests in progress) as scraped."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    samples = [s for family in text_string_to_metric_families(text) for s in family.samples]
    pool_max = sum(s.value for s in samples if s.name == "unifocus_db_pool_connections_max")
    rss_pids = {s.labels["pid"] for s in samples if s.name == "unifocus_process_resident_memory_bytes"}
    in_progress = sum(s.value for s in samples if s.name == "unifocus_http_requests_in_progress")
    return pool_max, rss_pids, in_progress


def _workers(server_pid: int) -> set[int]:
    return {p.pid for p in psutil.Process(server_pid).children(recursive=True) if p.status() != psutil.STATUS_ZOMBIE
            and "multiprocessing.resource_tracker" not in " ".join(p.cmdline())}


def test_a_killed_worker_leaves_no_live_gauges_behind(owner_url: str, tmp_path: Path) -> None:
    """SIGKILL (or the OOM killer) skips a worker's lifespan end, where it drops its live
    gauges; uvicorn starts another. The pool size, the RSS series and the requests in progress
    are those of the running workers again, not of every worker the pod ever had."""
    with run_server(owner_url, tmp_path / "data", {"UNIFOCUS_DB_POOL_MAX": "3"}, workers=2) as server:
        workers = _workers(server.proc.pid)
        assert len(workers) == 2, workers
        pool_max = 6.0  # 2 workers x 3
        deadline = time.monotonic() + 20
        while _live_gauges(server.url)[:2] != (pool_max, {str(p) for p in workers}) and time.monotonic() < deadline:
            time.sleep(0.2)  # each worker's first refresh
        assert _live_gauges(server.url)[:2] == (pool_max, {str(p) for p in workers})
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            now = _workers(server.proc.pid)
            gauges = _live_gauges(server.url)  # the replacement's first refresh sets its pool size
            if len(now) == 2 and victim not in now and gauges[:2] == (pool_max, {str(p) for p in now}):
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"after the kill: workers {_workers(server.proc.pid)}, gauges {_live_gauges(server.url)}")
        time.sleep(1)  # and stays so
        after_max, _, in_progress = _live_gauges(server.url)
        assert after_max == pool_max, (after_max, pool_max)
        assert in_progress == 0  # /metrics is not counted in progress
