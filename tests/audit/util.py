"""Helpers for the audit tests (not a test module)."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row

from tests.conftest import Api
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
