"""POST /api/punches in two autocommit statements (db/optimistic.py, migration 0010): a read
with no lock or claim, then one statement that claims, checks the facts' version and writes.

Each race is staged between the two statements: `service.write_statement` builds the second
one, so a wrapper around it changes the database, as another request would, just before it
runs. Whatever happens in between, the answer and the rows are what the classic transaction
gives, and every evaluating write moves the version the check reads."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import psycopg
import pytest
from prometheus_client import REGISTRY

from tests.conftest import Api, TenantFixture, make_settings, make_tenant, tenant_counts
from tests.faults.support import running_app
from tests.idempotency.conftest import expire, record
from tests.idempotency.test_concurrency import check_storm
from tests.punches.test_punches import MONDAY, punch, schedule
from unifocus.audit.verify import verify_url
from unifocus.observability.metrics import PUNCH_WRITE_OUTCOMES
from unifocus.punches import service
from unifocus.settings import Settings

CLOCK_OUT = f"{MONDAY}T17:00:00-05:00"


def outcomes() -> dict[str, float]:
    return {o: REGISTRY.get_sample_value("unifocus_punch_writes_total", {"outcome": o}) or 0.0
            for o in PUNCH_WRITE_OUTCOMES}


def moved(before: dict[str, float]) -> dict[str, float]:
    return {k: v - before[k] for k, v in outcomes().items() if v != before[k]}


def version(owner_sql: psycopg.Connection, t: TenantFixture) -> str:
    row = owner_sql.execute("SELECT xmin::text FROM employees WHERE tenant_id = %s AND id = %s",
                            (t.id, t.employee_id)).fetchone()
    assert row is not None
    return str(row[0])


@pytest.fixture()
def between(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Callable[[Any], None]]]:
    """Callables run once each, in order, between the read and the write (given the claim)."""
    staged: list[Callable[[Any], None]] = []
    build = service.write_statement

    def wrapped(tx: Any, claim: Any, *rest: Any) -> Any:
        while staged:
            staged.pop(0)(claim)
        return build(tx, claim, *rest)

    monkeypatch.setattr(service, "write_statement", wrapped)
    yield staged


async def test_a_punch_is_written_by_the_two_statements(api: Api, tenant_a: TenantFixture,
                                                        owner_sql: psycopg.Connection, owner_url: str) -> None:
    await schedule(api, tenant_a)
    before = outcomes()
    r = await api.req("POST", "/api/punches", tenant_a.employee, key="k-1", json={
        "employeeId": str(tenant_a.employee_id), "type": "clock_in", "timestamp": f"{MONDAY}T09:20:00-05:00"})
    assert r.status_code == 201 and [e["type"] for e in r.json()["exceptions"]] == ["late_arrival"]
    again = await api.req("POST", "/api/punches", tenant_a.employee, key="k-1", json={
        "employeeId": str(tenant_a.employee_id), "type": "clock_in", "timestamp": f"{MONDAY}T09:20:00-05:00"})
    assert again.headers["idempotent-replayed"] == "true" and again.json() == r.json()
    assert moved(before) == {"written": 1, "replayed": 1}
    assert tenant_counts(owner_sql, tenant_a.id, "punches", "exceptions", "idempotency_records") == (1, 1, 1)
    assert (await verify_url(owner_url, tenant_a.id)).ok


async def test_facts_changed_before_the_write_are_read_again(
    api: Api, tenant_a: TenantFixture, owner_sql: psycopg.Connection, between: list[Callable[[Any], None]],
) -> None:
    """The clock_in lands (as another request's classic write would store it, version moved)
    after the clock_out read its facts: the write is refused as stale and the classic write,
    reading again, pairs the two. Without the version check the clock_out would be a stray
    with a missed_punch."""
    await schedule(api, tenant_a)
    clock_in = await punch(api, tenant_a, "clock_in", f"{MONDAY}T09:00:00-05:00")
    assert clock_in.status_code == 201
    owner_sql.execute("UPDATE punches SET voided = true WHERE tenant_id = %s", (tenant_a.id,))

    def unvoid(_claim: Any) -> None:
        owner_sql.execute("UPDATE punches SET voided = false WHERE tenant_id = %s", (tenant_a.id,))
        owner_sql.execute("UPDATE employees SET facts_version = facts_version + 1 WHERE tenant_id = %s AND id = %s",
                          (tenant_a.id, tenant_a.employee_id))

    between.append(unvoid)
    before = outcomes()
    r = await api.req("POST", "/api/punches", tenant_a.employee, key="k-out", json={
        "employeeId": str(tenant_a.employee_id), "type": "clock_out", "timestamp": CLOCK_OUT})
    assert r.status_code == 201, r.text
    assert r.json()["exceptions"] == [] and r.json()["shiftId"] is not None
    assert moved(before) == {"stale": 1}
    assert tenant_counts(owner_sql, tenant_a.id, "punches", "exceptions", "idempotency_records") == (2, 0, 1)
    punch_entries = owner_sql.execute(
        "SELECT count(*) FROM audit_log WHERE tenant_id = %s AND entity = 'Punch'", (tenant_a.id,)).fetchone()
    assert punch_entries == (2,)


async def test_a_key_taken_before_the_write_replays_the_answer_stored_for_it(
    api: Api, tenant_a: TenantFixture, owner_sql: psycopg.Connection, between: list[Callable[[Any], None]],
) -> None:
    """A duplicate of this request committed between the read and the write: nothing is written
    twice, and the answer is the duplicate's, replayed."""

    def store_first(claim: Any) -> None:
        owner_sql.execute(
            "INSERT INTO idempotency_records (tenant_id, user_id, method, path, key, fingerprint, expires_at, "
            "status_code, headers, body) VALUES (%s, %s, 'POST', '/api/punches', 'k-dup', %s, now() + interval '1 h', "
            "201, '{\"content-type\": \"application/json\"}', '{\"stored\": \"first\"}')",
            (tenant_a.id, tenant_a.employee_user_id, claim.fingerprint))

    between.append(store_first)
    before = outcomes()
    r = await api.req("POST", "/api/punches", tenant_a.employee, key="k-dup", json={
        "employeeId": str(tenant_a.employee_id), "type": "clock_in", "timestamp": f"{MONDAY}T09:00:00-05:00"})
    assert r.status_code == 201 and r.json() == {"stored": "first"}
    assert r.headers["idempotent-replayed"] == "true"
    assert moved(before) == {"key_taken": 1}
    assert tenant_counts(owner_sql, tenant_a.id, "punches", "audit_log") == (0, 0)


async def test_an_original_still_in_flight_answers_409_after_the_wait(
    owner_url: str, tmp_path_factory: pytest.TempPathFactory, owner_sql: psycopg.Connection,
    between: list[Callable[[Any], None]],
) -> None:
    """The key's original holds its claim past the wait: 409 with Retry-After, as the classic
    write answers, and nothing is written."""
    t = make_tenant(owner_url, make_settings(owner_url, tmp_path_factory.mktemp("t")))
    quick = make_settings(owner_url, tmp_path_factory.mktemp("quick"), idempotency_wait_seconds=0.3)
    holder = psycopg.connect(owner_url)
    try:
        def hold(claim: Any) -> None:
            holder.execute(
                "INSERT INTO idempotency_records (tenant_id, user_id, method, path, key, fingerprint, expires_at) "
                "VALUES (%s, %s, 'POST', '/api/punches', 'k-held', %s, now() + interval '1 h')",
                (t.id, t.employee_user_id, claim.fingerprint))

        between.append(hold)
        async with running_app(quick) as (_app, client):
            r = await Api(client).req("POST", "/api/punches", t.employee, key="k-held", json={
                "employeeId": str(t.employee_id), "type": "clock_in", "timestamp": f"{MONDAY}T09:00:00-05:00"})
        assert r.status_code == 409 and r.headers["retry-after"] == "1", r.text
    finally:
        holder.rollback()
        holder.close()
    assert tenant_counts(owner_sql, t.id, "punches", "idempotency_records", "audit_log") == (0, 0, 0)


async def test_a_busy_employee_row_is_503_not_a_key_in_progress(
    owner_url: str, tmp_path_factory: pytest.TempPathFactory, owner_sql: psycopg.Connection,
) -> None:
    """A keyed punch with a key never used before, while another transaction holds the
    employee's row past the wait (a long offline batch, the sweep): 503 with Retry-After,
    whichever path writes it: the two statements, the classic write a punch out of order
    falls back to, or the classic write alone. Not 409 `idempotency-request-in-progress`: no
    request with that key is in flight. Nothing is kept for the key, so each retry writes
    its punch once."""
    t = make_tenant(owner_url, make_settings(owner_url, tmp_path_factory.mktemp("t")))
    quick = make_settings(owner_url, tmp_path_factory.mktemp("quick"), idempotency_wait_seconds=0.3)
    classic = make_settings(owner_url, tmp_path_factory.mktemp("classic"), idempotency_wait_seconds=0.3,
                            optimistic_punch_write=False)

    def body(kind: str, at: str) -> dict[str, Any]:
        return {"employeeId": str(t.employee_id), "type": kind, "timestamp": f"{MONDAY}T{at}:00-05:00"}

    cases = [  # (app, key, punch)
        (quick, "k-out-of-order", body("clock_in", "09:00")),  # before the stored clock_out
        (quick, "k-in-order", body("break_start", "18:00")),
        (classic, "k-classic", body("break_end", "18:30")),
    ]
    async with running_app(quick) as (_app, client):
        assert (await Api(client).req("POST", "/api/punches", t.employee, json=body("clock_out", "17:00"))
                ).status_code == 201
    holder = psycopg.connect(owner_url)
    try:
        holder.execute("SELECT 1 FROM employees WHERE tenant_id = %s AND id = %s FOR UPDATE", (t.id, t.employee_id))
        for settings, key, sent in cases:
            async with running_app(settings) as (_app, client):
                r = await Api(client).req("POST", "/api/punches", t.employee, key=key, json=sent)
            assert r.status_code == 503, (key, r.text)
            assert r.json()["type"].endswith("/service-unavailable") and r.headers["retry-after"] == "1", r.text
    finally:
        holder.rollback()
        holder.close()
    assert tenant_counts(owner_sql, t.id, "punches", "idempotency_records") == (1, 0)
    for settings, key, sent in cases:
        async with running_app(settings) as (_app, client):
            r = await Api(client).req("POST", "/api/punches", t.employee, key=key, json=sent)
        assert r.status_code == 201 and "idempotent-replayed" not in r.headers, (key, r.text)
    assert tenant_counts(owner_sql, t.id, "punches", "idempotency_records") == (4, 3)


async def test_every_evaluating_write_moves_the_version(
    api: Api, tenant_a: TenantFixture, owner_sql: psycopg.Connection, owner_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """What the write's check compares: each write that changes an employee's facts must
    leave a new row version, or a two-statement write that read before it would not notice."""
    seen = version(owner_sql, tenant_a)
    steps: dict[str, bool] = {}

    def step(name: str) -> None:
        nonlocal seen
        now = version(owner_sql, tenant_a)
        steps[name] = now != seen
        seen = now

    await schedule(api, tenant_a)
    step("schedule created")
    classic = make_settings(owner_url, tmp_path_factory.mktemp("classic"), optimistic_punch_write=False)
    async with running_app(classic) as (_app, client):
        first = await punch(Api(client), tenant_a, "clock_in", f"{MONDAY}T09:00:00-05:00")
    step("classic punch")
    await punch(api, tenant_a, "clock_out", CLOCK_OUT)
    step("two-statement punch")
    r = await api.req("POST", "/api/punches/batch", tenant_a.employee, json={"punches": [{
        "employeeId": str(tenant_a.employee_id), "type": "clock_in", "timestamp": f"{MONDAY}T18:00:00-05:00",
        "device": "d", "clientPunchId": "b1"}]})
    assert r.status_code == 200
    step("batch item")
    void = await api.req("DELETE", f"/api/punches/{first.json()['id']}?reason=test", tenant_a.manager)
    assert void.status_code == 204
    step("void")
    patch = await api.req("PATCH", f"/api/employees/{tenant_a.employee_id}", tenant_a.manager,
                          json={"timezone": "America/Chicago"})
    assert patch.status_code == 200, patch.text
    step("employee time zone")
    assert steps == dict.fromkeys(steps, True) and len(steps) == 6


async def test_the_classic_write_alone_gives_the_same_answers(
    owner_url: str, tmp_path_factory: pytest.TempPathFactory, settings: Settings, owner_sql: psycopg.Connection,
) -> None:
    """`UNIFOCUS_OPTIMISTIC_PUNCH_WRITE=false`: every punch takes the transaction; nothing is
    counted as a two-statement outcome."""
    t = make_tenant(owner_url, settings)
    classic = make_settings(owner_url, tmp_path_factory.mktemp("classic-only"), optimistic_punch_write=False)
    before = outcomes()
    async with running_app(classic) as (_app, client):
        api = Api(client)
        await schedule(api, t)
        key = f"k-{uuid.uuid4()}"
        body = {"employeeId": str(t.employee_id), "type": "clock_in", "timestamp": f"{MONDAY}T09:20:00-05:00"}
        r = await api.req("POST", "/api/punches", t.employee, key=key, json=body)
        again = await api.req("POST", "/api/punches", t.employee, key=key, json=body)
    assert r.status_code == 201 and [e["type"] for e in r.json()["exceptions"]] == ["late_arrival"]
    assert again.json() == r.json() and again.headers["idempotent-replayed"] == "true"
    assert moved(before) == {}
    assert tenant_counts(owner_sql, t.id, "punches", "exceptions") == (1, 1)


async def test_a_retry_storm_of_one_punch_writes_it_once(
    api: Api, tenant_a: TenantFixture, owner_sql: psycopg.Connection, owner_url: str,
) -> None:
    """50 copies of one keyed punch at once: every copy reads before any writes, so all but
    one find the key taken at the write (or the answer stored, if they read late) and get the
    original answer, replayed; none writes a second punch or audit entry."""
    await schedule(api, tenant_a)
    body = {"employeeId": str(tenant_a.employee_id), "type": "clock_in", "timestamp": f"{MONDAY}T09:20:00-05:00"}
    before = outcomes()
    responses = await asyncio.gather(*(
        api.req("POST", "/api/punches", tenant_a.employee, key="k-storm", json=body) for _ in range(50)))
    original = check_storm(list(responses))
    assert [e["type"] for e in original.json()["exceptions"]] == ["late_arrival"]
    counted = moved(before)
    # the other 49: the stored answer found by the read, or the key found taken by the write
    assert counted.get("written") == 1 and counted.get("replayed", 0) + counted.get("key_taken", 0) == 49, counted
    assert tenant_counts(owner_sql, tenant_a.id, "punches", "exceptions", "idempotency_records") == (1, 1, 1)
    punch_entries = owner_sql.execute(
        "SELECT count(*) FROM audit_log WHERE tenant_id = %s AND entity = 'Punch'", (tenant_a.id,)).fetchone()
    assert punch_entries == (1,)
    assert (await verify_url(owner_url, tenant_a.id)).ok


async def test_a_failing_audit_insert_writes_nothing_and_the_retry_writes_once(
    app_client: tuple[object, httpx.AsyncClient], tenant_a: TenantFixture, owner_sql: psycopg.Connection,
) -> None:
    """The audit entry is in the write statement: when it cannot be written, neither is the
    punch nor the key's record (a 500, counted as an audit failure), and the retry with the
    same key writes the punch once."""
    transport = httpx.ASGITransport(app=app_client[0], raise_app_exceptions=False)  # type: ignore[arg-type]
    suffix = uuid.uuid4().hex[:8]
    body = {"employeeId": str(tenant_a.employee_id), "type": "clock_in", "timestamp": f"{MONDAY}T09:00:00-05:00"}
    failures = REGISTRY.get_sample_value("unifocus_audit_write_failures_total") or 0.0
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        api = Api(client)
        owner_sql.execute(f"CREATE FUNCTION fail_punch_audit_{suffix}() RETURNS trigger LANGUAGE plpgsql AS $$ "
                          "BEGIN RAISE EXCEPTION 'audit sink refused the entry'; END $$")
        owner_sql.execute(f"CREATE TRIGGER zz_fail_punch_audit_{suffix} BEFORE INSERT ON audit_log FOR EACH ROW "
                          f"WHEN (NEW.tenant_id = '{tenant_a.id}') EXECUTE FUNCTION fail_punch_audit_{suffix}()")
        try:
            r = await api.req("POST", "/api/punches", tenant_a.employee, key="k-audit", json=body)
            assert r.status_code == 500 and "audit sink" not in r.text
            assert tenant_counts(owner_sql, tenant_a.id, "punches", "idempotency_records", "audit_log") == (0, 0, 0)
            assert (REGISTRY.get_sample_value("unifocus_audit_write_failures_total") or 0.0) == failures + 1
        finally:
            owner_sql.execute(f"DROP TRIGGER zz_fail_punch_audit_{suffix} ON audit_log")
            owner_sql.execute(f"DROP FUNCTION fail_punch_audit_{suffix}()")
        again = await api.req("POST", "/api/punches", tenant_a.employee, key="k-audit", json=body)
        assert again.status_code == 201 and "idempotent-replayed" not in again.headers, again.text
    # the punch (unscheduled: no schedule here) and its exception, each with its audit entry
    assert tenant_counts(owner_sql, tenant_a.id, "punches", "exceptions", "idempotency_records",
                         "audit_log") == (1, 1, 1, 2)


async def test_an_expired_key_is_a_new_request_on_the_two_statement_write(
    api: Api, tenant_a: TenantFixture, owner_sql: psycopg.Connection
) -> None:
    """Past its window a key is free again: a punch sent with it is written, not replayed nor
    refused as a reuse of the key with another body, and the key's record is the new answer."""
    before = outcomes()
    first = await api.req("POST", "/api/punches", tenant_a.employee, key="k-expiring", json={
        "employeeId": str(tenant_a.employee_id), "type": "clock_in", "timestamp": f"{MONDAY}T09:00:00-05:00"})
    assert first.status_code == 201, first.text
    expire(owner_sql, tenant_a.id, "k-expiring")
    second = await api.req("POST", "/api/punches", tenant_a.employee, key="k-expiring", json={
        "employeeId": str(tenant_a.employee_id), "type": "clock_out", "timestamp": CLOCK_OUT})
    assert second.status_code == 201, second.text
    assert "idempotent-replayed" not in second.headers
    assert second.json()["id"] != first.json()["id"]
    assert moved(before) == {"written": 2}
    assert tenant_counts(owner_sql, tenant_a.id, "punches", "idempotency_records") == (2, 1)
    stored = record(owner_sql, tenant_a.id, "k-expiring")
    assert stored is not None and bytes(stored[1]) == second.content
