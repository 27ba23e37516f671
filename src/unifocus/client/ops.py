"""Every operation of the API as a `Call` builder (pure: no I/O). The sync and async clients
run these; their methods have the same names and arguments."""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

from unifocus.client import models as m
from unifocus.client.core import Call, decode_json, decode_none, decode_text, query, read, write

Id = str | UUID
Date = date | str
Instant = datetime | str

# --- health ----------------------------------------------------------------------------------

def health() -> Call[m.Health]:
    return read("/health", decode_json, auth=False)


def ready() -> Call[m.Ready]:
    """Not retried: a 503 `not_ready` is the answer (raised as ServiceUnavailable with the body)."""
    return read("/ready", decode_json, auth=False, retry=False)


def metrics() -> Call[str]:
    return read("/metrics", decode_text, accept="text/plain")


# --- caller and tenant -----------------------------------------------------------------------

def me() -> Call[m.Me]:
    return read("/api/me")


def get_tenant() -> Call[m.Tenant]:
    return read("/api/tenant")


def update_tenant(patch: m.TenantPatch, key: str | None = None, request_id: str | None = None) -> Call[m.Tenant]:
    return write("PATCH", "/api/tenant", patch, key=key, request_id=request_id)


# --- users -----------------------------------------------------------------------------------

def create_user(body: m.UserCreate, key: str | None = None, request_id: str | None = None) -> Call[m.User]:
    return write("POST", "/api/users", body, key=key, request_id=request_id)


def list_users(limit: int | None = None, cursor: str | None = None) -> Call[m.Page[m.User]]:
    return read("/api/users", params=query(limit=limit, cursor=cursor))


def get_user(user_id: Id) -> Call[m.User]:
    return read(f"/api/users/{user_id}")


def update_user(user_id: Id, patch: m.UserPatch, key: str | None = None,
                request_id: str | None = None) -> Call[m.User]:
    return write("PATCH", f"/api/users/{user_id}", patch, key=key, request_id=request_id)


# --- employees -------------------------------------------------------------------------------

def create_employee(body: m.EmployeeCreate, key: str | None = None,
                    request_id: str | None = None) -> Call[m.Employee]:
    return write("POST", "/api/employees", body, key=key, request_id=request_id)


def list_employees(active: bool | None = None, limit: int | None = None,
                   cursor: str | None = None) -> Call[m.Page[m.Employee]]:
    return read("/api/employees", params=query(active=active, limit=limit, cursor=cursor))


def get_employee(employee_id: Id) -> Call[m.Employee]:
    return read(f"/api/employees/{employee_id}")


def update_employee(employee_id: Id, patch: m.EmployeePatch, key: str | None = None,
                    request_id: str | None = None) -> Call[m.Employee]:
    return write("PATCH", f"/api/employees/{employee_id}", patch, key=key, request_id=request_id)


def delete_employee(employee_id: Id, key: str | None = None, request_id: str | None = None) -> Call[None]:
    return write("DELETE", f"/api/employees/{employee_id}", None, decode_none, key=key, request_id=request_id)


# --- schedules and shifts --------------------------------------------------------------------

def create_schedule(body: m.ScheduleCreate, key: str | None = None,
                    request_id: str | None = None) -> Call[m.Schedule]:
    return write("POST", "/api/schedules", body, key=key, request_id=request_id)


def list_schedules(employee_id: Id | None = None, from_date: Date | None = None, to_date: Date | None = None,
                   limit: int | None = None, cursor: str | None = None) -> Call[m.Page[m.Schedule]]:
    params = query(employeeId=employee_id, from_=from_date, to=to_date, limit=limit, cursor=cursor)
    return read("/api/schedules", params=params)


def get_schedule(schedule_id: Id) -> Call[m.Schedule]:
    return read(f"/api/schedules/{schedule_id}")


def delete_schedule(schedule_id: Id, key: str | None = None, request_id: str | None = None) -> Call[None]:
    return write("DELETE", f"/api/schedules/{schedule_id}", None, decode_none, key=key, request_id=request_id)


def add_shift(schedule_id: Id, body: m.ShiftCreate, key: str | None = None,
              request_id: str | None = None) -> Call[m.Shift]:
    return write("POST", f"/api/schedules/{schedule_id}/shifts", body, key=key, request_id=request_id)


def list_shifts(schedule_id: Id, limit: int | None = None, cursor: str | None = None) -> Call[m.Page[m.Shift]]:
    return read(f"/api/schedules/{schedule_id}/shifts", params=query(limit=limit, cursor=cursor))


def get_shift(schedule_id: Id, shift_id: Id) -> Call[m.Shift]:
    return read(f"/api/schedules/{schedule_id}/shifts/{shift_id}")


def delete_shift(schedule_id: Id, shift_id: Id, key: str | None = None,
                 request_id: str | None = None) -> Call[None]:
    return write("DELETE", f"/api/schedules/{schedule_id}/shifts/{shift_id}", None, decode_none,
                 key=key, request_id=request_id)


# --- punches ---------------------------------------------------------------------------------

def create_punch(body: m.PunchCreate, key: str | None = None,
                 request_id: str | None = None) -> Call[m.PunchCreated]:
    return write("POST", "/api/punches", body, key=key, request_id=request_id)


def create_punches_batch(punches: list[m.BatchItem], key: str | None = None,
                         request_id: str | None = None) -> Call[m.BatchResponse]:
    return write("POST", "/api/punches/batch", {"punches": punches}, key=key, request_id=request_id)


def list_punches(employee_id: Id | None = None, start: Instant | None = None, end: Instant | None = None,
                 limit: int | None = None, cursor: str | None = None) -> Call[m.Page[m.Punch]]:
    params = query(employeeId=employee_id, from_=start, to=end, limit=limit, cursor=cursor)
    return read("/api/punches", params=params)


def get_punch(punch_id: Id) -> Call[m.Punch]:
    return read(f"/api/punches/{punch_id}")


def void_punch(punch_id: Id, reason: str, key: str | None = None, request_id: str | None = None) -> Call[None]:
    return write("DELETE", f"/api/punches/{punch_id}", None, decode_none, params={"reason": reason},
                 key=key, request_id=request_id)


# --- exceptions ------------------------------------------------------------------------------

def list_exceptions(status: str | None = None, type: str | None = None, employee_id: Id | None = None,
                    start: Instant | None = None, end: Instant | None = None, limit: int | None = None,
                    cursor: str | None = None) -> Call[m.Page[m.TimeException]]:
    params = query(status=status, type=type, employeeId=employee_id, from_=start, to=end, limit=limit,
                   cursor=cursor)
    return read("/api/exceptions", params=params)


def get_exception(exception_id: Id) -> Call[m.TimeException]:
    return read(f"/api/exceptions/{exception_id}")


def resolve_exception(exception_id: Id, status: m.Resolution, note: str | None = None, key: str | None = None,
                      request_id: str | None = None) -> Call[m.TimeException]:
    body: m.ResolveRequest = {"status": status}
    if note is not None:
        body["note"] = note
    return write("PUT", f"/api/exceptions/{exception_id}/resolve", body, key=key, request_id=request_id)


# --- timesheets ------------------------------------------------------------------------------

def get_timesheet(from_date: Date, to_date: Date, employee_id: Id | None = None) -> Call[m.Timesheet]:
    return read("/api/timesheets", params=query(employeeId=employee_id, from_=from_date, to=to_date))


def export_timesheets(from_date: Date, to_date: Date) -> Call[str]:
    return read("/api/timesheets/export", decode_text, params=query(from_=from_date, to=to_date),
                accept="text/csv")


# --- audit log -------------------------------------------------------------------------------

def list_audit_logs(entity: str | None = None, action: str | None = None, user_id: Id | None = None,
                    employee_id: Id | None = None, start: Instant | None = None, end: Instant | None = None,
                    limit: int | None = None, cursor: str | None = None) -> Call[m.Page[m.AuditLogEntry]]:
    params = query(entity=entity, action=action, userId=user_id, employeeId=employee_id, from_=start, to=end,
                   limit=limit, cursor=cursor)
    return read("/api/audit-logs", params=params)
