"""Bearer tokens: HS256 with a shared secret, or an OIDC issuer's keys via JWKS.

The token only names the tenant and the user; it never grants a role.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import jwt

from unifocus.errors import ServiceUnavailable, Unauthorized
from unifocus.settings import Settings

log = logging.getLogger("unifocus.auth")


@dataclass(frozen=True)
class Identity:
    tenant_id: UUID
    subject: str


# Verified tokens remembered per process: bounded in count and in time. A key removed from the
# issuer's JWKS verifies no new token once the key set is fetched again (within
# UNIFOCUS_JWKS_CACHE_SECONDS); a token verified before stays accepted for CACHE_SECONDS at most.
CACHE_ENTRIES = 10_000
CACHE_SECONDS = 300.0

# Retry-After of the 503 answered while the issuer's JWKS cannot be fetched, and how long a
# failed fetch is remembered: the same 5 s as the service's other dependency 503s, so a client
# that waits as told finds a fresh attempt.
KEYS_RETRY_SECONDS = 5

# The longest bearer token verified. Issuers' tokens are 1-2 KB (a few claims, one RS256/ES256
# signature); nothing legitimate comes near this. A longer one is a 401 before any decoding: the
# rate limiter and the auth dependency each verify the token, and base64 plus JSON over a
# megabytes-long header ran on the event loop, stalling every request of the worker.
MAX_TOKEN_CHARS = 8192

# RFC 7519 NumericDate claims: a JSON number where present. PyJWT coerces them with int(), so
# without a check "exp": "1796115934" (a string) or "nbf": true would be accepted.
NUMERIC_DATE_CLAIMS = ("exp", "nbf", "iat")


class TokenError(Unauthorized):
    """401 with the metric reason (`invalid_token` or `expired`)."""

    def __init__(self, detail: str, reason: str = "invalid_token") -> None:
        super().__init__(detail)
        self.reason = reason


class SigningKeysUnavailable(ServiceUnavailable):
    """503: the issuer's JWKS cannot be fetched. A dependency outage, not a bad token, so it is
    no TokenError: the caller is told to retry rather than to get a new token, and the auth
    metric (whose failures drive the AuthFailureSpike alert) does not count it."""

    def __init__(self) -> None:
        super().__init__("The token issuer's signing keys cannot be fetched; retry later.",
                         retry_after=KEYS_RETRY_SECONDS)


class JwksClient(jwt.PyJWKClient):
    """PyJWKClient that remembers a failed fetch for KEYS_RETRY_SECONDS. Its fetch is
    synchronous (urllib; run on `TokenVerifier`'s own thread): while the issuer does not
    answer, every new token would wait out the timeout in turn. One attempt per window
    instead; tokens whose keys are already cached keep verifying meanwhile, since only fetches
    are refused."""

    def __init__(self, uri: str, timeout: float, lifespan: float) -> None:
        # cache_keys=False: PyJWT's per-kid cache never expires, so a key the issuer removed
        # would verify for the life of the process. The key set itself is cached (parsed) for
        # `lifespan`, and verified tokens have their own cache, so nothing is re-fetched per request.
        # cooldown_duration: after a fetch, a token naming a `kid` not in the set refetches only
        # once this has passed. PyJWT's default of 30 s refused a key the issuer had just
        # published for up to 30 s; the failed-fetch retry's 5 s still bounds an unknown-kid flood
        # to one fetch per 5 s. Until then such a token is a 401, not a 503: a flood of random
        # kids would otherwise trip the 5xx error-rate alerts.
        super().__init__(uri, cache_keys=False, lifespan=lifespan, timeout=timeout,
                         cooldown_duration=KEYS_RETRY_SECONDS)
        self._down_until = 0.0

    def fetch_data(self) -> Any:
        """The fetched key set, parsed. An answer that is no key set, or one that holds no
        signing key (every key for encryption, or none with a `kid`), is the issuer's failure:
        503 and retried after KEYS_RETRY_SECONDS, like an unreachable issuer, not a 401 for
        every caller. It never replaces the set already cached (PyJWT caches any parsable
        answer before returning it): keys fetched before keep verifying for the rest of their
        cache life. A token whose `kid` is not in a good set stays a 401 (`get_signing_key`)."""
        if time.monotonic() < self._down_until:
            raise jwt.PyJWKClientConnectionError("The JWKS endpoint failed moments ago; not retried yet.")
        assert self.jwk_set_cache is not None  # cache_jwk_set is left on
        cached = self.jwk_set_cache.jwk_set_with_timestamp
        try:
            with _as_outage("The JWKS endpoint answered no key set"):
                jwk_set = jwt.PyJWKSet.from_dict(super().fetch_data())
            # PyJWT's own filter (get_signing_keys): for signatures, or of no stated use, with a `kid`.
            if not any(k.public_key_use in ("sig", None) and k.key_id for k in jwk_set.keys):
                raise jwt.PyJWKClientConnectionError("The JWKS endpoint holds no signing key")
            return jwk_set
        except jwt.PyJWKClientConnectionError as exc:
            self.jwk_set_cache.jwk_set_with_timestamp = cached
            self._down_until = time.monotonic() + KEYS_RETRY_SECONDS
            # Once per window, not per request: the operator's signal that logins now fail.
            log.warning("JWKS fetch from %s failed (%s); answering 503 for %d s", self.uri, exc, KEYS_RETRY_SECONDS)
            raise


@contextmanager
def _as_outage(what: str) -> Iterator[None]:
    """An issuer answer that is not a usable key set (a proxy's HTML page, truncated JSON, no
    signing key) raised as PyJWKClientConnectionError: the issuer is broken, not the caller's
    token, so it is answered like an unreachable issuer (503)."""
    try:
        yield
    except jwt.PyJWKClientConnectionError:
        raise
    except (ValueError, jwt.PyJWKClientError, jwt.PyJWKSetError) as exc:
        raise jwt.PyJWKClientConnectionError(f"{what}: {exc}") from exc


def _refuse_expired_before_fetching(token: str, leeway: float) -> None:
    """An expired token is a 401 whatever its signature: said before the issuer's keys are
    looked up, so that while the issuer is down a client with an expired token is told to get a
    new one (not to retry), and no fetch is made for it. The same for a date claim that is no
    number, which the signature cannot make valid. Refusing on an unverified claim only
    refuses; acceptance still needs the signature."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return  # malformed: jwt.decode below says so
    _refuse_non_numeric_dates(claims)
    exp = claims.get("exp")
    if exp is not None and exp + leeway < time.time():
        raise TokenError("The token has expired.", "expired")


def _refuse_oversized(token: str) -> None:
    if len(token) > MAX_TOKEN_CHARS:
        raise TokenError(f"The token is longer than {MAX_TOKEN_CHARS} characters.")


def _refuse_non_numeric_dates(claims: dict[str, Any]) -> None:
    for name in NUMERIC_DATE_CLAIMS:
        value = claims.get(name)
        if name in claims and (not isinstance(value, (int, float)) or isinstance(value, bool)):
            raise TokenError(f"The token's '{name}' claim is not a number.")


def resolve_secret(settings: Settings) -> str:
    """The HS256 secret: configured, else generated once and kept in the data dir (dev)."""
    if settings.jwt_secret:
        return settings.jwt_secret
    path = Path(settings.data_dir) / "jwt-secret"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    path.write_text(value)
    path.chmod(0o600)
    log.warning("UNIFOCUS_JWT_SECRET is unset: generated a secret in %s (development only)", path)
    return value


class TokenVerifier:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.jwks: jwt.PyJWKClient | None = None
        self.secret: str | None = None
        self._cache: dict[str, tuple[Identity, float, float]] = {}
        # Settings check this when built; a copy made with model_copy(update=...) is not
        # validated again, and without an issuer and an audience PyJWT would skip `iss` and
        # accept any `aud`-less token.
        settings.check_auth_mode()
        self._fetcher: ThreadPoolExecutor | None = None
        if settings.jwks_url:
            # One thread: PyJWKClient serialises its fetches behind a lock anyway.
            self._fetcher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="unifocus-jwks")
            self.jwks = JwksClient(settings.jwks_url, settings.jwks_timeout_seconds, settings.jwks_cache_seconds)
            self.algorithms = [a.strip() for a in settings.jwt_algorithms.split(",") if a.strip()]
            # OIDC (contract section 2): the issuer signs tokens for other applications too;
            # `iss` and `aud` say this one is ours, so they are always required and checked.
            self.required = ["exp", "sub", "iss", "aud"]
        else:
            self.secret = resolve_secret(settings)
            self.algorithms = ["HS256"]
            self.required = ["exp", "sub"]

    def _key(self, token: str) -> Any:
        if self.jwks is None:
            return self.secret
        try:
            return self.jwks.get_signing_key_from_jwt(token).key
        except jwt.PyJWKClientConnectionError as exc:
            # The issuer is down, not the token bad: 503 with Retry-After (contract section 1).
            raise SigningKeysUnavailable() from exc
        except jwt.PyJWTError as exc:
            raise TokenError("The token's key is unknown.") from exc

    def verify(self, token: str) -> Identity:
        """The token's identity. A token whose signature and claims were checked is
        remembered until its `exp` (at most CACHE_SECONDS): the role and `active` still come
        from the database on every request, only the signature check is skipped."""
        _refuse_oversized(token)  # before the cache lookup: hashing megabytes is not free
        remembered = self._remembered(token)
        return remembered if remembered is not None else self._verify_and_remember(token)

    def _verify_and_remember(self, token: str) -> Identity:
        now = time.time()
        identity, not_before, expires = self._verify(token)
        if len(self._cache) >= CACHE_ENTRIES:
            self._cache.clear()
        leeway = self.settings.jwt_leeway_seconds
        self._cache[token] = (identity, not_before - leeway, min(expires + leeway, now + CACHE_SECONDS))
        return identity

    def _remembered(self, token: str) -> Identity | None:
        hit = self._cache.get(token)
        return hit[0] if hit is not None and hit[1] <= time.time() < hit[2] else None

    async def verify_async(self, token: str) -> Identity:
        """`verify` for request code. A remembered token answers at once; in OIDC mode a new
        one is verified on a worker thread, because verifying it may fetch the issuer's key set
        (PyJWT's fetch is synchronous, up to UNIFOCUS_JWKS_TIMEOUT_SECONDS): on the event loop
        that would stall every request of the worker, /health included, for as long."""
        _refuse_oversized(token)
        remembered = self._remembered(token)
        if remembered is not None:
            return remembered
        if self.jwks is None:
            return self._verify_and_remember(token)  # HS256: CPU only, no I/O
        # Its own thread, not the loop's default pool: a hanging issuer must not hold the
        # threads that other work (getaddrinfo for a new database connection) needs.
        return await asyncio.get_running_loop().run_in_executor(self._fetcher, self._verify_and_remember, token)

    def _verify(self, token: str) -> tuple[Identity, float, float]:
        s = self.settings
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") not in self.algorithms:
                raise TokenError("The token's algorithm is not accepted.")
            if self.jwks is None and "kid" in header:
                # The shared secret is one key with no id: a token naming a key names one this
                # service does not have (contract section 2, unknown `kid`: 401).
                raise TokenError("The token's key is unknown.")
            if self.jwks is not None:
                _refuse_expired_before_fetching(token, s.jwt_leeway_seconds)
            claims = jwt.decode(
                token,
                self._key(token),
                algorithms=self.algorithms,
                audience=s.jwt_audience,
                issuer=s.jwt_issuer,
                leeway=s.jwt_leeway_seconds,
                options={
                    "require": self.required,
                    # Checked when configured: in JWKS mode always (check_auth_mode requires
                    # both); with HS256 they are optional.
                    "verify_aud": s.jwt_audience is not None,
                    "verify_iss": s.jwt_issuer is not None,
                },
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenError("The token has expired.", "expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise TokenError("The token is not valid yet.") from exc
        except jwt.PyJWTError as exc:
            raise TokenError("The token is invalid.") from exc
        except (TypeError, ValueError) as exc:
            # The token's `kid` names a key of another type than its `alg` (an RS256 token
            # naming the issuer's EC key): PyJWT fails preparing the key. A client error, not a 500.
            raise TokenError("The token's key does not match its algorithm.") from exc
        _refuse_non_numeric_dates(claims)
        try:
            tenant_id = UUID(str(claims[s.tenant_claim]))
        except (KeyError, ValueError) as exc:
            raise TokenError(f"The token has no valid '{s.tenant_claim}' claim.") from exc
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject or len(subject) > 255:
            raise TokenError("The token's subject is invalid.")
        not_before = float(claims.get("nbf", 0) or 0)
        return Identity(tenant_id, subject), not_before, float(claims["exp"])


def mint_token(settings: Settings, tenant_id: UUID, subject: str, ttl_minutes: int | None = None) -> str:
    """An HS256 token for a user (CLI, demo, tests). Its claims carry no role."""
    now = int(time.time())
    ttl = ttl_minutes if ttl_minutes is not None else settings.token_ttl_minutes
    claims: dict[str, Any] = {
        "sub": subject,
        settings.tenant_claim: str(tenant_id),
        "iat": now,
        "nbf": now,
        "exp": now + ttl * 60,
    }
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    return jwt.encode(claims, resolve_secret(settings), algorithm="HS256")
