"""POST /api/punches reads in its first statement and writes in its last (migration 0005,
`record_prefetched`). These tests hold it to what the step-by-step path stored and answered:
the rows, the audit chain, the answer, a device's repeat, and refusals that change nothing."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import psycopg
import pytest

from tests.conftest import Api, TenantFixture, make_settings, make_tenant, tenant_counts
from tests.faults.support import running_app
from tests.punches.test_punches import MONDAY, punch, schedule
from unifocus.audit.verify import verify_url
from unifocus.punches.schemas import Punch, PunchCreate, PunchSource
from unifocus.punches.service import punch_json
from unifocus.settings import Settings


def counts(owner_sql: psycopg.Connection, tenant: uuid.UUID) -> tuple[int, ...]:
    return tenant_counts(owner_sql, tenant, "punches", "exceptions", "audit_log", "idempotency_records")


async def test_the_answer_is_what_is_stored_and_audited(
    api: Api, tenant_a: TenantFixture, owner_sql: psycopg.Connection, owner_url: str
) -> None:
    await schedule(api, tenant_a)
    r = await api.req("POST", "/api/punches", tenant_a.employee, key=f"k-{uuid.uuid4()}", json={
        "employeeId": str(tenant_a.employee_id), "type": "clock_in", "timestamp": f"{MONDAY}T09:21:00.250-05:00",
        "device": "lobby-1", "clientPunchId": "cp-1"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert r.headers["location"] == f"/api/punches/{body['id']}"
    stored = (await api.req("GET", f"/api/punches/{body['id']}", tenant_a.manager)).json()
    assert {k: v for k, v in body.items() if k != "exceptions"} == stored
    assert body["timestamp"] == f"{MONDAY}T14:21:00.250000Z" and body["source"] == "device"
    [exc] = body["exceptions"]
    assert exc == (await api.req("GET", f"/api/exceptions/{exc['id']}", tenant_a.manager)).json()
    assert exc["type"] == "late_arrival" and exc["punchId"] == body["id"]
    assert exc["details"]["minutesLate"] == 22  # 21.25 minutes, rounded up
    # received_at is the transaction's now(), as the column default stamps it on other writes
    row = owner_sql.execute("SELECT received_at, created_by FROM punches WHERE id = %s", (body["id"],)).fetchone()
    assert row is not None and row[1] == tenant_a.employee_user_id
    assert body["receivedAt"] == row[0].astimezone(UTC).isoformat().replace("+00:00", "Z")
    exc_created = owner_sql.execute("SELECT created_at FROM exceptions WHERE id = %s", (exc["id"],)).fetchone()
    assert exc_created is not None and exc_created[0] == row[0]
    audit = owner_sql.execute(
        "SELECT entity, action, entity_id::text, changes->'after' FROM audit_log WHERE tenant_id = %s "
        "AND entity IN ('Punch', 'Exception') ORDER BY chain, seq", (tenant_a.id,)).fetchall()
    assert [(e, a, i) for e, a, i, _ in audit] == [("Punch", "created", body["id"]),
                                                   ("Exception", "created", exc["id"])]
    assert audit[0][3] == stored and audit[1][3] == exc
    assert (await verify_url(owner_url, tenant_a.id)).ok


async def test_a_device_repeat_answers_the_stored_punch_and_writes_nothing(
    api: Api, tenant_a: TenantFixture, owner_sql: psycopg.Connection
) -> None:
    item = {"employeeId": str(tenant_a.employee_id), "type": "clock_in", "timestamp": f"{MONDAY}T09:00:00-05:00",
            "device": "lobby-1", "clientPunchId": "cp-7"}
    first = await api.req("POST", "/api/punches", tenant_a.employee, json=item)
    assert first.status_code == 201, first.text
    before = counts(owner_sql, tenant_a.id)
    again = await api.req("POST", "/api/punches", tenant_a.employee, json=item)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert again.headers["location"] == f"/api/punches/{first.json()['id']}"
    # a repeat names the same employee (migration 0013): an unknown one is not found
    staff = await api.req("POST", "/api/punches", tenant_a.manager, json={**item, "employeeId": str(uuid.uuid4())})
    assert staff.status_code == 404, staff.text
    # another device's id space is its own
    other = await api.req("POST", "/api/punches", tenant_a.employee, json={**item, "device": "lobby-2"})
    assert other.status_code == 201
    assert counts(owner_sql, tenant_a.id)[0] == before[0] + 1


async def test_a_device_id_stored_for_another_employee_does_not_stop_this_punch(
    api: Api, tenant_a: TenantFixture, owner_sql: psycopg.Connection, owner_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """`device` is free text, so anyone can send a kiosk's next clientPunchId first. The
    employee sends their own punch as `kiosk-1` / `cp-1`; the kiosk then sends another
    employee's punch with that id. It must be stored (201) on every write path and in a batch,
    never answered with the employee's punch, and the employee's punch stays theirs. A repeat
    for the same employee is still a repeat (200, the stored punch, nothing written)."""
    other = await api.req("POST", "/api/employees", tenant_a.manager, json={"firstName": "K", "lastName": "Iosk"})
    other_id = other.json()["id"]
    kiosk = {"device": "kiosk-1", "clientPunchId": "cp-1", "type": "clock_in", "timestamp": f"{MONDAY}T09:00:00-05:00"}
    squatted = await api.req("POST", "/api/punches", tenant_a.employee,
                             json={**kiosk, "employeeId": str(tenant_a.employee_id)})
    assert squatted.status_code == 201, squatted.text
    squat_id = squatted.json()["id"]

    theirs = {**kiosk, "employeeId": other_id}
    before = counts(owner_sql, tenant_a.id)
    stored = await api.req("POST", "/api/punches", tenant_a.manager, json=theirs)
    assert stored.status_code == 201, stored.text
    assert stored.json()["employeeId"] == other_id and stored.json()["id"] != squat_id
    assert counts(owner_sql, tenant_a.id)[0] == before[0] + 1
    repeat = await api.req("POST", "/api/punches", tenant_a.manager, json=theirs)
    assert repeat.status_code == 200 and repeat.json()["id"] == stored.json()["id"]

    # The classic write and the batch find the repeat by the same key.
    third = await api.req("POST", "/api/employees", tenant_a.manager, json={"firstName": "T", "lastName": "Hird"})
    classic = make_settings(owner_url, tmp_path_factory.mktemp("classic"), optimistic_punch_write=False)
    async with running_app(classic) as (_app, client):
        fresh = await Api(client).req("POST", "/api/punches", tenant_a.manager,
                                      json={**kiosk, "employeeId": third.json()["id"]})
        again = await Api(client).req("POST", "/api/punches", tenant_a.manager,
                                      json={**kiosk, "employeeId": third.json()["id"]})
    assert fresh.status_code == 201 and again.status_code == 200 and again.json()["id"] == fresh.json()["id"]
    fourth = await api.req("POST", "/api/employees", tenant_a.manager, json={"firstName": "F", "lastName": "Ourth"})
    items = [{**kiosk, "employeeId": fourth.json()["id"]}, {**kiosk, "employeeId": other_id}]
    batch = await api.req("POST", "/api/punches/batch", tenant_a.manager, json={"punches": items})
    results = batch.json()["results"]
    assert [r["status"] for r in results] == ["created", "duplicate"], batch.text
    assert results[1]["punch"]["id"] == stored.json()["id"]
    mine = await api.req("GET", f"/api/punches/{squat_id}", tenant_a.employee)
    assert mine.status_code == 200 and mine.json()["employeeId"] == str(tenant_a.employee_id)


async def test_refusals_change_nothing(
    api: Api, tenant_a: TenantFixture, tenant_b: TenantFixture, owner_sql: psycopg.Connection
) -> None:
    await schedule(api, tenant_a)
    before = counts(owner_sql, tenant_a.id)
    other = await api.req("POST", "/api/employees", tenant_a.manager, json={"firstName": "O", "lastName": "P"})
    before = counts(owner_sql, tenant_a.id)
    ts = f"{MONDAY}T09:30:00-05:00"
    refused = [
        await api.req("POST", "/api/punches", tenant_a.employee, key="k-other", json={
            "employeeId": other.json()["id"], "type": "clock_in", "timestamp": ts}),
        await api.req("POST", "/api/punches", tenant_b.manager, key="k-cross", json={
            "employeeId": str(tenant_a.employee_id), "type": "clock_in", "timestamp": ts}),
        await api.req("POST", "/api/punches", tenant_a.employee, key="k-manual", json={
            "employeeId": str(tenant_a.employee_id), "type": "clock_in", "timestamp": ts, "source": "manual"}),
    ]
    assert [r.status_code for r in refused] == [403, 404, 403]
    assert counts(owner_sql, tenant_a.id) == before
    # the employee lock was released with the refused transactions: the next punch goes through
    ok = await punch(api, tenant_a, "clock_in", ts)
    assert ok.status_code == 201 and [e["type"] for e in ok.json()["exceptions"]] == ["late_arrival"]


async def test_a_punch_that_removes_a_cause_withdraws_in_the_same_write(
    api: Api, tenant_a: TenantFixture, owner_sql: psycopg.Connection, owner_url: str
) -> None:
    await schedule(api, tenant_a)
    out = await punch(api, tenant_a, "clock_out", f"{MONDAY}T17:00:00-05:00")
    [missed] = out.json()["exceptions"]
    assert missed["type"] == "missed_punch"
    # the clock_in it lacked arrives late (out of order): the stray is paired, its exception withdrawn
    r = await punch(api, tenant_a, "clock_in", f"{MONDAY}T09:00:00-05:00")
    assert r.status_code == 201 and r.json()["exceptions"] == []
    got = (await api.req("GET", f"/api/exceptions/{missed['id']}", tenant_a.manager)).json()
    assert got["status"] == "withdrawn"
    assert (await verify_url(owner_url, tenant_a.id)).ok


def test_the_hot_path_serialises_a_punch_as_the_model_does() -> None:
    pid, emp, shift = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    ts = datetime(2026, 3, 2, 14, 6, 0, 120000, tzinfo=UTC)
    received = datetime(2026, 3, 2, 14, 6, 1, tzinfo=UTC)
    for device, cpid, shift_id, shift_date in ((None, None, None, None), ("d", "c", shift, ts.date())):
        body = PunchCreate.model_validate({"employeeId": str(emp), "type": "clock_out",
                                           "timestamp": ts.isoformat(), "device": device, "clientPunchId": cpid})
        model = Punch(id=pid, employee_id=emp, type="clock_out", timestamp=ts, received_at=received, device=device,
                      client_punch_id=cpid, source=PunchSource.device, shift_id=shift_id, shift_date=shift_date,
                      voided=False, void_reason=None)
        fast = punch_json(pid, body, PunchSource.device, ts, received, shift_id, shift_date)
        assert fast == model.model_dump(mode="json", by_alias=True)
        assert list(fast) == list(model.model_dump(mode="json", by_alias=True))


async def test_with_replay_disabled_a_duplicate_runs_again_step_by_step(
    owner_url: str, settings: Settings, tmp_path_factory: pytest.TempPathFactory, owner_sql: psycopg.Connection
) -> None:
    """A deliberately broken deployment (`UNIFOCUS_IDEMPOTENCY_REPLAY_ENABLED=false`, what the
    gate check must catch) runs a duplicate again. The first statement reads nothing for a key
    it did not claim, so the punch reads step by step: a second punch, not a 404."""
    t = make_tenant(owner_url, settings)
    broken = make_settings(owner_url, tmp_path_factory.mktemp("no-replay"), idempotency_replay_enabled=False)
    body = {"employeeId": str(t.employee_id), "type": "clock_in", "timestamp": f"{MONDAY}T09:00:00-05:00"}
    async with running_app(broken) as (_app, client):
        api = Api(client)
        first = await api.req("POST", "/api/punches", t.employee, key="same-key", json=body)
        again = await api.req("POST", "/api/punches", t.employee, key="same-key", json=body)
        # a device repeat is still answered from the stored punch on this path
        device = {**body, "device": "d1", "clientPunchId": "c1"}
        d1 = await api.req("POST", "/api/punches", t.employee, key="device-key", json=device)
        d2 = await api.req("POST", "/api/punches", t.employee, key="device-key", json=device)
    assert (first.status_code, again.status_code) == (201, 201), again.text
    assert first.json()["id"] != again.json()["id"] and "idempotent-replayed" not in again.headers
    assert (d1.status_code, d2.status_code) == (201, 200) and d2.json()["id"] == d1.json()["id"]
    assert counts(owner_sql, t.id)[0] == 3


async def test_concurrent_punches_of_one_employee_see_each_other(
    api: Api, tenant_a: TenantFixture, owner_sql: psycopg.Connection
) -> None:
    """The clock_in and clock_out of a day sent at once: whichever writes second reads the
    first under the employee lock, so the day ends paired (no missed_punch left pending). Reads
    taken before the lock would let both miss each other and leave the clock_out a stray."""
    await schedule(api, tenant_a, days=(1, 2, 3, 4, 5))
    days = ["2026-03-02", "2026-03-03", "2026-03-04", "2026-03-05", "2026-03-06"]
    answers = await asyncio.gather(*(
        punch(api, tenant_a, kind, f"{day}T{hour}-05:00", token=tenant_a.manager)
        for day in days for kind, hour in (("clock_out", "17:00:00"), ("clock_in", "09:00:00"))))
    assert [r.status_code for r in answers] == [201] * 10
    pending = owner_sql.execute(
        "SELECT type, count(*) FROM exceptions WHERE tenant_id = %s AND status = 'pending' GROUP BY type",
        (tenant_a.id,)).fetchall()
    assert pending == []
    paired = owner_sql.execute(
        "SELECT count(*) FROM punches WHERE tenant_id = %s AND shift_id IS NOT NULL", (tenant_a.id,)).fetchone()
    assert paired is not None and paired[0] == 10
