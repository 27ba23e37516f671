"""Tenant settings, and creating a tenant with its first admin (CLI and demo)."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

import asyncpg
import orjson

from unifocus.audit.writer import AuditEntry
from unifocus.auth.context import Caller, guard
from unifocus.db.writepath import WriteTx
from unifocus.errors import NotFound
from unifocus.tenants.schemas import Policy, Tenant, TenantPatch


def to_tenant(row: Any) -> Tenant:
    policy = orjson.loads(row["policy"]) if isinstance(row["policy"], str) else row["policy"]
    return Tenant(id=row["tenant_id"], name=row["name"], timezone=row["timezone"], policy=Policy(**policy))


async def load(conn: asyncpg.Connection, caller: Caller, lock: bool = False) -> Tenant:
    sql = "SELECT tenant_id, name, timezone, policy FROM tenants WHERE tenant_id = $1"
    # FOR NO KEY UPDATE, as the UPDATE itself takes (it never changes tenant_id): every write's
    # rows reference the tenant and so hold KEY SHARE on it, which FOR UPDATE would wait for. Two
    # keyed PATCHes, each holding KEY SHARE from its idempotency claim, deadlocked that way.
    row = await conn.fetchrow(sql + (" FOR NO KEY UPDATE" if lock else ""), caller.tenant_id)
    if row is None:
        raise NotFound("The tenant does not exist.")
    return to_tenant(guard(caller, row))


async def update(tx: WriteTx, patch: TenantPatch) -> Tenant:
    before = await load(tx.conn, tx.caller, lock=True)
    policy = before.policy.model_copy(
        update=patch.policy.model_dump(exclude_none=True) if patch.policy else {}
    )
    after = before.model_copy(
        update={"name": patch.name or before.name, "timezone": patch.timezone or before.timezone, "policy": policy}
    )
    if after == before:
        return before  # nothing changed: no write, no audit entry (contract 7: per changed entity)
    await tx.conn.execute(
        "UPDATE tenants SET name = $2, timezone = $3, policy = $4, updated_at = now() WHERE tenant_id = $1",
        tx.caller.tenant_id, after.name, after.timezone, policy.model_dump_json(by_alias=True),
    )
    tx.audit(AuditEntry("Tenant", "updated", before.id, before.model_dump(mode="json", by_alias=True),
                        after.model_dump(mode="json", by_alias=True)))
    return after


async def create_with_admin(
    conn: asyncpg.Connection, name: str, timezone: str, admin_email: str, request_id: str, chains: int = 1,
    *, admin_subject: str | None = None,
) -> tuple[UUID, UUID]:
    """Insert a tenant and its first admin, audited, in the caller's transaction. Runs as the
    app role with the new tenant set, so RLS checks these inserts like any other.

    `admin_subject` is the `sub` the identity provider will put in the admin's tokens (an OIDC
    deployment cannot choose it); without it the admin's subject is its id, as for any user."""
    from unifocus.audit.writer import append
    from unifocus.db.pool import set_tenant

    tenant_id, admin_id = uuid4(), uuid4()
    subject = admin_subject or str(admin_id)
    await set_tenant(conn, tenant_id)
    policy = Policy().model_dump_json(by_alias=True)
    await conn.execute(
        "INSERT INTO tenants (tenant_id, name, timezone, policy) VALUES ($1, $2, $3, $4)",
        tenant_id, name, timezone, policy,
    )
    await conn.execute(
        "INSERT INTO users (tenant_id, id, email, role, subject) VALUES ($1, $2, $3, 'admin', $4)",
        tenant_id, admin_id, admin_email, subject,
    )
    tenant_after = {"id": str(tenant_id), "name": name, "timezone": timezone, "policy": orjson.loads(policy)}
    user_after = {"id": str(admin_id), "email": admin_email, "role": "admin", "active": True,
                  "subject": subject, "employeeId": None}
    entries = [
        AuditEntry("Tenant", "created", tenant_id, None, tenant_after),
        AuditEntry("User", "created", admin_id, None, user_after),
    ]
    await append(conn, tenant_id, None, request_id, entries, chains)
    return tenant_id, admin_id
