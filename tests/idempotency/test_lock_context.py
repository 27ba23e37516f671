"""Which lock a timed-out claim waited for: the key's own row (409 in progress) or another
row (503), read from PostgreSQL's error context in whatever language the server speaks
(`waited_for_key`). Real waits on the real server (its messages in English), and the same
rule over the German wording of those contexts (PostgreSQL's own translation), so that the
answer does not depend on a server's `lc_messages`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import psycopg
import pytest

from tests.conftest import TenantFixture
from tests.idempotency.conftest import new_key
from unifocus.db.writepath import waited_for_key

pytestmark = pytest.mark.idempotency

ENGLISH_TIMEOUT = "canceling statement due to lock timeout"
CLAIM = "SELECT unifocus_claim($1, $2, 'POST', '/api/employees', $3, $4, 3600)"
HOLD_CLAIM = ("INSERT INTO idempotency_records (tenant_id, user_id, method, path, key, fingerprint, expires_at) "
              "VALUES (%s, %s, 'POST', '/api/employees', %s, '\\x00', now() + interval '1 hour')")

Waiter = Callable[..., Any]


@pytest.fixture()
async def waiter(owner_url: str) -> AsyncIterator[Waiter]:
    """`await waiter(sql, *args, timeout_ms=...)`: run `sql` in a transaction of its own on a
    connection whose messages are in English (C); the lock-timeout error it raised (the test
    fails if it raised none)."""
    language = "C"
    conns: list[asyncpg.Connection] = []

    async def connect() -> asyncpg.Connection:
        conn = await asyncpg.connect(owner_url)
        conns.append(conn)
        await conn.execute(f"SET lc_messages = '{language}'")
        return conn

    await connect()

    async def run(sql: str, *args: Any, timeout_ms: int = 200) -> asyncpg.exceptions.LockNotAvailableError:
        conn = await connect()
        async with conn.transaction():
            await conn.execute(f"SET LOCAL lock_timeout = '{timeout_ms}ms'")
            with pytest.raises(asyncpg.exceptions.LockNotAvailableError) as caught:
                await conn.fetchval(sql, *args)
        exc = caught.value
        assert exc.args[0] == ENGLISH_TIMEOUT, exc.args
        return exc

    yield run
    for conn in conns:
        await conn.close()


def holder(owner_url: str) -> psycopg.Connection:
    """A transaction holding locks, as a request in flight does."""
    return psycopg.connect(owner_url)


async def test_a_claim_waiting_for_its_key_in_flight(waiter: Waiter, tenant_a: TenantFixture,
                                                     owner_url: str) -> None:
    key = new_key()
    with holder(owner_url) as original:
        original.execute(HOLD_CLAIM, (tenant_a.id, tenant_a.manager_id, key))
        exc = await waiter(CLAIM, tenant_a.id, tenant_a.manager_id, key, b"\x01")
        original.rollback()
    # The first line is the wait itself, which names the relation, not the claim's statement
    # (that is the second line): `while inserting index tuple (0,1) in relation "idempotency_records"`.
    first = exc.context.splitlines()[0]
    assert "idempotency_records" in first and "INSERT INTO" not in first, exc.context
    assert waited_for_key(exc), exc.context


async def test_a_claim_taking_over_an_expired_key_in_flight(waiter: Waiter, tenant_a: TenantFixture,
                                                            owner_url: str, owner_sql: psycopg.Connection) -> None:
    """An expired record is taken over by an update: a second claim waits on that row."""
    key = new_key()
    owner_sql.execute(HOLD_CLAIM.replace("now() + interval '1 hour'", "now() - interval '1 hour'"),
                      (tenant_a.id, tenant_a.manager_id, key))
    with holder(owner_url) as original:
        original.execute("SELECT unifocus_claim(%s, %s, 'POST', '/api/employees', %s, '\\x00', 3600)",
                         (tenant_a.id, tenant_a.manager_id, key))
        exc = await waiter(CLAIM, tenant_a.id, tenant_a.manager_id, key, b"\x01")
        original.rollback()
    assert waited_for_key(exc), exc.context


async def test_a_claim_queued_behind_another_waiter(waiter: Waiter, tenant_a: TenantFixture,
                                                    owner_url: str, owner_sql: psycopg.Connection) -> None:
    """A claim that queues for the key's row lock behind another waiter (here both wait on a
    holder of the expired record's row) has no line of that wait: its first line is the
    claim's own statement, which names the table as well."""
    key = new_key()
    owner_sql.execute(HOLD_CLAIM.replace("now() + interval '1 hour'", "now() - interval '1 hour'"),
                      (tenant_a.id, tenant_a.manager_id, key))
    with holder(owner_url) as original:
        original.execute("SELECT 1 FROM idempotency_records WHERE tenant_id = %s AND key = %s FOR UPDATE",
                         (tenant_a.id, key))
        first = asyncio.create_task(waiter(CLAIM, tenant_a.id, tenant_a.manager_id, key, b"\x01", timeout_ms=1500))
        await asyncio.sleep(0.3)
        exc = await waiter(CLAIM, tenant_a.id, tenant_a.manager_id, key, b"\x02")
        ahead = await first
        original.rollback()
    assert waited_for_key(ahead), ahead.context
    assert "INSERT INTO idempotency_records" in exc.context.splitlines()[0], exc.context
    assert waited_for_key(exc), exc.context


async def test_a_claim_waiting_for_the_tenant_row(waiter: Waiter, tenant_a: TenantFixture, owner_url: str) -> None:
    """The claim's foreign-key check locks the tenant's row: its statement is the innermost
    frame, the claim's insert only a later line. Not the key."""
    with holder(owner_url) as settings_change:
        settings_change.execute("SELECT 1 FROM tenants WHERE tenant_id = %s FOR UPDATE", (tenant_a.id,))
        exc = await waiter(CLAIM, tenant_a.id, tenant_a.manager_id, new_key(), b"\x01")
        settings_change.rollback()
    assert "idempotency_records" in exc.context, exc.context  # on a later line
    assert not waited_for_key(exc), exc.context


async def test_a_write_waiting_for_an_employee_row(waiter: Waiter, tenant_a: TenantFixture, owner_url: str) -> None:
    with holder(owner_url) as batch:
        batch.execute("SELECT 1 FROM employees WHERE tenant_id = %s AND id = %s FOR UPDATE",
                      (tenant_a.id, tenant_a.employee_id))
        exc = await waiter("UPDATE employees SET facts_version = facts_version + 1 WHERE tenant_id = $1 AND id = $2",
                           tenant_a.id, tenant_a.employee_id)
        batch.rollback()
    assert not waited_for_key(exc), exc.context


# The contexts above as a server with `lc_messages = 'de_DE.UTF-8'` words them (PostgreSQL 15's
# de.po; the key's wait and the statement lines were seen on this machine with that locale
# generated, which a test cannot count on): the wait's line and the statements' wrappers are
# translated, the relation names and the SQL text are not.
GERMAN_CONTEXTS = {
    "key in flight": ('beim Einfügen von Indextupel (0,1) in Relation »idempotency_records«\n'
                      'SQL-Anweisung »INSERT INTO idempotency_records AS r (tenant_id, user_id) VALUES ($1, $2)«\n'
                      'PL/pgSQL-Funktion unifocus_claim(uuid,uuid) Zeile 5 bei SQL-Anweisung', True),
    "queued behind another waiter": ('SQL-Anweisung »INSERT INTO idempotency_records AS r (tenant_id) VALUES ($1)«\n'
                                     'PL/pgSQL-Funktion unifocus_claim(uuid) Zeile 5 bei SQL-Anweisung', True),
    "tenant row": ('beim Sperren von Tupel (0,4) in Relation »tenants«\n'
                   'SQL-Anweisung »SELECT 1 FROM ONLY "public"."tenants" x WHERE "tenant_id" '
                   'OPERATOR(pg_catalog.=) $1 FOR KEY SHARE OF x«\n'
                   'SQL-Anweisung »INSERT INTO idempotency_records AS r (tenant_id) VALUES ($1)«', False),
    "employee row": ('beim Aktualisieren von Tupel (0,2) in Relation »employees«', False),
}


@pytest.mark.parametrize("case", sorted(GERMAN_CONTEXTS))
def test_the_rule_reads_the_german_wording_alike(case: str) -> None:
    context, in_flight = GERMAN_CONTEXTS[case]
    exc = asyncpg.exceptions.LockNotAvailableError("Sperrzeitüberschreitung")
    exc.context = context  # type: ignore[attr-defined]
    assert waited_for_key(exc) is in_flight
