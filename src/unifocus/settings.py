"""Every setting of the service, read from the environment, with its default.

The README's configuration table is the user-facing copy of this file: keep them in step.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConfigurationError(RuntimeError):
    """Settings the service refuses to start with; the message names the variables to fix.
    Not a ValueError on purpose: pydantic would wrap that in a ValidationError that prints the
    input values, secrets included."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="UNIFOCUS_", extra="ignore", populate_by_name=True)

    # --- database -------------------------------------------------------------------------
    # The owner connection: migrations, backups and the CLI's admin work run with it. When it
    # is unset, `unifocus serve` starts an embedded PostgreSQL under data_dir.
    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    # The runtime connection. Unset: derived from DATABASE_URL with the user replaced by
    # app_db_role (and app_db_password), so the service never runs as the table owner.
    app_database_url: str | None = None
    app_db_role: str = "unifocus_app"
    app_db_password: str | None = None
    db_pool_max: int = 10
    # A request that needs the database answers 503 after this many seconds, never hangs.
    db_timeout_seconds: float = 5.0
    # 0 disables asyncpg's prepared-statement cache (required behind PgBouncer in
    # transaction pooling mode).
    db_statement_cache_size: int = 100

    # --- redis ----------------------------------------------------------------------------
    redis_url: str | None = Field(default=None, validation_alias="REDIS_URL")
    redis_timeout_seconds: float = 0.5

    # --- files ----------------------------------------------------------------------------
    data_dir: Path = Path(".unifocus")

    # --- auth -----------------------------------------------------------------------------
    jwt_secret: str | None = None
    # OIDC mode. Needs jwt_issuer and jwt_audience too (check_auth_mode): an issuer signs
    # tokens for other applications as well, and only `iss` and `aud` tell ours apart.
    jwks_url: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    # Bound on one JWKS fetch (synchronous, on a worker thread: a request whose token needs the
    # keys waits for it); past it such requests answer 503.
    jwks_timeout_seconds: float = Field(default=2.0, gt=0)
    # How long the fetched key set is trusted before it is fetched again: a key the issuer
    # removes (rotated out, compromised) stops verifying within this bound.
    jwks_cache_seconds: float = Field(default=300.0, gt=0)
    jwt_algorithms: str = "RS256,ES256"
    tenant_claim: str = "tenant_id"
    jwt_leeway_seconds: int = 30
    token_ttl_minutes: int = 60

    # --- idempotency ----------------------------------------------------------------------
    idempotency_required: bool = False
    idempotency_ttl_hours: float = 24.0
    idempotency_cleanup_cron: str = "0 2 * * *"
    idempotency_cleanup_batch: int = 5000
    # How long a duplicate waits for the in-flight original before it gets 409.
    idempotency_wait_seconds: float = 2.0
    # Turning this off breaks the contract; it exists so `unifocus gate verify` can be shown
    # to catch a broken deployment.
    idempotency_replay_enabled: bool = True

    # --- audit ----------------------------------------------------------------------------
    # Appends are chained per (tenant, chain); several chains let one tenant's writers
    # commit in parallel. Verification walks each chain.
    audit_chains: int = 8
    audit_export_dir: Path | None = None
    audit_export_cron: str = "30 2 * * *"

    # --- exceptions sweep -----------------------------------------------------------------
    exception_sweep_cron: str = "*/5 * * * *"
    scheduler_enabled: bool = True

    # --- rate limits ----------------------------------------------------------------------
    rate_limit_enabled: bool = True
    rate_limit_user_capacity: int = 600
    rate_limit_user_refill_per_second: float = 10.0
    rate_limit_tenant_capacity: int = 3000
    rate_limit_tenant_refill_per_second: float = 50.0

    # --- requests -------------------------------------------------------------------------
    max_body_bytes: int = 1_048_576
    max_json_depth: int = 32
    # POST /api/punches answered without FastAPI's per-request plumbing when well-formed
    # (punches/fast_route.py); the same answers either way, off only to rule it out.
    fast_punch_route: bool = True
    # POST /api/punches written in two autocommit statements (read the facts, then write if
    # they still hold) instead of a four-round-trip transaction; falls back to the
    # transaction whenever the optimistic write cannot be used (db/optimistic.py).
    optimistic_punch_write: bool = True
    # Group commit (db/groupcommit.py): punch writes of one tenant that become ready while
    # another is in flight are written together, up to this many in one statement; 1 sends
    # every write alone.
    group_commit_max_items: int = Field(default=32, ge=1, le=500)

    # --- observability --------------------------------------------------------------------
    metrics_token: str | None = None
    log_level: str = "INFO"
    log_json: bool = True

    # --- server ---------------------------------------------------------------------------
    migrate_on_start: bool = True
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    shutdown_grace_seconds: float = 20.0
    # Part of the grace during which /ready says 503 before the server stops accepting.
    shutdown_drain_seconds: float = 2.0
    ready_check_timeout_seconds: float = 1.5

    @property
    def audit_export_enabled(self) -> bool:
        return self.audit_export_dir is not None

    @model_validator(mode="after")
    def _auth_mode_is_complete(self) -> Settings:
        self.check_auth_mode()
        return self

    def check_auth_mode(self) -> None:
        """Refuse OIDC mode without an issuer and an audience (contract section 2): it would
        accept a token the issuer signed for any other application."""
        if not self.jwks_url:
            return
        missing = [name for name, value in (("UNIFOCUS_JWT_ISSUER", self.jwt_issuer),
                                            ("UNIFOCUS_JWT_AUDIENCE", self.jwt_audience)) if not value]
        if missing:
            raise ConfigurationError(
                "UNIFOCUS_JWKS_URL is set (OIDC mode), so UNIFOCUS_JWT_ISSUER and UNIFOCUS_JWT_AUDIENCE must both "
                "be set too: every token's `iss` and `aud` are checked against them. "
                f"Missing: {', '.join(missing)}."
            )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
