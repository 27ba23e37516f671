"""Helpers for the audit tests (not a test module)."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row

from tests.conftest import Api, TenantFixture
from unifocus.audit.writer import chain_for


def rid() -> str:
    return "req-" + uuid.uuid4().hex


def rids_for_chain(chain: int, chains: int = 8) -> Iterator[str]:
    """Request ids whose writes land on `chain` (the write path picks it from the request id)."""
    for i in itertools.count():
        candidate = f"chain{chain}-{uuid.uuid4().hex[:8]}-{i}"
        if chain_for(candidate, chains) == chain:
            yield candidate


async def create_employee(api: Api, token: str, first: str = "Ann", request_id: str | None = None,
                          key: str | None = None, **extra: Any) -> Any:
    headers = {"X-Request-ID": request_id} if request_id else {}
    return await api.req("POST", "/api/employees", token, key=key, headers=headers,
                         json={"firstName": first, "lastName": "Lee", **extra})


async def chain_of(api: Api, tenant: TenantFixture, owner_url: str, n: int = 5) -> list[dict[str, Any]]:
    """A fresh tenant's chain 0 with n entries written through the API."""
    ids = rids_for_chain(0)
    for i in range(n):
        r = await create_employee(api, tenant.manager, f"Emp{i}", request_id=next(ids))
        assert r.status_code == 201, r.text
    rows = entries(owner_url, tenant.id)
    assert [(e["chain"], e["seq"]) for e in rows] == [(0, s) for s in range(1, n + 1)]
    return rows


def entries(owner_url: str, tenant_id: uuid.UUID, where: str = "", *args: Any) -> list[dict[str, Any]]:
    with psycopg.connect(owner_url, row_factory=dict_row) as conn:
        return conn.execute(
            "SELECT * FROM audit_log WHERE tenant_id = %s " + where + " ORDER BY chain, seq",  # noqa: S608
            (tenant_id, *args),
        ).fetchall()


@contextmanager
def tampering(owner_url: str, tenant_id: uuid.UUID) -> Iterator[psycopg.Connection]:
    """A superuser connection with every trigger off for this session only
    (session_replication_role = replica), restricted by the caller to `tenant_id`'s rows.
    On exit the tenant's original rows are put back byte for byte, so a full verify of the
    shared test database stays green for everyone else."""
    with psycopg.connect(owner_url, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute("CREATE TEMP TABLE audit_backup AS SELECT * FROM audit_log WHERE tenant_id = %s",
                     (tenant_id,))
        try:
            yield conn
        finally:
            with conn.transaction():
                conn.execute("DELETE FROM audit_log WHERE tenant_id = %s", (tenant_id,))
                conn.execute("INSERT INTO audit_log SELECT * FROM audit_backup")
            conn.execute("DROP TABLE audit_backup")
            conn.execute("SET session_replication_role = origin")


def rehash(conn: psycopg.Connection, tenant_id: uuid.UUID, chain: int, from_seq: int) -> None:
    """What a forger who bypasses the triggers does after changing a chain: recompute prev_hash
    and hash of every entry from `from_seq` on with the (unkeyed) `unifocus_audit_hash`, so the
    chain agrees with itself again. `conn` is a `tampering` connection."""
    last = conn.execute("SELECT max(seq) FROM audit_log WHERE tenant_id = %s AND chain = %s",
                        (tenant_id, chain)).fetchone()
    assert last is not None and last[0] is not None
    for seq in range(from_seq, last[0] + 1):
        conn.execute(
            "UPDATE audit_log a SET prev_hash = coalesce((SELECT p.hash FROM audit_log p WHERE "
            "p.tenant_id = a.tenant_id AND p.chain = a.chain AND p.seq = a.seq - 1), '\\x'::bytea) "
            "WHERE a.tenant_id = %s AND a.chain = %s AND a.seq = %s", (tenant_id, chain, seq))
        conn.execute("UPDATE audit_log a SET hash = unifocus_audit_hash(a.prev_hash, a) "
                     "WHERE a.tenant_id = %s AND a.chain = %s AND a.seq = %s", (tenant_id, chain, seq))
