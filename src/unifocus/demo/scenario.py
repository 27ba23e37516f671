"""The demo's story, as pure data: two hotels, five staff each, one week of shifts and the
punches of the seven days before today (local), arranged so that every exception type of
contract section 5 appears once the sweep has run:

| staff (index)        | shift        | day | what happens                      | exception                 |
|----------------------|--------------|-----|-----------------------------------|---------------------------|
| front desk (0)       | 09:00-17:00  | 2   | clocks in at 09:23                | late_arrival              |
|                      |              | 4   | taps clock_out twice              | missed_punch (stray)      |
|                      |              | 7   | never clocks out (yesterday)      | missed_punch (left open)  |
| housekeeping (1)     | 07:00-15:00  | 3   | leaves at 13:40                   | early_departure           |
|                      |              | 6   | does not come in                  | absence                   |
| kitchen (2)          | 11:00-19:00  | 4   | stays until 20:10                 | overtime                  |
| night porter (3)     | 22:00-06:00  | 7   | covers 12:00-16:00, not scheduled | unscheduled_punch         |
| maintenance (4)      | 08:00-16:00  | 2   | 85-minute break                   | long_break                |

Day 1 is today - 7, day 7 is yesterday. The time-based findings (absence, the shift left
open) sit on days 6 and 7 so that they are inside the sweep's look-back window. Every other
day is an ordinary one: clock in 2-8 minutes early, a 30-minute break, clock out 0-3
minutes late, so nothing else is flagged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DAYS = 7
DEVICE = "demo-clock"
SCHEDULE_NAME = "Demo week"


@dataclass(frozen=True)
class Staff:
    external_id: str
    first_name: str
    last_name: str
    start: str  # HH:MM local
    end: str  # HH:MM; <= start means overnight
    last_day: int = DAYS  # the schedule covers days 1..last_day

    @property
    def email_local(self) -> str:
        return f"{self.first_name}.{self.last_name}".lower()


@dataclass(frozen=True)
class DemoTenant:
    name: str
    timezone: str
    slug: str
    domain: str
    staff: tuple[Staff, ...]


def _staff(prefix: str, names: list[tuple[str, str]]) -> tuple[Staff, ...]:
    hours = [("09:00", "17:00", DAYS), ("07:00", "15:00", DAYS), ("11:00", "19:00", DAYS),
             ("22:00", "06:00", DAYS - 1), ("08:00", "16:00", DAYS)]
    return tuple(Staff(f"{prefix}-{i + 1:03d}", first, last, start, end, last_day)
                 for i, ((first, last), (start, end, last_day)) in enumerate(zip(names, hours, strict=True)))


TENANTS: tuple[DemoTenant, ...] = (
    DemoTenant("Harbour Hotel", "America/New_York", "harbour-hotel", "harbour-hotel.example.com",
               _staff("HH", [("Ava", "Thompson"), ("Ben", "Carter"), ("Chloe", "Nguyen"),
                             ("Diego", "Ramirez"), ("Emma", "Wilson")])),
    DemoTenant("Castle Inn", "Europe/London", "castle-inn", "castle-inn.example.com",
               _staff("CI", [("Oliver", "Hughes"), ("Amelia", "Evans"), ("Harry", "Davies"),
                             ("Isla", "Roberts"), ("George", "Walker")])),
)
MANAGER_EMAIL = "manager"  # local part; the admin's is "admin"
EMPLOYEE_USERS = (0, 1)  # staff indexes with a login; the first one's token is returned


def minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


# (staff index, day) -> that day's punches as (type, minutes after the day's local midnight).
_SPECIAL: dict[tuple[int, int], list[tuple[str, str]]] = {
    (0, 2): [("clock_in", "09:23"), ("break_start", "13:00"), ("break_end", "13:30"), ("clock_out", "17:02")],
    (0, 4): [("clock_in", "08:57"), ("break_start", "13:00"), ("break_end", "13:30"), ("clock_out", "17:01"),
             ("clock_out", "17:04")],
    (0, 7): [("clock_in", "08:58"), ("break_start", "13:00"), ("break_end", "13:30")],
    (1, 3): [("clock_in", "06:56"), ("break_start", "11:00"), ("break_end", "11:30"), ("clock_out", "13:40")],
    (1, 6): [],
    (2, 4): [("clock_in", "10:55"), ("break_start", "15:00"), ("break_end", "15:30"), ("clock_out", "20:10")],
    (3, 7): [("clock_in", "12:00"), ("clock_out", "16:00")],
    (4, 2): [("clock_in", "07:57"), ("break_start", "12:00"), ("break_end", "13:25"), ("clock_out", "16:02")],
}


@dataclass(frozen=True)
class PlannedPunch:
    client_punch_id: str
    type: str
    timestamp: datetime  # aware, local zone


def day_punches(index: int, staff: Staff, day: int) -> list[tuple[str, int]]:
    special = _SPECIAL.get((index, day))
    if special is not None:
        return [(kind, minutes(at)) for kind, at in special]
    if day > staff.last_day:
        return []
    start, end = minutes(staff.start), minutes(staff.end)
    end += 24 * 60 if end <= start else 0
    early, late = 2 + (index * 3 + day) % 7, (index + day) % 4
    brk = start + 4 * 60
    return [("clock_in", start - early), ("break_start", brk), ("break_end", brk + 30), ("clock_out", end + late)]


def first_day(timezone: str, now: datetime) -> date:
    """Day 1 of a fresh demo: seven days before today in the tenant's zone."""
    return now.astimezone(ZoneInfo(timezone)).date() - timedelta(days=DAYS)


def punch_plan(tenant: DemoTenant, index: int, day1: date) -> list[PlannedPunch]:
    """One staff member's punches over the week, in time order; ids are stable per day 1."""
    staff, tz = tenant.staff[index], ZoneInfo(tenant.timezone)
    plan: list[PlannedPunch] = []
    for day in range(1, DAYS + 1):
        midnight = datetime.combine(day1 + timedelta(days=day - 1), time())
        for n, (kind, offset) in enumerate(day_punches(index, staff, day)):
            ts = (midnight + timedelta(minutes=offset)).replace(tzinfo=tz)  # wall clock
            plan.append(PlannedPunch(f"demo-{day1.isoformat()}-{staff.external_id}-d{day}-{n}", kind, ts))
    return plan


def planned_count(tenant: DemoTenant) -> int:
    return sum(len(day_punches(i, s, d)) for i, s in enumerate(tenant.staff) for d in range(1, DAYS + 1))
