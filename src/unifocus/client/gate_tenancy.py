"""The tenancy and audit gates of `unifocus gate verify`."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any

from unifocus.client import models as m
from unifocus.client.errors import ApiError, NotFound
from unifocus.client.gate import Context, Write
from unifocus.client.report import Row


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def _now() -> datetime:
    return datetime.now(UTC).replace(second=0, microsecond=0)


async def _setup(ctx: Context, label: str) -> tuple[m.Employee, m.Schedule, m.PunchCreated, m.TimeException | None]:
    """In tenant A: a UTC employee, a schedule with a shift in progress, and a clock_out with
    nothing open (accepted, flagged missed_punch). Every write is recorded for the audit gate."""
    a, now = ctx.a, _now()
    start = now - timedelta(hours=2)
    rid = ctx.rid(f"{label}-emp")
    emp = await a.create_employee({"firstName": "Gate", "lastName": f"{label}-{ctx.run}", "timezone": "UTC"},
                                  request_id=rid)
    ctx.writes.append(Write(rid, "Employee", emp["id"], "created"))
    rid = ctx.rid(f"{label}-sched")
    sched = await a.create_schedule({
        "employeeId": emp["id"], "name": f"gate {ctx.run}",
        "startDate": (start.date() - timedelta(days=1)).isoformat(),
        "endDate": (start.date() + timedelta(days=1)).isoformat(),
        "shifts": [{"dayOfWeek": start.isoweekday(), "startTime": start.strftime("%H:%M"),
                    "endTime": (start + timedelta(hours=4)).strftime("%H:%M")}],
    }, request_id=rid)
    ctx.writes.append(Write(rid, "Schedule", sched["id"], "created"))
    rid = ctx.rid(f"{label}-punch")
    punch = await a.create_punch({"employeeId": emp["id"], "type": "clock_out", "timestamp": _iso(now)},
                                 request_id=rid)
    ctx.writes.append(Write(rid, "Punch", punch["id"], "created"))
    raised = punch["exceptions"] or [x async for x in a.iter_exceptions(employee_id=emp["id"])]
    return emp, sched, punch, (raised[0] if raised else None)


async def _outcome(aw: Awaitable[Any]) -> str:
    try:
        await aw
    except NotFound:
        return "404"
    except ApiError as exc:
        return f"{exc.status} {exc.slug}"
    return "succeeded"


async def tenancy(ctx: Context, row: Row) -> None:
    a, b = ctx.a, ctx.b
    emp, sched, punch, exc = await _setup(ctx, "Tenancy")
    row.check(exc is not None, f"tenant A: employee {emp['id']}, schedule {sched['id']}, punch {punch['id']}, "
              f"exception {exc['type'] + ' ' + exc['id'] if exc else None}")
    xid = exc["id"] if exc else "00000000-0000-0000-0000-000000000000"
    shift = sched["shifts"][0]
    now = _now()

    def rid() -> str:
        ctx.b_request_ids.append(ctx.rid("b"))
        return ctx.b_request_ids[-1]

    attempts: dict[str, Awaitable[Any]] = {
        "get employee": b.get_employee(emp["id"]),
        "patch employee": b.update_employee(emp["id"], {"lastName": "Hijacked"}, request_id=rid()),
        "delete employee": b.delete_employee(emp["id"], request_id=rid()),
        "get schedule": b.get_schedule(sched["id"]),
        "list shifts": b.list_shifts(sched["id"]),
        "get shift": b.get_shift(sched["id"], shift["id"]),
        "add shift": b.add_shift(sched["id"], {"dayOfWeek": 7, "startTime": "01:00", "endTime": "02:00"},
                                 request_id=rid()),
        "delete shift": b.delete_shift(sched["id"], shift["id"], request_id=rid()),
        "delete schedule": b.delete_schedule(sched["id"], request_id=rid()),
        "get punch": b.get_punch(punch["id"]),
        "void punch": b.void_punch(punch["id"], "gate: cross-tenant void", request_id=rid()),
        "get exception": b.get_exception(xid),
        "resolve exception": b.resolve_exception(xid, "rejected", "gate", request_id=rid()),
        "punch for A's employee": b.create_punch({"employeeId": emp["id"], "type": "clock_in",
                                                  "timestamp": _iso(now)}, request_id=rid()),
        "schedule for A's employee": b.create_schedule({"employeeId": emp["id"], "startDate": "2030-01-01",
                                                        "endDate": "2030-01-02"}, request_id=rid()),
        "timesheet of A's employee": b.get_timesheet(now.date(), now.date(), employee_id=emp["id"]),
    }
    outcomes = {name: await _outcome(aw) for name, aw in attempts.items()}
    bad = {k: v for k, v in outcomes.items() if v != "404"}
    row.check(not bad, f"{len(outcomes) - len(bad)}/{len(outcomes)} operations by B on A's ids answered 404"
              + (f"; NOT 404: {bad}" if bad else ""))

    a_ids = {emp["id"], sched["id"], punch["id"], xid, shift["id"]}
    leaked: list[str] = []
    counts: dict[str, int] = {}
    listings: dict[str, Any] = {
        "employees": b.iter_employees(page_size=500), "schedules": b.iter_schedules(page_size=500),
        "punches": b.iter_punches(page_size=500), "exceptions": b.iter_exceptions(page_size=500),
        "users": b.iter_users(page_size=500), "audit-logs": b.iter_audit_logs(page_size=500),
    }
    for name, items in listings.items():
        rows = [x async for x in items]
        counts[name] = len(rows)
        for x in rows:
            ids = {str(v) for v in x.values() if isinstance(v, str)}
            if ids & a_ids or x.get("tenantId", ctx.tenant_b) != ctx.tenant_b:
                leaked.append(f"{name}:{x.get('id')}")
    filtered = await b.list_punches(employee_id=emp["id"])
    row.check(not leaked and not filtered["items"],
              f"B's lists ({counts}) and B's punches?employeeId=<A's> ({len(filtered['items'])}) hold none of A's rows"
              + (f"; LEAKED {leaked}" if leaked else ""))

    batch = await b.create_punches_batch([{"clientPunchId": f"gate-{ctx.run}", "employeeId": emp["id"],
                                           "type": "clock_in", "timestamp": _iso(now), "device": "gate"}],
                                         request_id=rid())
    result = batch["results"][0]
    row.check(result["status"] == "rejected" and not result.get("punch"),
              f"B's batch naming A's employee: {result['status']} ({result.get('error')})")

    after_emp, after_punch, after_sched = (await a.get_employee(emp["id"]), await a.get_punch(punch["id"]),
                                           await a.get_schedule(sched["id"]))
    after_exc = await a.get_exception(xid) if exc else None
    unchanged = (after_emp == emp and after_punch["voided"] is False and len(after_sched["shifts"]) == 1
                 and (after_exc is None or exc is None or after_exc["status"] == exc["status"]))
    punches_a = [p async for p in a.iter_punches(employee_id=emp["id"])]
    row.check(unchanged and len(punches_a) == 1,
              f"A's rows unchanged after B's attempts (employee, punch not voided, 1 shift, exception "
              f"{after_exc['status'] if after_exc else None}, {len(punches_a)} punch)")


async def _audit_writes(ctx: Context) -> None:
    """Updates, a resolve, a void, a user and a delete, each with its own X-Request-ID."""
    a = ctx.a
    emp, _, punch, exc = await _setup(ctx, "Audit")
    rid = ctx.rid("audit-patch")
    await a.update_employee(emp["id"], {"lastName": f"Audit-{ctx.run}-renamed"}, request_id=rid)
    ctx.writes.append(Write(rid, "Employee", emp["id"], "updated"))
    if exc is not None:
        rid = ctx.rid("audit-resolve")
        await a.resolve_exception(exc["id"], "rejected", "gate verify", request_id=rid)
        ctx.writes.append(Write(rid, "Exception", exc["id"], "rejected"))
    rid = ctx.rid("audit-void")
    await a.void_punch(punch["id"], "gate verify", request_id=rid)
    ctx.writes.append(Write(rid, "Punch", punch["id"], "voided"))
    rid = ctx.rid("audit-user")
    user = await a.create_user({"email": f"gate-{ctx.run}@example.com", "role": "employee"}, request_id=rid)
    ctx.writes.append(Write(rid, "User", user["id"], "created"))
    rid = ctx.rid("audit-role")
    await a.update_user(user["id"], {"role": "manager"}, request_id=rid)
    ctx.writes.append(Write(rid, "User", user["id"], "updated"))
    rid = ctx.rid("audit-delete")
    await a.delete_employee(emp["id"], request_id=rid)
    ctx.writes.append(Write(rid, "Employee", emp["id"], "deleted"))


def _changes_ok(w: Write, entry: m.AuditLogEntry) -> bool:
    changes = entry.get("changes") or {}
    before, after = changes.get("before"), changes.get("after")
    if w.action == "created":
        return before is None and isinstance(after, dict) and bool(after)
    return isinstance(before, dict) and isinstance(after, dict) and before != after


async def audit(ctx: Context, row: Row) -> None:
    await _audit_writes(ctx)
    since = ctx.started - timedelta(minutes=5)
    entries = [e async for e in ctx.a.iter_audit_logs(start=since, page_size=500)]
    found, missing = 0, []
    for w in ctx.writes:
        match = [e for e in entries if e.get("requestId") == w.request_id and e["entityId"] == w.entity_id
                 and e["entity"] == w.entity and e["action"] == w.action]
        if len(match) == 1 and _changes_ok(w, match[0]):
            found += 1
        else:
            missing.append(f"{w.entity}.{w.action} {w.entity_id} req {w.request_id}: {len(match)} entries")
    row.check(bool(ctx.writes) and not missing,
              f"{found}/{len(ctx.writes)} writes of the gate found in GET /api/audit-logs with their X-Request-ID "
              "and before/after" + (f"; MISSING {missing}" if missing else ""))
    once = {i: sum(1 for e in entries if e["entityId"] == i and e["action"] == "created") for i in ctx.audited_once}
    row.check(bool(once) and all(n == 1 for n in once.values()),
              f"idempotent replays and the retry storm audited once: {sorted(once.values())}")
    b_entries = [e async for e in ctx.b.iter_audit_logs(start=since, page_size=500)]
    refused = set(ctx.b_request_ids)
    stray = [e["id"] for e in entries + b_entries if e.get("requestId") in refused]
    row.check(not stray, f"B's {len(refused)} refused writes left no audit entry in either tenant"
              + (f"; FOUND {stray}" if stray else ""))
    other = [e["id"] for e in entries if e["tenantId"] != ctx.tenant_a]
    row.check(not other, f"all {len(entries)} entries of A's log carry tenant A")
