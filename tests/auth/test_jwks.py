"""OIDC mode: tokens signed by an issuer's keys, fetched from its JWKS URL (served here by a
tiny HTTP server on 127.0.0.1), with iss, aud, exp and nbf checked."""

from __future__ import annotations

import json
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
from tests.conftest import TenantFixture, make_settings, make_tenant, start_app

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
