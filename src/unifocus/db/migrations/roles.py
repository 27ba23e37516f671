"""What several migrations need: the runtime role's name, as `unifocus.db.migrate` passes it."""

from __future__ import annotations

from alembic import context, op


def app_role() -> str:
    """The runtime role (default `unifocus_app`); refused unless it is a plain identifier,
    since it is written into GRANT statements."""
    role = context.config.attributes.get("app_role") or "unifocus_app"
    if not role.replace("_", "").isalnum():
        raise ValueError(f"invalid role name {role!r}")
    return str(role)


def grant_execute(*signatures: str) -> None:
    """Functions callable by the runtime role only (not PUBLIC)."""
    for fn in signatures:
        op.execute(f"REVOKE ALL ON FUNCTION {fn} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {fn} TO {app_role()}")
