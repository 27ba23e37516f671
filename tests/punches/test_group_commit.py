"""Group commit (db/groupcommit.py, migration 0012): punch writes that become ready while
another of their tenant is in flight are written together, in one statement.

Through the app, a group is staged by holding the first write in flight (`Gate`) until the
others have queued behind it; then they go as one `unifocus_write_punches`. Whatever a group
holds (fresh punches, two of one employee, a key twice, an item that makes the statement
fail), the answers and rows are those of the same requests written one by one."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import asyncpg
import httpx
import psycopg
import pytest
from prometheus_client import REGISTRY

from tests.conftest import Api, TenantFixture, make_settings, make_tenant, tenant_counts
from tests.faults.support import running_app
from tests.idempotency.test_concurrency import check_storm
from tests.punches.test_punches import MONDAY
from tests.punches.test_two_statement_write import moved, outcomes
from unifocus.audit.verify import verify_url
from unifocus.db import optimistic
from unifocus.db.groupcommit import GROUP_FAILED, GroupCommit
from unifocus.db.pool import UNAVAILABLE
from unifocus.errors import ServiceUnavailable
from unifocus.punches import group_write, routes
from unifocus.settings import Settings


class Gate:
    """Holds the first write sent alone until released; records the size of every group."""

    def __init__(self) -> None:
        self.held = asyncio.Event()
        self.release = asyncio.Event()
        self.groups: list[int] = []
        self.before_release: list[Callable[[], None]] = []  # run once everything has queued

    def wrap(self, alone: Any) -> Any:
        async def one(conn: Any, statement: Any) -> str:
            if not self.held.is_set():
                self.held.set()
                await self.release.wait()
            return str(await alone(conn, statement))
        return one

    async def many(self, conn: Any, statements: list[Any]) -> list[str]:
        self.groups.append(len(statements))
        return await group_write.write_many(conn, statements)


@pytest.fixture()
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[Gate]:
    g = Gate()
    monkeypatch.setattr(optimistic, "_alone", g.wrap(optimistic._alone))
    monkeypatch.setattr(routes, "GROUPED", optimistic.Grouped(group_write.lane, g.many))
    yield g
    g.release.set()


async def until_queued(app: Any, n: int) -> None:
    """Wait until `n` writes queue behind the write in flight."""
    commit: GroupCommit = app.state.db.group_commit
    for _ in range(1000):
        if commit.queued() == n:
            break
        await asyncio.sleep(0.01)
    assert commit.queued() == n


async def grouped(app: Any, gate: Gate, first: Any, rest: list[Any]) -> list[httpx.Response]:
    """Send `first` and hold its write in flight until every request of `rest` has queued
    behind it; then release: `rest` goes as one group. Answers in the order given."""
    head = asyncio.ensure_future(first)
    await asyncio.wait_for(gate.held.wait(), 10)
    tail = [asyncio.ensure_future(r) for r in rest]
    await until_queued(app, len(rest))
    for step in gate.before_release:
        step()
    gate.release.set()
    return list(await asyncio.gather(head, *tail))


async def employees(api: Api, t: TenantFixture, n: int) -> list[str]:
    """`n` new employees of `t`, each with a 09:00-17:00 shift on Mondays of March 2026."""
    ids = []
    for i in range(n):
        r = await api.req("POST", "/api/employees", t.manager, json={"firstName": f"G{i}", "lastName": "Group"})
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
        s = await api.req("POST", "/api/schedules", t.manager, json={
            "employeeId": ids[-1], "startDate": "2026-03-01", "endDate": "2026-03-31",
            "shifts": [{"dayOfWeek": 1, "startTime": "09:00", "endTime": "17:00"}]})
        assert s.status_code == 201, s.text
    return ids


def clock(api: Api, t: TenantFixture, employee: str, kind: str, at: str, key: str | None = None,
          **extra: object) -> Any:
    return api.req("POST", "/api/punches", t.manager, key=key,
                   json={"employeeId": employee, "type": kind, "timestamp": f"{MONDAY}T{at}-05:00", **extra})


def groups_metric() -> tuple[float, float]:
    return (REGISTRY.get_sample_value("unifocus_write_groups_total") or 0.0,
            REGISTRY.get_sample_value("unifocus_write_group_items_total") or 0.0)


async def test_writes_queued_behind_one_in_flight_are_written_in_one_statement(
    app_client: tuple[Any, httpx.AsyncClient], api: Api, tenant_a: TenantFixture, gate: Gate,
    owner_sql: psycopg.Connection, owner_url: str,
) -> None:
    """Five punches of five employees, three of them late (each raises its own exception):
    one statement writes them all, each answer is its own punch with its own exceptions, a
    retry of each replays it, and the audit chain verifies."""
    emps = await employees(api, tenant_a, 6)
    before, groups_before = outcomes(), groups_metric()
    times = ["09:00:00", "09:20:00", "09:00:00", "09:31:00", "09:45:00"]
    responses = await grouped(app_client[0], gate, clock(api, tenant_a, emps[0], "clock_in", "09:00:00", key="g-0"),
                              [clock(api, tenant_a, e, "clock_in", at, key=f"g-{i + 1}")
                               for i, (e, at) in enumerate(zip(emps[1:], times, strict=True))])
    assert [r.status_code for r in responses] == [201] * 6, [r.text for r in responses]
    assert gate.groups == [5]
    assert moved(before) == {"written": 6}
    groups_after = groups_metric()
    assert (groups_after[0] - groups_before[0], groups_after[1] - groups_before[1]) == (1, 5)
    for r, e, at in zip(responses[1:], emps[1:], times, strict=True):
        body = r.json()
        assert body["employeeId"] == e
        assert datetime.fromisoformat(body["timestamp"]) == datetime.fromisoformat(f"{MONDAY}T{at}-05:00")
        assert [x["type"] for x in body["exceptions"]] == ([] if at == "09:00:00" else ["late_arrival"])
        for x in body["exceptions"]:
            row = owner_sql.execute("SELECT employee_id::text, punch_id::text FROM exceptions WHERE id = %s",
                                    (x["id"],)).fetchone()
            assert row == (e, body["id"])
    assert tenant_counts(owner_sql, tenant_a.id, "punches", "exceptions", "idempotency_records") == (6, 3, 6)
    for i, (r, e, at) in enumerate(zip(responses[1:], emps[1:], times, strict=True)):
        again = await clock(api, tenant_a, e, "clock_in", at, key=f"g-{i + 1}")
        assert again.headers["idempotent-replayed"] == "true" and again.content == r.content
    entries = owner_sql.execute(
        "SELECT count(*), count(DISTINCT request_id) FROM audit_log WHERE tenant_id = %s AND entity = 'Punch'",
        (tenant_a.id,)).fetchone()
    assert entries == (6, 6)
    assert (await verify_url(owner_url, tenant_a.id)).ok


async def test_two_punches_of_one_employee_in_a_group_are_paired(
    app_client: tuple[Any, httpx.AsyncClient], api: Api, tenant_a: TenantFixture, gate: Gate,
    owner_sql: psycopg.Connection,
) -> None:
    """A clock_in and its clock_out read their facts before either was written: the group
    writes whichever queued first and finds the other stale (its facts lack the first), so
    the classic write reads again and pairs them. Whatever the order, no missed punch is left
    pending (one raised for a clock_out written first is withdrawn by its clock_in), and each
    key has one claim."""
    emps = await employees(api, tenant_a, 2)
    before = outcomes()
    responses = await grouped(app_client[0], gate, clock(api, tenant_a, emps[0], "clock_in", "09:00:00", key="p-0"),
                              [clock(api, tenant_a, emps[1], "clock_in", "09:00:00", key="p-in"),
                               clock(api, tenant_a, emps[1], "clock_out", "17:00:00", key="p-out")])
    assert [r.status_code for r in responses] == [201, 201, 201], [r.text for r in responses]
    assert gate.groups == [2]
    assert moved(before) == {"written": 2, "stale": 1}
    assert all(r.json()["shiftId"] is not None for r in responses[1:])
    pending = owner_sql.execute("SELECT count(*) FROM exceptions WHERE tenant_id = %s AND employee_id = %s "
                                "AND status = 'pending'", (tenant_a.id, emps[1])).fetchone()
    assert pending == (0,)
    assert tenant_counts(owner_sql, tenant_a.id, "punches", "idempotency_records") == (3, 3)


async def test_a_key_twice_in_a_group_writes_once_and_replays(
    app_client: tuple[Any, httpx.AsyncClient], api: Api, tenant_a: TenantFixture, gate: Gate,
    owner_sql: psycopg.Connection,
) -> None:
    """A retry sent while its original was still queued lands in the same group: the group
    writes the original and finds the key taken for the copy, which replays the stored
    answer."""
    emps = await employees(api, tenant_a, 2)
    before = outcomes()
    responses = await grouped(app_client[0], gate, clock(api, tenant_a, emps[0], "clock_in", "09:00:00", key="k-0"),
                              [clock(api, tenant_a, emps[1], "clock_in", "09:20:00", key="k-twice")
                               for _ in range(2)])
    check_storm(responses[1:])
    assert gate.groups == [2]
    assert moved(before) == {"written": 2, "key_taken": 1}
    assert tenant_counts(owner_sql, tenant_a.id, "punches", "exceptions", "idempotency_records") == (2, 1, 2)


async def test_a_failing_group_sends_every_item_to_the_transaction(
    app_client: tuple[Any, httpx.AsyncClient], api: Api, tenant_a: TenantFixture, gate: Gate,
    owner_sql: psycopg.Connection, owner_url: str,
) -> None:
    """A device's punch stored by someone else after the group's items read their facts: the
    group's insert violates the device-punch unique index, so nothing of the group is
    committed and each item takes the classic write, which answers the device's repeat with
    the stored punch (200) and writes the two others."""
    emps = await employees(api, tenant_a, 4)
    before = outcomes()
    device = {"device": "clock-7", "clientPunchId": "cp-1"}
    stored = uuid.uuid4()

    def store_device_punch() -> None:
        owner_sql.execute(
            "INSERT INTO punches (tenant_id, id, employee_id, type, ts, device, client_punch_id, source, created_by) "
            "VALUES (%s, %s, %s, 'clock_in', %s, 'clock-7', 'cp-1', 'device', %s)",
            (tenant_a.id, stored, emps[1], f"{MONDAY}T09:00:00-05:00", tenant_a.manager_id))

    gate.before_release.append(store_device_punch)
    responses = await grouped(app_client[0], gate, clock(api, tenant_a, emps[0], "clock_in", "09:00:00", key="f-0"),
                              [clock(api, tenant_a, emps[1], "clock_in", "09:00:00", key="f-1", **device),
                               clock(api, tenant_a, emps[2], "clock_in", "09:00:00", key="f-2"),
                               clock(api, tenant_a, emps[3], "clock_in", "09:00:00", key="f-3")])
    assert gate.groups == [3]
    assert moved(before) == {"written": 1, GROUP_FAILED: 3}
    assert [r.status_code for r in responses] == [201, 200, 201, 201], [r.text for r in responses]
    assert responses[1].json()["id"] == str(stored)
    assert tenant_counts(owner_sql, tenant_a.id, "punches", "idempotency_records") == (4, 4)
    assert (await verify_url(owner_url, tenant_a.id)).ok


async def test_one_device_id_for_two_employees_in_a_group_is_two_punches(
    app_client: tuple[Any, httpx.AsyncClient], api: Api, tenant_a: TenantFixture, gate: Gate,
    owner_sql: psycopg.Connection, owner_url: str,
) -> None:
    """A device id is a repeat only for the same employee (migration 0013): one clientPunchId
    sent for two employees in one group is two punches, both stored (201), and the group does
    not fail."""
    emps = await employees(api, tenant_a, 3)
    device = {"device": "clock-9", "clientPunchId": "cp-9"}
    responses = await grouped(app_client[0], gate, clock(api, tenant_a, emps[0], "clock_in", "09:00:00", key="d-0"),
                              [clock(api, tenant_a, emps[1], "clock_in", "09:00:00", key="d-1", **device),
                               clock(api, tenant_a, emps[2], "clock_in", "09:00:00", key="d-2", **device)])
    assert gate.groups == [2]
    assert [r.status_code for r in responses[1:]] == [201, 201], [r.text for r in responses]
    assert [r.json()["employeeId"] for r in responses[1:]] == [str(emps[1]), str(emps[2])]
    stored = owner_sql.execute("SELECT count(*) FROM punches WHERE tenant_id = %s AND device = 'clock-9'",
                               (tenant_a.id,)).fetchone()
    assert stored == (2,)
    assert (await verify_url(owner_url, tenant_a.id)).ok


async def test_one_device_punch_sent_twice_in_a_group_is_stored_once(
    app_client: tuple[Any, httpx.AsyncClient], api: Api, tenant_a: TenantFixture, gate: Gate,
    owner_sql: psycopg.Connection, owner_url: str,
) -> None:
    """A device sends one punch twice at once under two Idempotency-Keys (a device bug). Both
    go in one group; one is stored (201), the other answers it (200), never a 500; the punch
    is stored once and the audit failure count does not move."""
    emps = await employees(api, tenant_a, 2)
    failures = REGISTRY.get_sample_value("unifocus_audit_write_failures_total") or 0.0
    device = {"device": "clock-8", "clientPunchId": "cp-8"}
    responses = await grouped(app_client[0], gate, clock(api, tenant_a, emps[0], "clock_in", "09:00:00", key="e-0"),
                              [clock(api, tenant_a, emps[1], "clock_in", "09:00:00", key="e-1", **device),
                               clock(api, tenant_a, emps[1], "clock_in", "09:00:00", key="e-2", **device)])
    assert gate.groups == [2]
    assert sorted(r.status_code for r in responses[1:]) == [200, 201], [r.text for r in responses]
    assert responses[1].json()["id"] == responses[2].json()["id"]
    stored = owner_sql.execute("SELECT count(*) FROM punches WHERE tenant_id = %s AND device = 'clock-8'",
                               (tenant_a.id,)).fetchone()
    assert stored == (1,)
    assert (REGISTRY.get_sample_value("unifocus_audit_write_failures_total") or 0.0) == failures
    assert (await verify_url(owner_url, tenant_a.id)).ok


async def test_another_tenants_write_never_waits_for_a_group_nor_joins_it(
    app_client: tuple[Any, httpx.AsyncClient], api: Api, tenant_a: TenantFixture, tenant_b: TenantFixture,
    gate: Gate, owner_sql: psycopg.Connection,
) -> None:
    """Lanes are per tenant: while tenant A's write is held in flight with another of A's
    queued behind it, tenant B's punch goes at once, alone, and is answered; A's queued write
    then goes with A's only."""
    a = await employees(api, tenant_a, 2)
    b = await employees(api, tenant_b, 1)
    held = asyncio.ensure_future(clock(api, tenant_a, a[0], "clock_in", "09:00:00", key="t-a0"))
    await asyncio.wait_for(gate.held.wait(), 10)
    queued = asyncio.ensure_future(clock(api, tenant_a, a[1], "clock_in", "09:00:00", key="t-a1"))
    await until_queued(app_client[0], 1)
    other = await asyncio.wait_for(clock(api, tenant_b, b[0], "clock_in", "09:00:00", key="t-b0"), 10)
    assert other.status_code == 201 and not held.done() and not queued.done()
    gate.release.set()
    assert [r.status_code for r in await asyncio.gather(held, queued)] == [201, 201]
    assert gate.groups == []  # A's queued write went alone: B's never joined it
    assert tenant_counts(owner_sql, tenant_a.id, "punches") == (2,)
    assert tenant_counts(owner_sql, tenant_b.id, "punches") == (1,)


async def test_a_storm_split_across_two_processes_writes_each_key_once(
    owner_url: str, settings: Settings, tmp_path_factory: pytest.TempPathFactory, owner_sql: psycopg.Connection,
) -> None:
    """Two app instances (two group commits, as two workers have) on one database, 3
    employees, 12 keys each sent 4 times at once, half through each: groups on both sides
    claim the same keys and lock the same employees. No deadlock, no lost or doubled write:
    one punch per key, every copy answered with it, the chain intact."""
    t = make_tenant(owner_url, settings)
    a = make_settings(owner_url, tmp_path_factory.mktemp("a"))
    b = make_settings(owner_url, tmp_path_factory.mktemp("b"))
    async with running_app(a) as (_a, client_a), running_app(b) as (_b, client_b):
        api_a, api_b = Api(client_a), Api(client_b)
        emps = await employees(api_a, t, 3)
        run = uuid.uuid4().hex[:6]
        sends = []
        for k in range(12):
            at = f"{9 + k // 3:02d}:{(k % 3) * 10:02d}:00"
            for copy in range(4):
                sends.append((k, clock(api_a if copy % 2 else api_b, t, emps[k % 3], "clock_in", at,
                                       key=f"{run}-{k}")))
        responses = await asyncio.gather(*(s for _, s in sends))
    for k in range(12):
        check_storm([r for (key, _), r in zip(sends, responses, strict=True) if key == k])
    assert tenant_counts(owner_sql, t.id, "punches", "idempotency_records") == (12, 12)
    assert (await verify_url(owner_url, t.id)).ok


# --- the lanes themselves: who sends what, and that nobody is left waiting ------------------

class Recorder:
    """`one` and `many` that record what was sent, each send waiting for `go`."""

    def __init__(self, fail_many: BaseException | None = None) -> None:
        self.sent: list[list[str]] = []
        self.go = asyncio.Event()
        self.fail_many = fail_many

    async def one(self, _conn: Any, item: str) -> str:
        self.sent.append([item])
        await self.go.wait()
        return f"{item}:alone"

    async def many(self, _conn: Any, items: list[str]) -> list[str]:
        self.sent.append(items)
        await self.go.wait()
        if self.fail_many is not None:
            raise self.fail_many
        return [f"{item}:grouped" for item in items]


def sends(commit: GroupCommit, rec: Recorder, n: int) -> list[asyncio.Future[str]]:
    """`n` writes w0 .. w{n-1} on lane "t", sent at once."""
    return [asyncio.ensure_future(commit.write("t", None, f"w{i}", rec.one, rec.many)) for i in range(n)]


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_lane_sends_the_first_write_alone_and_the_queued_ones_together() -> None:
    commit, rec = GroupCommit(max_items=3), Recorder()
    tasks = sends(commit, rec, 6)
    await settle()
    assert rec.sent == [["w0"]] and commit.queued() == 5
    rec.go.set()
    assert await asyncio.gather(*tasks) == ["w0:alone", "w1:grouped", "w2:grouped", "w3:grouped",
                                            "w4:grouped", "w5:grouped"]
    assert rec.sent == [["w0"], ["w1", "w2", "w3"], ["w4", "w5"]]  # at most max_items a statement
    assert commit.queued() == 0 and not commit.busy("t")


async def test_lanes_of_different_tenants_do_not_wait_for_each_other() -> None:
    commit, rec = GroupCommit(max_items=8), Recorder()
    a = asyncio.ensure_future(commit.write("tenant-a", None, "a", rec.one, rec.many))
    b = asyncio.ensure_future(commit.write("tenant-b", None, "b", rec.one, rec.many))
    await settle()
    assert rec.sent == [["a"], ["b"]]
    rec.go.set()
    assert await asyncio.gather(a, b) == ["a:alone", "b:alone"]


async def test_a_failing_group_answers_every_item_and_the_lane_goes_on() -> None:
    commit = GroupCommit(max_items=8, unavailable=UNAVAILABLE)
    rec = Recorder(fail_many=asyncpg.exceptions.UniqueViolationError("duplicate key"))
    tasks = sends(commit, rec, 3)
    await settle()
    rec.go.set()
    assert await asyncio.gather(*tasks) == ["w0:alone", GROUP_FAILED, GROUP_FAILED]
    rec.fail_many = None
    assert await commit.write("t", None, "later", rec.one, rec.many) == "later:alone"


async def test_a_group_the_database_cannot_take_answers_503_to_the_others() -> None:
    """The leader's connection broke: it gets the error (its request answers 503 and drops the
    connection); the others get 503 at once rather than waiting on the database again."""
    commit = GroupCommit(max_items=8, unavailable=UNAVAILABLE)
    rec = Recorder(fail_many=ConnectionResetError("server closed the connection"))
    tasks = sends(commit, rec, 3)
    await settle()
    rec.go.set()
    answers = await asyncio.gather(*tasks, return_exceptions=True)
    assert answers[0] == "w0:alone"
    assert isinstance(answers[1], ConnectionResetError) and isinstance(answers[2], ServiceUnavailable)
    assert not commit.busy("t")


async def test_a_write_sent_alone_raises_its_own_error_and_frees_the_lane() -> None:
    commit = GroupCommit(max_items=8)

    async def broken(_conn: Any, _item: str) -> str:
        raise ConnectionResetError("server closed the connection")

    with pytest.raises(ConnectionResetError):
        await commit.write("t", None, "x", broken, Recorder().many)
    assert not commit.busy("t")


async def test_a_cancelled_waiter_is_never_sent_and_a_cancelled_next_leader_passes_the_lead_on() -> None:
    commit, rec = GroupCommit(max_items=8), Recorder()
    queued: list[asyncio.Future[str]] = []

    async def first_then_cancel_the_next() -> str:
        answer = await commit.write("t", None, "w0", rec.one, rec.many)
        queued[0].cancel()  # w1 was just made the next leader: cancelled before it could send
        return answer

    first = asyncio.ensure_future(first_then_cancel_the_next())
    await settle()
    queued += [asyncio.ensure_future(commit.write("t", None, f"w{i}", rec.one, rec.many)) for i in (1, 2, 3)]
    await settle()
    queued[1].cancel()  # w2 gives up while queued
    await settle()
    assert commit.queued() == 2
    rec.go.set()
    assert await first == "w0:alone"
    assert await queued[2] == "w3:alone"
    for cancelled in queued[:2]:
        with pytest.raises(asyncio.CancelledError):
            await cancelled
    assert rec.sent == [["w0"], ["w3"]]
    assert not commit.busy("t")


async def test_a_leader_cancelled_in_flight_answers_its_group_and_frees_the_lane() -> None:
    commit, rec = GroupCommit(max_items=8), Recorder()
    tasks = sends(commit, rec, 3)
    await settle()
    tasks[0].cancel()  # w0 is in flight alone: w1 then leads [w1, w2]
    await settle()
    assert rec.sent == [["w0"], ["w1", "w2"]]
    tasks[1].cancel()  # the group's leader, in flight
    assert await tasks[2] == GROUP_FAILED
    assert not commit.busy("t")
