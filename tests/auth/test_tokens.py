"""HS256 bearer tokens: every invalid credential is a 401 problem, a deactivated user is 403,
and the role always comes from the database, never from the token."""

from __future__ import annotations

import time
from collections.abc import Callable

import psycopg
import pytest

from tests.auth.tokens import DROP, claims_for, hs256, unsigned
from tests.conftest import Api, TenantFixture
from unifocus.auth import tokens
from unifocus.auth.tokens import MAX_TOKEN_CHARS, TokenError, TokenVerifier
from unifocus.settings import Settings

pytestmark = [pytest.mark.tenants, pytest.mark.filterwarnings("ignore:The HMAC key")]

Header = Callable[[TenantFixture, TenantFixture], "str | None"]


def bearer(token: str) -> str:
    return f"Bearer {token}"


def admin_claims(a: TenantFixture, **over: object) -> dict:
    return claims_for(a, a.admin_id, **over)


# (case, Authorization header built from tenants A and B); each must be 401.
UNAUTHORIZED: list[tuple[str, Header]] = [
    ("no header", lambda a, b: None),
    ("empty header", lambda a, b: ""),
    ("scheme only", lambda a, b: "Bearer"),
    ("scheme and blanks", lambda a, b: "Bearer    "),
    ("basic scheme", lambda a, b: "Basic dXNlcjpwYXNz"),
    ("token without scheme", lambda a, b: a.admin),
    ("garbage token", lambda a, b: bearer("not-a-jwt")),
    ("three garbage segments", lambda a, b: bearer("aaa.bbb.ccc")),
    ("alg none", lambda a, b: bearer(unsigned(admin_claims(a)))),
    ("wrong secret", lambda a, b: bearer(hs256(admin_claims(a), secret="another-secret-" + "y" * 32))),
    ("tampered payload", lambda a, b: bearer(_tampered(a))),
    ("HS512 with the right secret", lambda a, b: bearer(hs256(admin_claims(a), algorithm="HS512"))),
    # The shared secret has no key id: a token naming one names a key this service has not
    # (contract section 2: unknown `kid` is 401), however it is signed.
    ("a kid with the right secret", lambda a, b: bearer(hs256(admin_claims(a), kid="nope"))),
    ("an empty kid with the right secret", lambda a, b: bearer(hs256(admin_claims(a), kid=""))),
    ("expired beyond leeway", lambda a, b: bearer(hs256(admin_claims(a, exp=int(time.time()) - 60)))),
    ("not yet valid beyond leeway", lambda a, b: bearer(hs256(admin_claims(a, nbf=int(time.time()) + 120)))),
    ("no exp", lambda a, b: bearer(hs256(admin_claims(a, exp=DROP)))),
    ("no sub", lambda a, b: bearer(hs256(admin_claims(a, sub=DROP)))),
    ("empty sub", lambda a, b: bearer(hs256(admin_claims(a, sub="")))),
    ("no tenant claim", lambda a, b: bearer(hs256(admin_claims(a, tenant_id=DROP)))),
    ("tenant claim not a uuid", lambda a, b: bearer(hs256(admin_claims(a, tenant_id="tenant-a")))),
    ("unknown user", lambda a, b: bearer(hs256(claims_for(a, "no-such-subject")))),
    ("unknown tenant", lambda a, b: bearer(hs256(admin_claims(a, tenant_id="00000000-0000-4000-8000-000000000000")))),
    ("B's admin claiming tenant A", lambda a, b: bearer(hs256(claims_for(a, b.admin_id)))),
    # RFC 7519 NumericDate is a JSON number; PyJWT's int() would take a numeric string or a bool.
    ("exp a numeric string", lambda a, b: bearer(hs256(admin_claims(a, exp=str(int(time.time()) + 300))))),
    ("nbf a numeric string", lambda a, b: bearer(hs256(admin_claims(a, nbf=str(int(time.time()) - 60))))),
    ("iat a numeric string", lambda a, b: bearer(hs256(admin_claims(a, iat=str(int(time.time()) - 60))))),
    ("nbf true", lambda a, b: bearer(hs256(admin_claims(a, nbf=True)))),
    ("iat false", lambda a, b: bearer(hs256(admin_claims(a, iat=False)))),
]


def _tampered(a: TenantFixture) -> str:
    """A's employee token with its payload swapped for the admin's (signature kept)."""
    header, _, signature = hs256(claims_for(a, a.employee_user_id)).split(".")
    payload = hs256(admin_claims(a)).split(".")[1]
    return f"{header}.{payload}.{signature}"


def assert_problem(r: object, status: int) -> None:
    resp: object = r
    assert resp.status_code == status, resp.text  # type: ignore[attr-defined]
    assert resp.headers["content-type"].startswith("application/problem+json")  # type: ignore[attr-defined]
    body = resp.json()  # type: ignore[attr-defined]
    assert body["status"] == status and body["type"].startswith("https://") and body["title"] and body["detail"]


@pytest.mark.parametrize("case, header", UNAUTHORIZED, ids=[c for c, _ in UNAUTHORIZED])
async def test_invalid_credentials_are_401_problems(
    api: Api, tenant_a: TenantFixture, tenant_b: TenantFixture, case: str, header: Header
) -> None:
    value = header(tenant_a, tenant_b)
    headers = {} if value is None else {"Authorization": value}
    r = await api.req("GET", "/api/me", headers=headers)
    assert_problem(r, 401)
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert str(tenant_a.admin_id) not in r.text


@pytest.mark.parametrize(
    "case, offsets",
    [("expired 10s ago", {"exp": -10, "iat": -600, "nbf": -600}), ("valid in 10s", {"nbf": 10})],
)
async def test_clock_skew_within_the_30s_leeway_is_accepted(
    api: Api, tenant_a: TenantFixture, case: str, offsets: dict[str, int]
) -> None:
    now = int(time.time())
    claims = admin_claims(tenant_a, **{claim: now + delta for claim, delta in offsets.items()})
    r = await api.req("GET", "/api/me", hs256(claims))
    assert r.status_code == 200, r.text


async def test_a_valid_token_names_the_caller_as_the_database_knows_them(api: Api, tenant_a: TenantFixture) -> None:
    r = await api.req("GET", "/api/me", tenant_a.employee)
    assert r.status_code == 200, r.text
    assert r.json() == {"userId": str(tenant_a.employee_user_id), "tenantId": str(tenant_a.id),
                        "email": r.json()["email"], "role": "employee", "employeeId": str(tenant_a.employee_id)}


async def test_a_deactivated_user_is_403_on_the_next_request(
    api: Api, owner_sql: psycopg.Connection, tenant_a: TenantFixture
) -> None:
    assert (await api.req("GET", "/api/me", tenant_a.manager)).status_code == 200
    owner_sql.execute("UPDATE users SET active = false WHERE tenant_id = %s AND id = %s",
                      (tenant_a.id, tenant_a.manager_id))
    assert_problem(await api.req("GET", "/api/me", tenant_a.manager), 403)
    assert_problem(await api.req("POST", "/api/employees", tenant_a.manager,
                                 json={"firstName": "A", "lastName": "B"}), 403)


async def test_a_role_claim_in_the_token_is_ignored(api: Api, tenant_a: TenantFixture) -> None:
    token = hs256(claims_for(tenant_a, tenant_a.employee_user_id, role="admin", roles=["admin"],
                             **{"custom:role": "admin", "groups": ["admin"]}))
    assert_problem(await api.req("GET", "/api/users", token), 403)
    assert_problem(await api.req("GET", "/api/employees", token), 403)
    me = await api.req("GET", "/api/me", token)
    assert me.json()["role"] == "employee"


async def test_the_subject_is_matched_to_the_users_subject_not_its_id(
    api: Api, owner_sql: psycopg.Connection, tenant_a: TenantFixture
) -> None:
    owner_sql.execute("UPDATE users SET subject = 'idp|manager-42' WHERE tenant_id = %s AND id = %s",
                      (tenant_a.id, tenant_a.manager_id))
    by_subject = await api.req("GET", "/api/me", hs256(claims_for(tenant_a, "idp|manager-42")))
    assert by_subject.status_code == 200 and by_subject.json()["userId"] == str(tenant_a.manager_id)
    assert_problem(await api.req("GET", "/api/me", tenant_a.manager), 401)  # sub = the id no longer matches


def padded(a: TenantFixture, length: int) -> str:
    """A's admin token, correctly signed, padded by a claim to at most `length` characters
    (base64 makes 4 of every 3 bytes)."""
    base = len(hs256(admin_claims(a, pad="")))
    return hs256(admin_claims(a, pad="x" * ((length - base) * 3 // 4)))


async def test_a_token_longer_than_the_cap_is_401_however_well_signed(api: Api, tenant_a: TenantFixture) -> None:
    near = padded(tenant_a, MAX_TOKEN_CHARS)
    assert MAX_TOKEN_CHARS - 4 <= len(near) <= MAX_TOKEN_CHARS
    assert (await api.req("GET", "/api/me", near)).status_code == 200
    over = hs256(admin_claims(tenant_a, pad="x" * MAX_TOKEN_CHARS))
    r = await api.req("GET", "/api/me", over)
    assert_problem(r, 401)
    assert str(MAX_TOKEN_CHARS) in r.json()["detail"]


async def test_an_oversized_token_is_refused_before_any_decoding(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Megabytes of base64 and JSON would stall the worker's event loop, and the rate limiter
    and the auth dependency each verify the token: both go through the verifier, which
    refuses by length alone."""
    def no_decoding(*args: object, **kwargs: object) -> None:
        raise AssertionError("an oversized token was decoded")

    monkeypatch.setattr(tokens.jwt, "get_unverified_header", no_decoding)
    monkeypatch.setattr(tokens.jwt, "decode", no_decoding)
    verifier = TokenVerifier(settings)
    huge = "e30." * (2 * 1024 * 1024)  # 8 MB of `{}` segments, as an attacker sends it
    with pytest.raises(TokenError):
        verifier.verify(huge)
    with pytest.raises(TokenError):
        await verifier.verify_async(huge)
