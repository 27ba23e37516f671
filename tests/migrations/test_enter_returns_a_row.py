"""Migration 0009: `unifocus_enter` returns one composite value (called as an expression by
`unifocus_enter_punch`). The punch write's first statement must answer as before: the caller,
a fresh key claimed, a repeated key's stored answer, no row for an unknown user; and the
service still refuses an unknown user with 401."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from tests.migrations.conftest import migrated_to
from tests.tenancy.seed import seed
from unifocus.db.migrate import downgrade, upgrade
from unifocus.db.urls import app_url
from unifocus.settings import Settings

pytestmark = pytest.mark.tenants

ENTER_PUNCH = ("SELECT o_user_id, o_role, o_active, o_claimed, o_status, o_body, o_context IS NOT NULL "
               "FROM unifocus_enter_punch(%s, %s, '1500ms', 'POST', '/api/punches', %s, '\\x01'::bytea, 60, %s, "
               "'2026-01-02', '2026-01-09', '2025-12-30', '2026-01-10', '2026-01-03', '2026-01-08', NULL, NULL)")


def first_statement(runtime: str, tenant: uuid.UUID, subject: str, key: str, employee: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(runtime, autocommit=True) as conn:
        return [tuple(r) for r in conn.execute(ENTER_PUNCH, (tenant, subject, key, employee)).fetchall()]


def store_answer(owner_url: str, tenant: uuid.UUID, key: str) -> None:
    with psycopg.connect(owner_url, autocommit=True) as conn:
        conn.execute("UPDATE idempotency_records SET status_code = 201, body = 'stored' WHERE tenant_id = %s "
                     "AND key = %s", (tenant, key))


def test_the_first_statement_answers_as_before(scratch_db: str) -> None:
    settings, runtime = migrated_to(scratch_db, "0008")
    with psycopg.connect(scratch_db, autocommit=True) as owner:
        a = seed(owner, uuid.uuid4())

    def observed(key: str) -> list[list[tuple[Any, ...]]]:
        fresh = first_statement(runtime, a.tenant, str(a["subject"]), key, a["employee"])
        store_answer(scratch_db, a.tenant, key)
        repeated = first_statement(runtime, a.tenant, str(a["subject"]), key, a["employee"])
        unknown = first_statement(runtime, a.tenant, "no-such-subject", key, a["employee"])
        return [fresh, repeated, unknown]

    before = observed("k-0008")
    assert before == [[(a["user"], "manager", True, True, None, None, True)],
                      [(a["user"], "manager", True, False, 201, b"stored", False)],
                      []]
    upgrade(scratch_db, settings, "0009")
    assert observed("k-0009") == before
    downgrade(scratch_db, settings, "0008")
    assert observed("k-back") == before


def test_unifocus_enter_names_an_unknown_user_with_nulls(scratch_db: str) -> None:
    settings = Settings(database_url=scratch_db)
    upgrade(scratch_db, settings)
    with psycopg.connect(scratch_db, autocommit=True) as owner:
        a = seed(owner, uuid.uuid4())
    with psycopg.connect(app_url(settings, scratch_db), autocommit=True) as conn:
        rows = conn.execute("SELECT o_user_id, o_role FROM unifocus_enter(%s, 'no-such-subject')",
                            (a.tenant,)).fetchall()
        assert [tuple(r) for r in rows] == [(None, None)]
        rows = conn.execute("SELECT o_user_id, o_role FROM unifocus_enter(%s, %s)", (a.tenant, str(a["subject"]))
                            ).fetchall()
        assert [tuple(r) for r in rows] == [(a["user"], "manager")]
