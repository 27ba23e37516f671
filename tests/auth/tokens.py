"""Token builders for the auth tests: every way a bearer token can be wrong."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt

from tests.conftest import JWT_SECRET, TenantFixture

DROP = object()  # a claim value meaning "leave this claim out"


def claims_for(tenant: TenantFixture, subject: object, tenant_claim: Any = "tenant_id", **overrides: Any) -> dict:
    now = int(time.time())
    base: dict[str, Any] = {"sub": str(subject), tenant_claim: str(tenant.id), "iat": now, "nbf": now,
                            "exp": now + 300}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not DROP}


def hs256(claims: dict, secret: str = JWT_SECRET, algorithm: str = "HS256", **headers: Any) -> str:
    return jwt.encode(claims, secret, algorithm=algorithm, headers=headers or None)


def unsigned(claims: dict) -> str:
    """`alg: none`: a header and a payload, no signature."""

    def part(obj: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."
