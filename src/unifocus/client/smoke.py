"""`unifocus smoke URL --token T`: the main flows end to end against a running deployment.

It creates a UTC employee with a 4-hour shift that started 2 hours ago, clocks in an hour
late (retrying the clock-in with the same Idempotency-Key: one punch), clocks out early,
approves the late arrival, reads the timesheet and (admin) the audit trail, and finally
deactivates the employee. Every step is a row; the first failure skips the rest.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from unifocus.client import ops
from unifocus.client.models import PunchCreate
from unifocus.client.report import FAIL, SKIP, Row, Timer
from unifocus.client.sync import Client


@dataclass
class State:
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    now: datetime = field(default_factory=lambda: datetime.now(UTC).replace(second=0, microsecond=0))
    role: str = ""
    employee_id: str = ""
    schedule_id: str = ""
    exception_id: str = ""

    @property
    def shift_start(self) -> datetime:
        return self.now - timedelta(hours=2)


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def health(c: Client, s: State, row: Row) -> None:
    h = c.health()
    row.check(h.get("status") == "ok" and {"timestamp", "uptime", "version"} <= h.keys(),
              f"/health status={h.get('status')} version={h.get('version')} uptime={h.get('uptime')}")


def ready(c: Client, s: State, row: Row) -> None:
    r = c.ready()
    row.check(r.get("status") == "ready", f"/ready status={r.get('status')} checks={r.get('checks')}")


def me(c: Client, s: State, row: Row) -> None:
    who = c.me()
    s.role = who["role"]
    row.check(s.role in ("admin", "manager"), f"caller {who['email']} role={s.role} (needs manager or admin)")


def employee(c: Client, s: State, row: Row) -> None:
    emp = c.create_employee({"firstName": "Smoke", "lastName": f"Run-{s.run}", "externalId": f"smoke-{s.run}",
                             "timezone": "UTC"})
    s.employee_id = emp["id"]
    row.check(c.get_employee(emp["id"])["lastName"] == f"Run-{s.run}", f"employee {emp['id']} created and read back")


def schedule(c: Client, s: State, row: Row) -> None:
    start = s.shift_start
    sched = c.create_schedule({"employeeId": s.employee_id, "name": f"smoke {s.run}",
                               "startDate": (start.date() - timedelta(days=1)).isoformat(),
                               "endDate": (start.date() + timedelta(days=1)).isoformat()})
    s.schedule_id = sched["id"]
    shift = c.add_shift(sched["id"], {"dayOfWeek": start.isoweekday(), "startTime": start.strftime("%H:%M"),
                                      "endTime": (start + timedelta(hours=4)).strftime("%H:%M")})
    shifts = c.list_shifts(sched["id"])
    row.check([x["id"] for x in shifts] == [shift["id"]],
              f"schedule {sched['id']} with shift {shift['startTime']}-{shift['endTime']} UTC day {shift['dayOfWeek']}")


def punch_in(c: Client, s: State, row: Row) -> None:
    key = str(uuid.uuid4())
    body: PunchCreate = {"employeeId": s.employee_id, "type": "clock_in",
                         "timestamp": _iso(s.now - timedelta(hours=1))}
    call = ops.create_punch(body, key)
    first, again = c.send(call), c.send(call)
    row.check(first.status == 201, f"clock_in 201 (key {key})")
    row.check(again.replayed and again.content == first.content,
              f"same key again: {again.status}, Idempotent-Replayed={again.headers.get('idempotent-replayed')}, "
              "byte-identical")
    punches = c.list_punches(employee_id=s.employee_id)["items"]
    row.check(len(punches) == 1, f"{len(punches)} punch stored")
    kinds = sorted(x["type"] for x in first.json()["exceptions"])
    row.check("late_arrival" in kinds, f"the clock_in raised {kinds}")


def punch_out(c: Client, s: State, row: Row) -> None:
    p = c.create_punch({"employeeId": s.employee_id, "type": "clock_out",
                        "timestamp": _iso(s.now - timedelta(minutes=1))})
    row.check(c.get_punch(p["id"])["type"] == "clock_out",
              f"clock_out {p['id']} raised {sorted(x['type'] for x in p['exceptions'])}")


def exceptions(c: Client, s: State, row: Row) -> None:
    items = list(c.iter_exceptions(employee_id=s.employee_id, status="pending"))
    late = [x for x in items if x["type"] == "late_arrival"]
    row.check(bool(late), f"pending exceptions: {sorted(x['type'] for x in items)}")
    s.exception_id = late[0]["id"]
    row.note(f"late_arrival details: {late[0]['details']}")


def resolve(c: Client, s: State, row: Row) -> None:
    done = c.resolve_exception(s.exception_id, "approved", "smoke test")
    row.check(done["status"] == "approved" and c.get_exception(s.exception_id)["status"] == "approved",
              f"exception {s.exception_id} approved by {done['resolvedBy']}")


def timesheet(c: Client, s: State, row: Row) -> None:
    sheet = c.get_timesheet(s.shift_start.date(), s.now.date(), employee_id=s.employee_id)
    totals = sheet["totals"]
    row.check(totals["scheduledMinutes"] >= 240 and totals["workedMinutes"] >= 55, f"totals {totals}")
    csv = c.export_timesheets(s.shift_start.date(), s.now.date())
    row.check(f"smoke-{s.run}" in csv or s.employee_id in csv, f"CSV export lists the employee ({len(csv)} bytes)")


def audit(c: Client, s: State, row: Row) -> None:
    if s.role != "admin":
        row.status = SKIP
        row.note("the audit log needs an admin token")
        return
    seen = sorted(f"{e['entity']}.{e['action']}" for e in c.iter_audit_logs(employee_id=s.employee_id))
    want = ["Employee.created", "Exception.approved", "Punch.created", "Punch.created", "Schedule.created",
            "Shift.created"]
    missing = [w for w in want if seen.count(w) < want.count(w)]
    row.check(not missing, f"entries {seen}" + (f"; missing {missing}" if missing else ""))
    row.check(seen.count("Punch.created") == 2, "the replayed clock_in was audited once")


def cleanup(c: Client, s: State, row: Row) -> None:
    if not s.employee_id:
        row.status = SKIP
        row.note("nothing was created")
        return
    c.delete_employee(s.employee_id)
    row.check(c.get_employee(s.employee_id)["active"] is False, f"employee {s.employee_id} deactivated")


STEPS: list[tuple[str, Callable[[Client, State, Row], None]]] = [
    ("health", health), ("ready", ready), ("me", me), ("create employee", employee),
    ("schedule with shift", schedule), ("punch in (idempotent retry)", punch_in), ("punch out", punch_out),
    ("exceptions listed", exceptions), ("resolve exception", resolve), ("timesheet + CSV", timesheet),
    ("audit entries", audit), ("cleanup", cleanup),
]


def run_smoke(client: Client) -> list[Row]:
    state, rows, failed = State(), [], False
    for name, step in STEPS:
        row = Row(name)
        rows.append(row)
        if failed and step is not cleanup:
            row.status = SKIP
            row.note("an earlier step failed")
            continue
        with Timer(row):
            try:
                step(client, state, row)
            except Exception as exc:  # reported as the step's failure
                row.error(exc)
        failed = row.status == FAIL
    return rows
