"""`AsyncClient`: the asyncio client (httpx.AsyncClient). Same methods as `Client`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import Any, TypeVar

import httpx

from unifocus.client import models as m
from unifocus.client import ops
from unifocus.client.core import ApiResponse, Call, RetryPolicy, next_delay, result
from unifocus.client.ops import Date, Id, Instant

T = TypeVar("T")


class AsyncClient:
    """`async with AsyncClient("http://127.0.0.1:8000", token) as c: await c.me()`. Same retry,
    idempotency and error behaviour as `Client` (see there); safe to share between tasks."""

    def __init__(
        self, base_url: str, token: str | None = None, *, max_attempts: int = 5, base_delay: float = 0.2,
        max_delay: float = 10.0, timeout: float = 10.0, transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, max_connections: int = 100,
    ) -> None:
        self.token = token
        self.retry = RetryPolicy(max_attempts=max_attempts, base_delay=base_delay, max_delay=max_delay)
        self._sleep = sleep
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self._http = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout, transport=transport,
                                       limits=limits, headers={"User-Agent": "unifocus-client"})

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    # --- transport -------------------------------------------------------------------------

    async def send(self, call: Call[Any]) -> ApiResponse:
        """Run `call` with retries; the last answer, whatever its status."""
        headers = call.headers(self.token)
        attempt = 0
        while True:
            attempt += 1
            try:
                r = await self._http.request(call.method, call.path, params=dict(call.params),
                                             content=call.content, headers=headers)
            except httpx.TransportError as exc:
                delay = next_delay(self.retry, call, attempt, None, exc)
                if delay is None:
                    raise
            else:
                resp = ApiResponse(r.status_code, r.headers, r.content)
                delay = next_delay(self.retry, call, attempt, resp)
                if delay is None:
                    return resp
            await self._sleep(delay)

    async def run(self, call: Call[T]) -> T:
        """Run `call`; its decoded answer, or the ApiError of its error answer."""
        return result(call, await self.send(call))

    async def _pages(self, build: Callable[[str | None], Call[m.Page[T]]]) -> AsyncIterator[T]:
        cursor: str | None = None
        while True:
            page = await self.run(build(cursor))
            for item in page["items"]:
                yield item
            cursor = page["nextCursor"]
            if not cursor:
                return

    # --- health ----------------------------------------------------------------------------

    async def health(self) -> m.Health:
        return await self.run(ops.health())

    async def ready(self) -> m.Ready:
        return await self.run(ops.ready())

    async def metrics(self) -> str:
        return await self.run(ops.metrics())

    # --- caller and tenant -----------------------------------------------------------------

    async def me(self) -> m.Me:
        return await self.run(ops.me())

    async def get_tenant(self) -> m.Tenant:
        return await self.run(ops.get_tenant())

    async def update_tenant(self, patch: m.TenantPatch, *, key: str | None = None, request_id: str | None = None
                      ) -> m.Tenant:
        return await self.run(ops.update_tenant(patch, key, request_id))

    # --- users -----------------------------------------------------------------------------

    async def create_user(self, body: m.UserCreate, *, key: str | None = None, request_id: str | None = None) -> m.User:
        return await self.run(ops.create_user(body, key, request_id))

    async def list_users(self, *, limit: int | None = None, cursor: str | None = None) -> m.Page[m.User]:
        return await self.run(ops.list_users(limit, cursor))

    def iter_users(self, *, page_size: int | None = None) -> AsyncIterator[m.User]:
        return self._pages(lambda c: ops.list_users(page_size, c))

    async def get_user(self, user_id: Id) -> m.User:
        return await self.run(ops.get_user(user_id))

    async def update_user(self, user_id: Id, patch: m.UserPatch, *, key: str | None = None,
                    request_id: str | None = None) -> m.User:
        return await self.run(ops.update_user(user_id, patch, key, request_id))

    # --- employees -------------------------------------------------------------------------

    async def create_employee(self, body: m.EmployeeCreate, *, key: str | None = None,
                        request_id: str | None = None) -> m.Employee:
        return await self.run(ops.create_employee(body, key, request_id))

    async def list_employees(self, *, active: bool | None = None, limit: int | None = None,
                       cursor: str | None = None) -> m.Page[m.Employee]:
        return await self.run(ops.list_employees(active, limit, cursor))

    def iter_employees(self, *, active: bool | None = None, page_size: int | None = None) -> AsyncIterator[m.Employee]:
        return self._pages(lambda c: ops.list_employees(active, page_size, c))

    async def get_employee(self, employee_id: Id) -> m.Employee:
        return await self.run(ops.get_employee(employee_id))

    async def update_employee(self, employee_id: Id, patch: m.EmployeePatch, *, key: str | None = None,
                        request_id: str | None = None) -> m.Employee:
        return await self.run(ops.update_employee(employee_id, patch, key, request_id))

    async def delete_employee(self, employee_id: Id, *, key: str | None = None, request_id: str | None = None) -> None:
        return await self.run(ops.delete_employee(employee_id, key, request_id))

    # --- schedules and shifts --------------------------------------------------------------

    async def create_schedule(self, body: m.ScheduleCreate, *, key: str | None = None,
                        request_id: str | None = None) -> m.Schedule:
        return await self.run(ops.create_schedule(body, key, request_id))

    async def list_schedules(self, *, employee_id: Id | None = None, from_date: Date | None = None,
                       to_date: Date | None = None, limit: int | None = None,
                       cursor: str | None = None) -> m.Page[m.Schedule]:
        return await self.run(ops.list_schedules(employee_id, from_date, to_date, limit, cursor))

    def iter_schedules(self, *, employee_id: Id | None = None, from_date: Date | None = None,
                       to_date: Date | None = None, page_size: int | None = None) -> AsyncIterator[m.Schedule]:
        return self._pages(lambda c: ops.list_schedules(employee_id, from_date, to_date, page_size, c))

    async def get_schedule(self, schedule_id: Id) -> m.Schedule:
        return await self.run(ops.get_schedule(schedule_id))

    async def delete_schedule(self, schedule_id: Id, *, key: str | None = None, request_id: str | None = None) -> None:
        return await self.run(ops.delete_schedule(schedule_id, key, request_id))

    async def add_shift(self, schedule_id: Id, body: m.ShiftCreate, *, key: str | None = None,
                  request_id: str | None = None) -> m.Shift:
        return await self.run(ops.add_shift(schedule_id, body, key, request_id))

    async def list_shifts(self, schedule_id: Id) -> list[m.Shift]:
        """All the schedule's shifts, newest first (every page)."""
        return [shift async for shift in self.iter_shifts(schedule_id)]

    def iter_shifts(self, schedule_id: Id, *, page_size: int | None = None) -> AsyncIterator[m.Shift]:
        return self._pages(lambda c: ops.list_shifts(schedule_id, page_size, c))

    async def get_shift(self, schedule_id: Id, shift_id: Id) -> m.Shift:
        return await self.run(ops.get_shift(schedule_id, shift_id))

    async def delete_shift(self, schedule_id: Id, shift_id: Id, *, key: str | None = None,
                     request_id: str | None = None) -> None:
        return await self.run(ops.delete_shift(schedule_id, shift_id, key, request_id))

    # --- punches ---------------------------------------------------------------------------

    async def create_punch(self, body: m.PunchCreate, *, key: str | None = None,
                     request_id: str | None = None) -> m.PunchCreated:
        return await self.run(ops.create_punch(body, key, request_id))

    async def create_punches_batch(self, punches: list[m.BatchItem], *, key: str | None = None,
                             request_id: str | None = None) -> m.BatchResponse:
        return await self.run(ops.create_punches_batch(punches, key, request_id))

    async def list_punches(self, *, employee_id: Id | None = None, start: Instant | None = None,
                     end: Instant | None = None, limit: int | None = None,
                     cursor: str | None = None) -> m.Page[m.Punch]:
        return await self.run(ops.list_punches(employee_id, start, end, limit, cursor))

    def iter_punches(self, *, employee_id: Id | None = None, start: Instant | None = None,
                     end: Instant | None = None, page_size: int | None = None) -> AsyncIterator[m.Punch]:
        return self._pages(lambda c: ops.list_punches(employee_id, start, end, page_size, c))

    async def get_punch(self, punch_id: Id) -> m.Punch:
        return await self.run(ops.get_punch(punch_id))

    async def void_punch(self, punch_id: Id, reason: str, *, key: str | None = None,
                   request_id: str | None = None) -> None:
        return await self.run(ops.void_punch(punch_id, reason, key, request_id))

    # --- exceptions ------------------------------------------------------------------------

    async def list_exceptions(self, *, status: str | None = None, type: str | None = None,
                        employee_id: Id | None = None, start: Instant | None = None, end: Instant | None = None,
                        limit: int | None = None, cursor: str | None = None) -> m.Page[m.TimeException]:
        return await self.run(ops.list_exceptions(status, type, employee_id, start, end, limit, cursor))

    def iter_exceptions(self, *, status: str | None = None, type: str | None = None,
                        employee_id: Id | None = None, start: Instant | None = None, end: Instant | None = None,
                        page_size: int | None = None) -> AsyncIterator[m.TimeException]:
        return self._pages(lambda c: ops.list_exceptions(status, type, employee_id, start, end, page_size, c))

    async def get_exception(self, exception_id: Id) -> m.TimeException:
        return await self.run(ops.get_exception(exception_id))

    async def resolve_exception(self, exception_id: Id, status: m.Resolution, note: str | None = None, *,
                          key: str | None = None, request_id: str | None = None) -> m.TimeException:
        return await self.run(ops.resolve_exception(exception_id, status, note, key, request_id))

    # --- timesheets ------------------------------------------------------------------------

    async def get_timesheet(self, from_date: Date, to_date: Date, *, employee_id: Id | None = None) -> m.Timesheet:
        return await self.run(ops.get_timesheet(from_date, to_date, employee_id))

    async def export_timesheets(self, from_date: Date, to_date: Date) -> str:
        return await self.run(ops.export_timesheets(from_date, to_date))

    # --- audit log -------------------------------------------------------------------------

    async def list_audit_logs(self, *, entity: str | None = None, action: str | None = None, user_id: Id | None = None,
                        employee_id: Id | None = None, start: Instant | None = None, end: Instant | None = None,
                        limit: int | None = None, cursor: str | None = None) -> m.Page[m.AuditLogEntry]:
        return await self.run(ops.list_audit_logs(entity, action, user_id, employee_id, start, end, limit, cursor))

    def iter_audit_logs(self, *, entity: str | None = None, action: str | None = None, user_id: Id | None = None,
                        employee_id: Id | None = None, start: Instant | None = None, end: Instant | None = None,
                        page_size: int | None = None) -> AsyncIterator[m.AuditLogEntry]:
        return self._pages(lambda c: ops.list_audit_logs(entity, action, user_id, employee_id, start, end,
                                                         page_size, c))
