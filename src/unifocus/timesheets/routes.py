from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from starlette.responses import Response

from unifocus.auth.roles import Role
from unifocus.db.readpath import ReadTx, reader
from unifocus.openapi import errors
from unifocus.schemas import DATE_BOUNDS, DATE_FORM, LocalDate
from unifocus.timesheets import csv_export, service
from unifocus.timesheets.schemas import Timesheet

router = APIRouter(prefix="/api", tags=["timesheets"])

# `Query` inside Annotated, not as the default: with `x: LocalDate = Query(...)` FastAPI keeps
# only the bare `date` of a non-optional Annotated type and drops its format check.
From = Annotated[LocalDate, Query(alias="from",
                                  description=f"First local date ({DATE_FORM}), inclusive. {DATE_BOUNDS}")]

_CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "CSV (RFC 4180, UTF-8) with a header row: "
        + ",".join(csv_export.HEADER)
        + ". One row per employee per date: every active employee, and every employee deactivated "
        "since who worked in the period; employees by last name, first name, id; "
        "dates ascending. `exception_types` is the day's distinct exception types, sorted, joined "
        "by `;`. Cells starting with `=`, `+`, `-` or `@` get a leading apostrophe.",
        "content": {"text/csv": {"schema": {"type": "string"}}},
        "headers": {
            "Content-Disposition": {
                "description": 'attachment; filename="timesheets-<from>-<to>.csv"',
                "schema": {"type": "string"},
            }
        },
    }
}


@router.get("/timesheets", response_model=Timesheet, responses=errors(404))
async def get_timesheet(
    *,  # keyword-only: the required Annotated dates may follow the optional employeeId
    employee_id: UUID | None = Query(
        None, alias="employeeId",
        description="Required for managers and admins; employees may omit it (their own) and may not "
        "name anyone else (403).",
    ),
    from_date: From,
    to_date: Annotated[LocalDate, Query(alias="to",
                                        description=f"Last local date ({DATE_FORM}), inclusive; at most 366 days.")],
    r: ReadTx = Depends(reader(Role.employee)),
) -> Timesheet:
    """An employee's timesheet: one day per local date of [from, to] in the employee's time zone
    (else the tenant's), with scheduled, worked, break and overtime minutes (real elapsed time,
    DST-correct; an overnight shift's work belongs to the date it starts) and the day's
    non-withdrawn exceptions, plus the range's totals. Unknown employee: 404."""
    return await service.employee_timesheet(r.conn, r.caller, employee_id, from_date, to_date)


@router.get("/timesheets/export", response_class=Response, responses={**errors(), **_CSV_RESPONSE})
async def export_timesheets(
    from_date: From,
    to_date: Annotated[LocalDate, Query(alias="to",
                                        description=f"Last local date ({DATE_FORM}), inclusive; at most 93 days.")],
    r: ReadTx = Depends(reader(Role.manager)),
) -> Response:
    """The tenant's timesheets as CSV (manager+): every active employee (and every one deactivated
    since who worked in the period), every date of [from, to]."""
    data = await service.export_days(r.conn, r.caller, from_date, to_date)
    body = csv_export.render(service.iter_rows(data))
    return Response(
        body.encode("utf-8"),
        media_type=csv_export.MEDIA_TYPE,
        headers={
            "Content-Disposition": f'attachment; filename="{csv_export.filename(from_date, to_date)}"',
            "Cache-Control": "no-store",
        },
    )
