"""The DfE daily attendance return (``registerwatch export dfe-daily``): see
docs/returns/dfe-daily.md.

``build(request)`` makes one return for ``request.day``, by default the last school day before
``request.as_of`` (as-of is "today, before registration": its own registers may not be taken yet).
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from registerwatch.calendar import SchoolCalendar
from registerwatch.exports.dfe_daily.render import KIND, SCHEMA_NAME, render
from registerwatch.exports.registers import (
    ExportRequestError,
    IncompleteRegisterError,
    ReturnDataError,
    load_register,
    school_calendar,
)

if TYPE_CHECKING:
    from registerwatch.exports.base import RenderedReturn
    from registerwatch.exports.registry import ExportRequest

__all__ = [
    "KIND",
    "SCHEMA_NAME",
    "ExportRequestError",
    "IncompleteRegisterError",
    "ReturnDataError",
    "build",
    "default_day",
    "render",
]


def default_day(calendar: SchoolCalendar, as_of: date) -> date:
    """The last school day before ``as_of`` (CalendarError when the terms hold none)."""
    return calendar.previous_school_day(as_of)


def build(request: ExportRequest) -> list[RenderedReturn]:
    calendar = school_calendar(request)
    day = request.day or default_day(calendar, request.as_of)
    if day > request.as_of:
        raise ExportRequestError(
            f"school {request.school.id!r}: {day.isoformat()} is after the as-of date "
            f"{request.as_of.isoformat()}; its registers cannot have been taken yet"
        )
    data = load_register(request, day, day, calendar)
    return [render(data, day, request.generated_at, allow_incomplete=request.allow_incomplete)]
