"""Bearer tokens: HS256 with a shared secret, or an OIDC issuer's keys via JWKS.

The token only names the tenant and the user; it never grants a role.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import jwt

from unifocus.errors import Unauthorized
from unifocus.settings import Settings

log = logging.getLogger("unifocus.auth")


@dataclass(frozen=True)
class Identity:
    tenant_id: UUID
    subject: str


# Verified tokens remembered per process: bounded in count and in time (a key removed from
# the issuer's JWKS stops being accepted within CACHE_SECONDS).
CACHE_ENTRIES = 10_000
CACHE_SECONDS = 300.0


class TokenError(Unauthorized):
    """401 with the metric reason (`invalid_token` or `expired`)."""

    def __init__(self, detail: str, reason: str = "invalid_token") -> None:
        super().__init__(detail)
        self.reason = reason


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
        if settings.jwks_url:
            self.jwks = jwt.PyJWKClient(settings.jwks_url, cache_keys=True, lifespan=300, timeout=5)
            self.algorithms = [a.strip() for a in settings.jwt_algorithms.split(",") if a.strip()]
        else:
            self.secret = resolve_secret(settings)
            self.algorithms = ["HS256"]

    def _key(self, token: str) -> Any:
        if self.jwks is None:
            return self.secret
        try:
            return self.jwks.get_signing_key_from_jwt(token).key
        except jwt.PyJWKClientConnectionError as exc:
            raise TokenError("The token's signing keys cannot be fetched.") from exc
        except jwt.PyJWTError as exc:
            raise TokenError("The token's key is unknown.") from exc

    def verify(self, token: str) -> Identity:
        """The token's identity. A token whose signature and claims were checked is
        remembered until its `exp` (at most CACHE_SECONDS): the role and `active` still come
        from the database on every request, only the signature check is skipped."""
        now = time.time()
        hit = self._cache.get(token)
        if hit is not None and hit[1] <= now < hit[2]:
            return hit[0]
        identity, not_before, expires = self._verify(token)
        if len(self._cache) >= CACHE_ENTRIES:
            self._cache.clear()
        leeway = self.settings.jwt_leeway_seconds
        self._cache[token] = (identity, not_before - leeway, min(expires + leeway, now + CACHE_SECONDS))
        return identity

    def _verify(self, token: str) -> tuple[Identity, float, float]:
        s = self.settings
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") not in self.algorithms:
                raise TokenError("The token's algorithm is not accepted.")
            claims = jwt.decode(
                token,
                self._key(token),
                algorithms=self.algorithms,
                audience=s.jwt_audience,
                issuer=s.jwt_issuer,
                leeway=s.jwt_leeway_seconds,
                options={
                    "require": ["exp", "sub"],
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
