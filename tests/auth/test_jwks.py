"""OIDC mode: tokens signed by an issuer's keys, fetched from its JWKS URL (served here by a
tiny HTTP server on 127.0.0.1), with iss, aud, exp and nbf checked; the service refuses to
start in this mode without an issuer and an audience; and an issuer that cannot be reached is
a dependency outage (503 with Retry-After), not a bad token."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from tests.auth.tokens import DROP, claims_for, hs256, unsigned
from tests.conftest import TenantFixture, free_port, make_settings, make_tenant, start_app
from tests.faults.support import UNIFOCUS, running_app
from unifocus.app import create_app
from unifocus.auth.tokens import KEYS_RETRY_SECONDS
from unifocus.settings import ConfigurationError, Settings

pytestmark = [pytest.mark.tenants, pytest.mark.filterwarnings("ignore:The HMAC key")]

ISSUER = "https://issuer.example.test/pool-1"
AUDIENCE = "unifocus-api"
RSA_KID, EC_KID = "rsa-1", "ec-1"


class Keys:
    def __init__(self) -> None:
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.other_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())

    def jwks(self) -> bytes:
        rsa_jwk = json.loads(RSAAlgorithm.to_jwk(self.rsa.public_key())) | {"kid": RSA_KID, "alg": "RS256"}
        ec_jwk = json.loads(ECAlgorithm.to_jwk(self.ec.public_key())) | {"kid": EC_KID, "alg": "ES256"}
        return json.dumps({"keys": [rsa_jwk | {"use": "sig"}, ec_jwk | {"use": "sig"}]}).encode()

    def public_pem(self) -> str:
        return self.rsa.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys()


@pytest.fixture(scope="module")
def jwks_url(keys: Keys) -> Iterator[str]:
    body = keys.jwks()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    server.shutdown()
    server.server_close()


async def oidc_app(owner_url: str, data_dir: Path, jwks_url: str, **extra: Any) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(owner_url, data_dir, jwks_url=jwks_url, jwt_issuer=ISSUER, jwt_audience=AUDIENCE,
                             **extra)
    _, client, lifespan = await start_app(settings)
    yield client
    await client.aclose()
    await lifespan.__aexit__(None, None, None)  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
async def client(owner_url: str, tmp_path_factory: pytest.TempPathFactory, jwks_url: str
                 ) -> AsyncIterator[httpx.AsyncClient]:
    async for c in oidc_app(owner_url, tmp_path_factory.mktemp("oidc"), jwks_url):
        yield c


@pytest.fixture(scope="module")
async def cognito_client(owner_url: str, tmp_path_factory: pytest.TempPathFactory, jwks_url: str
                         ) -> AsyncIterator[httpx.AsyncClient]:
    async for c in oidc_app(owner_url, tmp_path_factory.mktemp("cognito"), jwks_url,
                            tenant_claim="custom:tenant_id"):
        yield c


@pytest.fixture()
def tenant(owner_url: str, settings: Any) -> TenantFixture:
    return make_tenant(owner_url, settings)


def oidc_claims(t: TenantFixture, tenant_claim: str = "tenant_id", **over: Any) -> dict:
    return claims_for(t, t.admin_id, tenant_claim=tenant_claim, **({"iss": ISSUER, "aud": AUDIENCE} | over))


def rs256(claims: dict, key: Any, kid: str = RSA_KID) -> str:
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


async def me(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get("/api/me", headers={"Authorization": f"Bearer {token}"})


async def test_a_valid_rs256_token_is_accepted(client: httpx.AsyncClient, keys: Keys, tenant: TenantFixture) -> None:
    r = await me(client, rs256(oidc_claims(tenant), keys.rsa))
    assert r.status_code == 200, r.text
    assert r.json()["userId"] == str(tenant.admin_id) and r.json()["role"] == "admin"


async def test_a_valid_es256_token_is_accepted(client: httpx.AsyncClient, keys: Keys, tenant: TenantFixture) -> None:
    token = jwt.encode(oidc_claims(tenant), keys.ec, algorithm="ES256", headers={"kid": EC_KID})
    r = await me(client, token)
    assert r.status_code == 200, r.text


REFUSED = [
    ("wrong audience", lambda k, t: rs256(oidc_claims(t, aud="someone-else"), k.rsa)),
    ("no audience", lambda k, t: rs256(oidc_claims(t, aud=DROP), k.rsa)),
    ("wrong issuer", lambda k, t: rs256(oidc_claims(t, iss="https://evil.example.test/"), k.rsa)),
    ("no issuer", lambda k, t: rs256(oidc_claims(t, iss=DROP), k.rsa)),
    ("unknown kid", lambda k, t: rs256(oidc_claims(t), k.rsa, kid="not-in-the-jwks")),
    ("signed by another RSA key", lambda k, t: rs256(oidc_claims(t), k.other_rsa)),
    ("another key claiming the EC kid", lambda k, t: rs256(oidc_claims(t), k.other_rsa, kid=EC_KID)),
    ("HS256 with the shared secret", lambda k, t: hs256(oidc_claims(t))),
    ("HS256 keyed with the public key", lambda k, t: _hs256_with_public_key(k, t)),
    ("alg none", lambda k, t: unsigned(oidc_claims(t))),
    ("expired", lambda k, t: rs256(oidc_claims(t, exp=int(time.time()) - 120), k.rsa)),
    ("not yet valid", lambda k, t: rs256(oidc_claims(t, nbf=int(time.time()) + 120), k.rsa)),
    ("no tenant claim", lambda k, t: rs256(oidc_claims(t, tenant_id=DROP), k.rsa)),
    ("exp a numeric string", lambda k, t: rs256(oidc_claims(t, exp=str(int(time.time()) + 300)), k.rsa)),
    ("nbf a numeric string", lambda k, t: rs256(oidc_claims(t, nbf=str(int(time.time()) - 60)), k.rsa)),
]


def _hs256_with_public_key(k: Keys, t: TenantFixture) -> str:
    """The classic key-confusion attack: an HMAC keyed with the issuer's public key."""
    import base64
    import hashlib
    import hmac

    header = {"alg": "HS256", "typ": "JWT", "kid": RSA_KID}

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(oidc_claims(t)).encode())}"
    signature = hmac.new(k.public_pem().encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


@pytest.mark.parametrize("case, make", REFUSED, ids=[c for c, _ in REFUSED])
async def test_tokens_the_issuer_did_not_sign_for_us_are_401(
    client: httpx.AsyncClient, keys: Keys, tenant: TenantFixture, case: str, make: Any
) -> None:
    r = await me(client, make(keys, tenant))
    assert r.status_code == 401, r.text
    assert r.headers["content-type"].startswith("application/problem+json")


async def test_a_custom_tenant_claim_name_is_read(
    cognito_client: httpx.AsyncClient, keys: Keys, tenant: TenantFixture
) -> None:
    r = await me(cognito_client, rs256(oidc_claims(tenant, tenant_claim="custom:tenant_id"), keys.rsa))
    assert r.status_code == 200, r.text
    assert r.json()["tenantId"] == str(tenant.id)
    # With the custom name configured, the default claim name alone is not enough.
    r = await me(cognito_client, rs256(oidc_claims(tenant), keys.rsa))
    assert r.status_code == 401, r.text


# --- configuration: OIDC mode needs an issuer and an audience -------------------------------

BOTH_NAMED = ("UNIFOCUS_JWT_ISSUER", "UNIFOCUS_JWT_AUDIENCE")


def test_serve_refuses_to_start_with_a_jwks_url_and_no_issuer_or_audience(tmp_path: Path) -> None:
    """What an operator sees: `unifocus serve` stops at once, naming the two variables.
    Without the check it would go on to migrate the (unreachable) database and fail there."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("UNIFOCUS_")}
    env |= {"UNIFOCUS_JWKS_URL": "https://issuer.example.test/.well-known/jwks.json",
            "DATABASE_URL": f"postgresql://nobody@127.0.0.1:{free_port()}/nowhere",
            "UNIFOCUS_DATA_DIR": str(tmp_path), "UNIFOCUS_PORT": str(free_port())}
    proc = subprocess.run([str(UNIFOCUS), "serve"], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0, proc.stdout
    # serve's fatal error is a JSON log line on stdout (README, "Logs"); a renderer may wrap
    said = " ".join((proc.stdout + proc.stderr).split())
    assert "UNIFOCUS_JWKS_URL is set (OIDC mode)" in said, said
    assert "Missing: UNIFOCUS_JWT_ISSUER, UNIFOCUS_JWT_AUDIENCE." in said, said


@pytest.mark.parametrize(
    "given, missing",
    [
        ({"UNIFOCUS_JWT_ISSUER": ISSUER}, "UNIFOCUS_JWT_AUDIENCE"),
        ({"UNIFOCUS_JWT_AUDIENCE": AUDIENCE}, "UNIFOCUS_JWT_ISSUER"),
        ({"UNIFOCUS_JWT_ISSUER": ISSUER, "UNIFOCUS_JWT_AUDIENCE": ""}, "UNIFOCUS_JWT_AUDIENCE"),
    ],
    ids=["issuer only", "audience only", "empty audience"],
)
def test_settings_from_the_environment_refuse_oidc_with_one_of_the_two(
    monkeypatch: pytest.MonkeyPatch, given: dict[str, str], missing: str
) -> None:
    for name in BOTH_NAMED:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("UNIFOCUS_JWKS_URL", "https://issuer.example.test/.well-known/jwks.json")
    for name, value in given.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as refused:
        Settings()
    message = str(refused.value)
    assert all(name in message for name in ("UNIFOCUS_JWKS_URL", *BOTH_NAMED)), message
    assert message.endswith(f"Missing: {missing}."), message


def test_settings_accept_oidc_with_both_and_hs256_with_neither(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check refuses only the incomplete OIDC setup: HS256 keeps `iss`/`aud` optional."""
    for name in ("UNIFOCUS_JWKS_URL", *BOTH_NAMED):
        monkeypatch.delenv(name, raising=False)
    assert Settings().jwks_url is None
    monkeypatch.setenv("UNIFOCUS_JWKS_URL", "https://issuer.example.test/.well-known/jwks.json")
    monkeypatch.setenv("UNIFOCUS_JWT_ISSUER", ISSUER)
    monkeypatch.setenv("UNIFOCUS_JWT_AUDIENCE", AUDIENCE)
    assert Settings().jwt_audience == AUDIENCE


def test_an_app_built_from_unvalidated_settings_refuses_oidc_without_an_audience(settings: Settings) -> None:
    """model_copy(update=...) (the demo uses it) skips validation: the verifier checks again,
    so no code path builds an app that would accept a token for another audience."""
    broken = settings.model_copy(update={"jwks_url": "https://issuer.example.test/jwks", "jwt_issuer": ISSUER})
    assert broken.jwt_audience is None
    with pytest.raises(ConfigurationError, match="Missing: UNIFOCUS_JWT_AUDIENCE"):
        create_app(broken)


# --- the issuer's JWKS unreachable: 503 with Retry-After, not 401 ---------------------------

class JwksServer:
    """The issuer's JWKS endpoint, which the test starts and stops (an outage), on a port
    chosen up front so it can come back where the service looks for it."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.port = free_port()
        self.fetches = 0
        self.server: HTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/.well-known/jwks.json"

    def start(self) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                outer.fetches += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


class SilentJwks:
    """An issuer that accepts connections and never answers, counting the connections."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/.well-known/jwks.json"
        self.accepted: list[socket.socket] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.accepted.append(conn)

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(5)
        for conn in self.accepted:
            conn.close()
        self.sock.close()


def outage_settings(owner_url: str, data_dir: Path, jwks_url: str, **extra: Any) -> Settings:
    return make_settings(owner_url, data_dir, jwks_url=jwks_url, jwt_issuer=ISSUER, jwt_audience=AUDIENCE, **extra)


AUTH_SAMPLE = re.compile(r'^unifocus_auth_attempts_total\{result="([a-z_]+)"\} ([0-9.e+]+)$', re.M)


async def auth_attempts(client: httpx.AsyncClient) -> dict[str, float]:
    """unifocus_auth_attempts_total by result, as Prometheus scrapes it."""
    r = await client.get("/metrics")
    assert r.status_code == 200, r.text
    return {result: float(value) for result, value in AUTH_SAMPLE.findall(r.text)}


def assert_unavailable(r: httpx.Response) -> int:
    """A 503 problem saying when to retry, without the 401's invitation to re-authenticate."""
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["status"] == 503 and r.json()["type"].endswith("/service-unavailable")
    assert "www-authenticate" not in r.headers
    retry = int(r.headers["retry-after"])
    assert retry >= 1
    return retry


@pytest.mark.parametrize("rate_limited", [
    False,
    True,
], ids=["rate limits off", "rate limits on"])
async def test_an_unreachable_jwks_is_503_with_retry_after_and_no_auth_failure(
    owner_url: str, tmp_path: Path, keys: Keys, tenant: TenantFixture, rate_limited: bool
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}/.well-known/jwks.json"  # nothing listens there
    settings = outage_settings(owner_url, tmp_path, nowhere, rate_limit_enabled=rate_limited)
    async with running_app(settings, raise_app_exceptions=False) as (_, client):
        before = await auth_attempts(client)
        r = await me(client, rs256(oidc_claims(tenant), keys.rsa))
        assert_unavailable(r)
        # The caller's token may be fine: an outage must not look like a spike of bad tokens
        # (the AuthFailureSpike alert and the auth SLO read this counter).
        assert await auth_attempts(client) == before


async def test_a_jwks_that_never_answers_is_bounded_and_not_asked_again_at_once(
    owner_url: str, tmp_path: Path, keys: Keys, tenant: TenantFixture
) -> None:
    hole = SilentJwks()
    try:
        settings = outage_settings(owner_url, tmp_path, hole.url, jwks_timeout_seconds=0.5)
        async with running_app(settings, raise_app_exceptions=False) as (_, client):
            started = time.perf_counter()
            assert_unavailable(await me(client, rs256(oidc_claims(tenant), keys.rsa)))
            assert time.perf_counter() - started < 1.5, "the JWKS fetch was not bounded by its timeout"
            # A second request inside Retry-After answers from the remembered failure instead
            # of waiting out another timeout (and holding a thread for it).
            assert_unavailable(await me(client, rs256(oidc_claims(tenant, jti="second"), keys.rsa)))
            assert len(hole.accepted) == 1, len(hole.accepted)
    finally:
        hole.close()


async def test_tokens_verify_again_once_the_jwks_is_back_after_retry_after(
    owner_url: str, tmp_path: Path, keys: Keys, tenant: TenantFixture
) -> None:
    issuer = JwksServer(keys.jwks())
    async with running_app(outage_settings(owner_url, tmp_path, issuer.url)) as (_, client):
        token = rs256(oidc_claims(tenant), keys.rsa)
        retry = assert_unavailable(await me(client, token))
        issuer.start()
        try:
            await asyncio.sleep(retry)  # as a well-behaved client does: no restart needed
            r = await me(client, token)
            assert r.status_code == 200, r.text
            assert issuer.fetches == 1
        finally:
            issuer.stop()


async def test_keys_already_fetched_keep_verifying_while_the_jwks_is_down(
    owner_url: str, tmp_path: Path, keys: Keys, tenant: TenantFixture
) -> None:
    issuer = JwksServer(keys.jwks())
    issuer.start()
    try:
        async with running_app(outage_settings(owner_url, tmp_path, issuer.url)) as (_, client):
            assert (await me(client, rs256(oidc_claims(tenant), keys.rsa))).status_code == 200
            issuer.stop()
            # Another token (not the verified-token cache) signed with the same key.
            r = await me(client, rs256(oidc_claims(tenant, jti="after-the-outage"), keys.rsa))
            assert r.status_code == 200, r.text
    finally:
        issuer.stop()


async def test_a_jwks_answer_that_is_no_key_set_is_503(
    owner_url: str, tmp_path: Path, keys: Keys, tenant: TenantFixture
) -> None:
    """A proxy's error page, truncated JSON, or a key set with no signing key where the keys
    should be: the issuer is broken, the caller's token may be fine."""
    enc_only = json.loads(keys.jwks())
    for k in enc_only["keys"]:
        k["use"] = "enc"
    for body in (b"<html><body>502 Bad Gateway</body></html>", b'{"keys": [', b"[1, 2]", b"{}", b'{"keys": []}',
                 json.dumps(enc_only).encode()):
        issuer = JwksServer(body)
        issuer.start()
        try:
            async with running_app(outage_settings(owner_url, tmp_path, issuer.url),
                                   raise_app_exceptions=False) as (_, client):
                assert_unavailable(await me(client, rs256(oidc_claims(tenant), keys.rsa)))
        finally:
            issuer.stop()


async def test_a_key_the_issuer_removes_stops_verifying_new_tokens(
    owner_url: str, tmp_path: Path, keys: Keys, tenant: TenantFixture
) -> None:
    """Key rotation or revocation: once the key set is fetched again (UNIFOCUS_JWKS_CACHE_SECONDS),
    a token signed with a key no longer in it is 401, while the remaining key still verifies."""
    issuer = JwksServer(keys.jwks())
    issuer.start()
    try:
        settings = outage_settings(owner_url, tmp_path, issuer.url, jwks_cache_seconds=0.5)
        async with running_app(settings) as (_, client):
            assert (await me(client, rs256(oidc_claims(tenant), keys.rsa))).status_code == 200
            rotated = json.loads(keys.jwks())
            rotated["keys"] = [k for k in rotated["keys"] if k["kid"] != RSA_KID]
            issuer.body = json.dumps(rotated).encode()
            await asyncio.sleep(0.7)
            r = await me(client, rs256(oidc_claims(tenant, jti="after-rotation"), keys.rsa))
            assert r.status_code == 401, r.text
            es = jwt.encode(oidc_claims(tenant, jti="ec"), keys.ec, algorithm="ES256", headers={"kid": EC_KID})
            assert (await me(client, es)).status_code == 200
    finally:
        issuer.stop()


@pytest.mark.parametrize("rate_limited", [False, True], ids=["rate limits off", "rate limits on"])
async def test_a_slow_jwks_fetch_does_not_stall_the_workers_other_requests(
    owner_url: str, tmp_path: Path, keys: Keys, tenant: TenantFixture, rate_limited: bool
) -> None:
    """While one request waits on the issuer (a fetch that never answers, bounded at 1 s), the
    worker keeps answering: /health at once, and a caller whose token is already verified."""
    issuer = JwksServer(keys.jwks())
    issuer.start()
    hole = SilentJwks()
    try:
        settings = outage_settings(owner_url, tmp_path, issuer.url, jwks_timeout_seconds=1.0,
                                   jwks_cache_seconds=0.2, rate_limit_enabled=rate_limited)
        async with running_app(settings, raise_app_exceptions=False) as (app, client):
            known = rs256(oidc_claims(tenant, jti="known"), keys.rsa)
            assert (await me(client, known)).status_code == 200
            app.state.verifier.jwks.uri = hole.url  # the issuer now hangs
            await asyncio.sleep(0.3)  # the key set is stale: the next new token fetches
            waiting = asyncio.create_task(me(client, rs256(oidc_claims(tenant, jti="new"), keys.rsa)))
            await asyncio.sleep(0.2)
            assert not waiting.done()
            started = time.perf_counter()
            assert (await client.get("/health")).status_code == 200
            assert (await me(client, known)).status_code == 200
            assert time.perf_counter() - started < 0.3, "the event loop waited on the JWKS fetch"
            assert_unavailable(await waiting)
    finally:
        hole.close()
        issuer.stop()


async def test_an_expired_token_is_401_even_while_the_issuer_is_down(
    owner_url: str, tmp_path: Path, keys: Keys, tenant: TenantFixture
) -> None:
    """An expired token needs a new token, not a retry: 401 `expired`, said without asking the
    (unreachable) issuer, while a live token in the same outage gets the 503."""
    hole = SilentJwks()
    try:
        settings = outage_settings(owner_url, tmp_path, hole.url, jwks_timeout_seconds=0.5)
        async with running_app(settings, raise_app_exceptions=False) as (_, client):
            expired = rs256(oidc_claims(tenant, exp=int(time.time()) - 3600), keys.rsa)
            r = await me(client, expired)
            assert r.status_code == 401 and "expired" in r.json()["detail"], r.text
            assert hole.accepted == []  # no fetch was made for it
            assert_unavailable(await me(client, rs256(oidc_claims(tenant), keys.rsa)))
    finally:
        hole.close()


@pytest.mark.parametrize("claim", ["exp", "nbf"])
async def test_a_date_claim_that_is_no_number_is_401_even_while_the_issuer_is_down(
    owner_url: str, tmp_path: Path, keys: Keys, tenant: TenantFixture, claim: str
) -> None:
    """Like an expired token: no signature can make it valid, so it is refused without asking
    the (unreachable) issuer, not answered 503."""
    hole = SilentJwks()
    try:
        settings = outage_settings(owner_url, tmp_path, hole.url, jwks_timeout_seconds=0.5)
        async with running_app(settings, raise_app_exceptions=False) as (_, client):
            dated = rs256(oidc_claims(tenant, **{claim: str(int(time.time()) - 3600)}), keys.rsa)
            r = await me(client, dated)
            assert r.status_code == 401 and f"'{claim}'" in r.json()["detail"], r.text
            assert hole.accepted == []  # no fetch was made for it
    finally:
        hole.close()


async def test_an_oversized_token_is_401_without_asking_the_issuer(
    owner_url: str, tmp_path: Path, keys: Keys, tenant: TenantFixture
) -> None:
    """A token over MAX_TOKEN_CHARS is refused by its length: no decoding, and no fetch of
    the issuer's key set for the `kid` it names."""
    hole = SilentJwks()
    try:
        settings = outage_settings(owner_url, tmp_path, hole.url, jwks_timeout_seconds=0.5)
        async with running_app(settings, raise_app_exceptions=False) as (_, client):
            big = rs256(oidc_claims(tenant, pad="x" * 9000), keys.rsa, kid="some-kid")
            r = await me(client, big)
            assert r.status_code == 401, r.text
            assert hole.accepted == []
    finally:
        hole.close()


def jwks_with(body: bytes, public_key: Any, kid: str) -> bytes:
    """The key set `body` with one more RSA signing key, as an issuer publishes it."""
    jwks = json.loads(body)
    jwks["keys"].append(json.loads(RSAAlgorithm.to_jwk(public_key)) | {"kid": kid, "alg": "RS256", "use": "sig"})
    return json.dumps(jwks).encode()


def no_signing_key(body: bytes, how: str) -> bytes:
    """The key set `body` spoiled: every key for encryption, or none with a `kid`."""
    jwks = json.loads(body)
    for k in jwks["keys"]:
        if how == "enc":
            k["use"] = "enc"
        else:
            del k["kid"]
    return json.dumps(jwks).encode()


@pytest.mark.parametrize("how", ["enc", "nokid"], ids=["every key use=enc", "no key with a kid"])
async def test_an_answer_with_no_signing_key_does_not_replace_the_cached_keys(
    owner_url: str, tmp_path: Path, keys: Keys, tenant: TenantFixture, how: str
) -> None:
    """One bad answer (here fetched for an unknown `kid`, which anyone can send) used to
    replace the good key set for UNIFOCUS_JWKS_CACHE_SECONDS: every new token 503, no refetch.
    The keys cached before keep verifying."""
    issuer = JwksServer(keys.jwks())
    issuer.start()
    try:
        async with running_app(outage_settings(owner_url, tmp_path, issuer.url),
                               raise_app_exceptions=False) as (_, client):
            assert (await me(client, rs256(oidc_claims(tenant), keys.rsa))).status_code == 200
            issuer.body = no_signing_key(keys.jwks(), how)
            await asyncio.sleep(KEYS_RETRY_SECONDS)  # past the refresh cooldown of the first fetch
            assert_unavailable(await me(client, rs256(oidc_claims(tenant), keys.rsa, kid="not-in-the-jwks")))
            assert issuer.fetches == 2
            issuer.body = keys.jwks()
            r = await me(client, rs256(oidc_claims(tenant, jti="after-the-bad-answer"), keys.rsa))
            assert r.status_code == 200, r.text
            assert issuer.fetches == 2  # verified with the cached keys
    finally:
        issuer.stop()


async def test_an_answer_with_no_signing_key_is_retried_after_retry_after(
    owner_url: str, tmp_path: Path, keys: Keys, tenant: TenantFixture
) -> None:
    """As the README says: treated as a failed fetch, retried after 5 s, not cached for
    UNIFOCUS_JWKS_CACHE_SECONDS (300 s here)."""
    issuer = JwksServer(no_signing_key(keys.jwks(), "enc"))
    issuer.start()
    try:
        async with running_app(outage_settings(owner_url, tmp_path, issuer.url),
                               raise_app_exceptions=False) as (_, client):
            token = rs256(oidc_claims(tenant), keys.rsa)
            retry = assert_unavailable(await me(client, token))
            assert retry == KEYS_RETRY_SECONDS
            issuer.body = keys.jwks()
            assert_unavailable(await me(client, token))  # within Retry-After: not asked again
            assert issuer.fetches == 1
            await asyncio.sleep(retry)
            r = await me(client, token)
            assert r.status_code == 200, r.text
            assert issuer.fetches == 2
    finally:
        issuer.stop()


async def test_a_key_the_issuer_publishes_verifies_within_retry_after(
    owner_url: str, tmp_path: Path, keys: Keys, tenant: TenantFixture
) -> None:
    """Key rotation: a token signed with a key published after the last fetch is 401 for at
    most KEYS_RETRY_SECONDS (PyJWT's default refresh cooldown made it 30 s), while a flood of
    unknown kids still makes at most one fetch per KEYS_RETRY_SECONDS, and is 401, not 503
    (which would trip the 5xx error-rate alerts)."""
    issuer = JwksServer(keys.jwks())
    issuer.start()
    try:
        async with running_app(outage_settings(owner_url, tmp_path, issuer.url)) as (_, client):
            assert (await me(client, rs256(oidc_claims(tenant), keys.rsa))).status_code == 200
            fetched_at = time.monotonic()
            issuer.body = jwks_with(keys.jwks(), keys.other_rsa.public_key(), "rsa-2")
            rotated = rs256(oidc_claims(tenant, jti="rotated"), keys.other_rsa, kid="rsa-2")
            assert (await me(client, rotated)).status_code == 401  # within the cooldown
            for n in range(20):
                flood = rs256(oidc_claims(tenant, jti=f"flood-{n}"), keys.rsa, kid=f"random-{n}")
                assert (await me(client, flood)).status_code == 401
            assert issuer.fetches == 1
            await asyncio.sleep(KEYS_RETRY_SECONDS - (time.monotonic() - fetched_at) + 0.1)
            r = await me(client, rotated)
            assert r.status_code == 200, r.text
            assert issuer.fetches == 2
    finally:
        issuer.stop()


async def test_a_token_of_an_algorithm_not_accepted_is_401_without_asking_the_issuer(
    owner_url: str, tmp_path: Path, tenant: TenantFixture
) -> None:
    """The algorithm is checked before any key is looked up: an HS256 token naming some `kid`
    is refused at once, so forged tokens cannot make the service fetch the issuer's key set
    (nor wait on an issuer that is down)."""
    hole = SilentJwks()
    try:
        settings = outage_settings(owner_url, tmp_path, hole.url, jwks_timeout_seconds=0.5)
        async with running_app(settings, raise_app_exceptions=False) as (_, client):
            forged = hs256(oidc_claims(tenant), "a-guessed-secret-of-32-bytes-or-more!", kid="unknown-kid")
            r = await me(client, forged)
            assert r.status_code == 401, r.text
            assert hole.accepted == []  # no fetch was made for it
    finally:
        hole.close()
