"""The API's JSON shapes as TypedDicts, keyed exactly as on the wire (camelCase).

Answers are returned as the decoded JSON (no copying, no runtime validation): the types are
for the reader and for mypy. Request bodies use the `...Create` / `...Patch` shapes.
"""

from __future__ import annotations

from typing import Any, Generic, Literal, NotRequired, TypedDict, TypeVar

T = TypeVar("T")

Role = Literal["admin", "manager", "employee"]
PunchType = Literal["clock_in", "clock_out", "break_start", "break_end"]
PunchSource = Literal["api", "device", "manual"]
ExceptionStatus = Literal["pending", "approved", "rejected", "withdrawn"]
Resolution = Literal["approved", "rejected"]


class Page(TypedDict, Generic[T]):
    items: list[T]
    nextCursor: str | None


class Health(TypedDict):
    status: str
    timestamp: str
    uptime: float
    version: str


class Ready(TypedDict):
    status: str
    checks: dict[str, str]


class Me(TypedDict):
    userId: str
    tenantId: str
    email: str
    role: Role
    employeeId: str | None


class Policy(TypedDict):
    lateGraceMinutes: int
    earlyDepartureGraceMinutes: int
    earlyClockInWindowMinutes: int
    missedPunchAfterMinutes: int
    maxBreakMinutes: int
    overtimeThresholdMinutes: int


class Tenant(TypedDict):
    id: str
    name: str
    timezone: str
    policy: Policy


class PolicyPatch(TypedDict, total=False):
    lateGraceMinutes: int
    earlyDepartureGraceMinutes: int
    earlyClockInWindowMinutes: int
    missedPunchAfterMinutes: int
    maxBreakMinutes: int
    overtimeThresholdMinutes: int


class TenantPatch(TypedDict, total=False):
    name: str
    timezone: str
    policy: PolicyPatch


class User(TypedDict):
    id: str
    email: str
    role: Role
    employeeId: str | None
    active: bool
    subject: str


class UserCreate(TypedDict):
    email: str
    role: Role
    employeeId: NotRequired[str | None]
    subject: NotRequired[str]


class UserPatch(TypedDict, total=False):
    role: Role
    active: bool
    employeeId: str | None


class Employee(TypedDict):
    id: str
    firstName: str
    lastName: str
    externalId: str | None
    email: str | None
    timezone: str | None
    active: bool


class EmployeeCreate(TypedDict):
    firstName: str
    lastName: str
    externalId: NotRequired[str | None]
    email: NotRequired[str | None]
    timezone: NotRequired[str | None]


class EmployeePatch(TypedDict, total=False):
    firstName: str
    lastName: str
    externalId: str | None
    email: str | None
    timezone: str | None
    active: bool


class Shift(TypedDict):
    id: str
    scheduleId: str
    dayOfWeek: int
    startTime: str
    endTime: str


class ShiftCreate(TypedDict):
    dayOfWeek: int
    startTime: str
    endTime: str


class Schedule(TypedDict):
    id: str
    employeeId: str
    name: str | None
    startDate: str
    endDate: str
    shifts: list[Shift]


class ScheduleCreate(TypedDict):
    employeeId: str
    startDate: str
    endDate: str
    name: NotRequired[str | None]
    shifts: NotRequired[list[ShiftCreate]]


class TimeException(TypedDict):
    id: str
    employeeId: str
    type: str
    status: ExceptionStatus
    shiftId: str | None
    shiftDate: str | None
    punchId: str | None
    details: dict[str, Any]
    createdAt: str
    resolvedBy: str | None
    resolvedAt: str | None
    note: str | None


class Punch(TypedDict):
    id: str
    employeeId: str
    type: PunchType
    timestamp: str
    receivedAt: str
    device: str | None
    clientPunchId: str | None
    source: PunchSource
    shiftId: str | None
    shiftDate: str | None
    voided: bool
    voidReason: str | None


class PunchCreated(Punch):
    exceptions: list[TimeException]


class PunchCreate(TypedDict):
    employeeId: str
    type: PunchType
    timestamp: str
    device: NotRequired[str]
    clientPunchId: NotRequired[str]
    source: NotRequired[PunchSource]


class BatchItem(TypedDict):
    clientPunchId: str
    employeeId: str
    type: PunchType
    timestamp: str
    device: NotRequired[str]


class BatchResult(TypedDict):
    clientPunchId: str | None
    status: Literal["created", "duplicate", "rejected"]
    punch: PunchCreated | Punch | None
    error: str | None


class BatchResponse(TypedDict):
    results: list[BatchResult]


class ResolveRequest(TypedDict):
    status: Resolution
    note: NotRequired[str]


class TimesheetTotals(TypedDict):
    scheduledMinutes: int
    workedMinutes: int
    breakMinutes: int
    overtimeMinutes: int


class TimesheetDay(TimesheetTotals):
    date: str
    exceptions: list[dict[str, Any]]


Timesheet = TypedDict(
    "Timesheet",
    {"employeeId": str, "from": str, "to": str, "days": list[TimesheetDay], "totals": TimesheetTotals},
)


class AuditChanges(TypedDict):
    before: Any
    after: Any


class AuditLogEntry(TypedDict):
    id: str
    tenantId: str
    userId: str | None
    userEmail: str | None
    action: str
    entity: str
    entityId: str
    changes: AuditChanges
    employeeId: str | None
    punchId: str | None
    exceptionId: str | None
    requestId: str | None
    createdAt: str
