"""`Client`: the synchronous client (httpx.Client). Same methods as `AsyncClient`."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any, TypeVar

import httpx

from unifocus.client import models as m
from unifocus.client import ops
from unifocus.client.core import ApiResponse, Call, RetryPolicy, next_delay, result
from unifocus.client.ops import Date, Id, Instant

T = TypeVar("T")


class Client:
    """`Client("http://127.0.0.1:8000", token)`. Every write sends one Idempotency-Key (uuid4,
    or `key=`) on all of its tries; connection errors, 409 in-progress, 429 and 503 are retried
    with exponential backoff and full jitter, honouring Retry-After. Error answers raise
    `unifocus.client.errors.ApiError` subclasses; a transport error after the last try is
    re-raised as the `httpx.TransportError` it is."""

    def __init__(
        self, base_url: str, token: str | None = None, *, max_attempts: int = 5, base_delay: float = 0.2,
        max_delay: float = 10.0, timeout: float = 10.0, transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.token = token
        self.retry = RetryPolicy(max_attempts=max_attempts, base_delay=base_delay, max_delay=max_delay)
        self._sleep = sleep
        self._http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout, transport=transport,
                                  headers={"User-Agent": "unifocus-client"})

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # --- transport -------------------------------------------------------------------------

    def send(self, call: Call[Any]) -> ApiResponse:
        """Run `call` with retries; the last answer, whatever its status."""
        headers = call.headers(self.token)
        attempt = 0
        while True:
            attempt += 1
            try:
                r = self._http.request(call.method, call.path, params=dict(call.params), content=call.content,
                                       headers=headers)
            except httpx.TransportError as exc:
                delay = next_delay(self.retry, call, attempt, None, exc)
                if delay is None:
                    raise
            else:
                resp = ApiResponse(r.status_code, r.headers, r.content)
                delay = next_delay(self.retry, call, attempt, resp)
                if delay is None:
                    return resp
            self._sleep(delay)

    def run(self, call: Call[T]) -> T:
        """Run `call`; its decoded answer, or the ApiError of its error answer."""
        return result(call, self.send(call))

    def _pages(self, build: Callable[[str | None], Call[m.Page[T]]]) -> Iterator[T]:
        cursor: str | None = None
        while True:
            page = self.run(build(cursor))
            yield from page["items"]
            cursor = page["nextCursor"]
            if not cursor:
                return

    # --- health ----------------------------------------------------------------------------

    def health(self) -> m.Health:
        return self.run(ops.health())

    def ready(self) -> m.Ready:
        return self.run(ops.ready())

    def metrics(self) -> str:
        return self.run(ops.metrics())

    # --- caller and tenant -----------------------------------------------------------------

    def me(self) -> m.Me:
        return self.run(ops.me())

    def get_tenant(self) -> m.Tenant:
        return self.run(ops.get_tenant())

    def update_tenant(self, patch: m.TenantPatch, *, key: str | None = None, request_id: str | None = None
                      ) -> m.Tenant:
        return self.run(ops.update_tenant(patch, key, request_id))

    # --- users -----------------------------------------------------------------------------

    def create_user(self, body: m.UserCreate, *, key: str | None = None, request_id: str | None = None) -> m.User:
        return self.run(ops.create_user(body, key, request_id))

    def list_users(self, *, limit: int | None = None, cursor: str | None = None) -> m.Page[m.User]:
        return self.run(ops.list_users(limit, cursor))

    def iter_users(self, *, page_size: int | None = None) -> Iterator[m.User]:
        return self._pages(lambda c: ops.list_users(page_size, c))

    def get_user(self, user_id: Id) -> m.User:
        return self.run(ops.get_user(user_id))

    def update_user(self, user_id: Id, patch: m.UserPatch, *, key: str | None = None,
                    request_id: str | None = None) -> m.User:
        return self.run(ops.update_user(user_id, patch, key, request_id))

    # --- employees -------------------------------------------------------------------------

    def create_employee(self, body: m.EmployeeCreate, *, key: str | None = None,
                        request_id: str | None = None) -> m.Employee:
        return self.run(ops.create_employee(body, key, request_id))

    def list_employees(self, *, active: bool | None = None, limit: int | None = None,
                       cursor: str | None = None) -> m.Page[m.Employee]:
        return self.run(ops.list_employees(active, limit, cursor))

    def iter_employees(self, *, active: bool | None = None, page_size: int | None = None) -> Iterator[m.Employee]:
        return self._pages(lambda c: ops.list_employees(active, page_size, c))

    def get_employee(self, employee_id: Id) -> m.Employee:
        return self.run(ops.get_employee(employee_id))

    def update_employee(self, employee_id: Id, patch: m.EmployeePatch, *, key: str | None = None,
                        request_id: str | None = None) -> m.Employee:
        return self.run(ops.update_employee(employee_id, patch, key, request_id))

    def delete_employee(self, employee_id: Id, *, key: str | None = None, request_id: str | None = None) -> None:
        return self.run(ops.delete_employee(employee_id, key, request_id))

    # --- schedules and shifts --------------------------------------------------------------

    def create_schedule(self, body: m.ScheduleCreate, *, key: str | None = None,
                        request_id: str | None = None) -> m.Schedule:
        return self.run(ops.create_schedule(body, key, request_id))

    def list_schedules(self, *, employee_id: Id | None = None, from_date: Date | None = None,
                       to_date: Date | None = None, limit: int | None = None,
                       cursor: str | None = None) -> m.Page[m.Schedule]:
        return self.run(ops.list_schedules(employee_id, from_date, to_date, limit, cursor))

    def iter_schedules(self, *, employee_id: Id | None = None, from_date: Date | None = None,
                       to_date: Date | None = None, page_size: int | None = None) -> Iterator[m.Schedule]:
        return self._pages(lambda c: ops.list_schedules(employee_id, from_date, to_date, page_size, c))

    def get_schedule(self, schedule_id: Id) -> m.Schedule:
        return self.run(ops.get_schedule(schedule_id))

    def delete_schedule(self, schedule_id: Id, *, key: str | None = None, request_id: str | None = None) -> None:
        return self.run(ops.delete_schedule(schedule_id, key, request_id))

    def add_shift(self, schedule_id: Id, body: m.ShiftCreate, *, key: str | None = None,
                  request_id: str | None = None) -> m.Shift:
        return self.run(ops.add_shift(schedule_id, body, key, request_id))

    def list_shifts(self, schedule_id: Id) -> list[m.Shift]:
        """All the schedule's shifts, newest first (every page)."""
        return list(self.iter_shifts(schedule_id))

    def iter_shifts(self, schedule_id: Id, *, page_size: int | None = None) -> Iterator[m.Shift]:
        return self._pages(lambda c: ops.list_shifts(schedule_id, page_size, c))

    def get_shift(self, schedule_id: Id, shift_id: Id) -> m.Shift:
        return self.run(ops.get_shift(schedule_id, shift_id))

    def delete_shift(self, schedule_id: Id, shift_id: Id, *, key: str | None = None,
                     request_id: str | None = None) -> None:
        return self.run(ops.delete_shift(schedule_id, shift_id, key, request_id))

    # --- punches ---------------------------------------------------------------------------

    def create_punch(self, body: m.PunchCreate, *, key: str | None = None,
                     request_id: str | None = None) -> m.PunchCreated:
        return self.run(ops.create_punch(body, key, request_id))

    def create_punches_batch(self, punches: list[m.BatchItem], *, key: str | None = None,
                             request_id: str | None = None) -> m.BatchResponse:
        return self.run(ops.create_punches_batch(punches, key, request_id))

    def list_punches(self, *, employee_id: Id | None = None, start: Instant | None = None,
                     end: Instant | None = None, limit: int | None = None,
                     cursor: str | None = None) -> m.Page[m.Punch]:
        return self.run(ops.list_punches(employee_id, start, end, limit, cursor))

    def iter_punches(self, *, employee_id: Id | None = None, start: Instant | None = None,
                     end: Instant | None = None, page_size: int | None = None) -> Iterator[m.Punch]:
        return self._pages(lambda c: ops.list_punches(employee_id, start, end, page_size, c))

    def get_punch(self, punch_id: Id) -> m.Punch:
        return self.run(ops.get_punch(punch_id))

    def void_punch(self, punch_id: Id, reason: str, *, key: str | None = None,
                   request_id: str | None = None) -> None:
        return self.run(ops.void_punch(punch_id, reason, key, request_id))

    # --- exceptions ------------------------------------------------------------------------

    def list_exceptions(self, *, status: str | None = None, type: str | None = None,
                        employee_id: Id | None = None, start: Instant | None = None, end: Instant | None = None,
                        limit: int | None = None, cursor: str | None = None) -> m.Page[m.TimeException]:
        return self.run(ops.list_exceptions(status, type, employee_id, start, end, limit, cursor))

    def iter_exceptions(self, *, status: str | None = None, type: str | None = None,
                        employee_id: Id | None = None, start: Instant | None = None, end: Instant | None = None,
                        page_size: int | None = None) -> Iterator[m.TimeException]:
        return self._pages(lambda c: ops.list_exceptions(status, type, employee_id, start, end, page_size, c))

    def get_exception(self, exception_id: Id) -> m.TimeException:
        return self.run(ops.get_exception(exception_id))

    def resolve_exception(self, exception_id: Id, status: m.Resolution, note: str | None = None, *,
                          key: str | None = None, request_id: str | None = None) -> m.TimeException:
        return self.run(ops.resolve_exception(exception_id, status, note, key, request_id))

    # --- timesheets ------------------------------------------------------------------------

    def get_timesheet(self, from_date: Date, to_date: Date, *, employee_id: Id | None = None) -> m.Timesheet:
        return self.run(ops.get_timesheet(from_date, to_date, employee_id))

    def export_timesheets(self, from_date: Date, to_date: Date) -> str:
        return self.run(ops.export_timesheets(from_date, to_date))

    # --- audit log -------------------------------------------------------------------------

    def list_audit_logs(self, *, entity: str | None = None, action: str | None = None, user_id: Id | None = None,
                        employee_id: Id | None = None, start: Instant | None = None, end: Instant | None = None,
                        limit: int | None = None, cursor: str | None = None) -> m.Page[m.AuditLogEntry]:
        return self.run(ops.list_audit_logs(entity, action, user_id, employee_id, start, end, limit, cursor))

    def iter_audit_logs(self, *, entity: str | None = None, action: str | None = None, user_id: Id | None = None,
                        employee_id: Id | None = None, start: Instant | None = None, end: Instant | None = None,
                        page_size: int | None = None) -> Iterator[m.AuditLogEntry]:
        return self._pages(lambda c: ops.list_audit_logs(entity, action, user_id, employee_id, start, end,
                                                         page_size, c))
