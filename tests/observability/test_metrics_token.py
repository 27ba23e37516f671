"""`UNIFOCUS_METRICS_TOKEN`: when set, GET /metrics answers only `Authorization: Bearer <token>`
(401 problem+json otherwise: no token, a wrong, longer or shorter one, or the token without the
Bearer scheme); unset, it is open."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.conftest import make_settings
from tests.faults.support import running_app

pytestmark = pytest.mark.alerts

SCRAPE_TOKEN = "scrape-token-of-the-prometheus-job"


async def _get_metrics(owner_url: str, data_dir: Path, token: str | None, headers: dict[str, str]) -> httpx.Response:
    async with running_app(make_settings(owner_url, data_dir, metrics_token=token)) as (_, client):
        return await client.get("/metrics", headers=headers)


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer not-the-token"},
    {"Authorization": f"Bearer {SCRAPE_TOKEN}-and-more"},
    {"Authorization": f"Bearer {SCRAPE_TOKEN[:-1]}"},
    {"Authorization": SCRAPE_TOKEN},
    {"Authorization": f"Basic {SCRAPE_TOKEN}"},
], ids=["none", "wrong", "longer", "a prefix", "without a scheme", "another scheme"])
async def test_a_scrape_without_the_token_is_401(owner_url: str, tmp_path: Path, headers: dict[str, str]) -> None:
    r = await _get_metrics(owner_url, tmp_path, SCRAPE_TOKEN, headers)
    assert r.status_code == 401, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "unifocus_" not in r.text  # no metric leaks with the refusal


async def test_the_tokens_bearer_gets_the_metrics(owner_url: str, tmp_path: Path) -> None:
    r = await _get_metrics(owner_url, tmp_path, SCRAPE_TOKEN, {"Authorization": f"Bearer {SCRAPE_TOKEN}"})
    assert r.status_code == 200, r.text
    assert "# TYPE unifocus_" in r.text


async def test_without_a_configured_token_metrics_are_open(owner_url: str, tmp_path: Path) -> None:
    r = await _get_metrics(owner_url, tmp_path, None, {})
    assert r.status_code == 200 and "# TYPE unifocus_" in r.text
