"""The school census attendance return (``registerwatch export census-attendance``): see
docs/returns/census-attendance.md.

``build(request)`` counts ``request.term`` (``autumn-2025``, ``spring-2026``, ``summer-2026``;
see ``terms``), by default the last census term that ended before ``request.as_of``.
``request.options["census_age_window"]`` (``"4-15"`` by default) sets the ages included.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from registerwatch.calendar import easter_sunday
from registerwatch.exports.census_attendance.render import (
    ABSENCE_CODES,
    AGE_WINDOW_OPTION,
    DEFAULT_AGE_WINDOW,
    KIND,
    SCHEMA_NAME,
    counted_periods,
    parse_age_window,
    render,
)
from registerwatch.exports.census_attendance.terms import (
    CensusTerm,
    CensusTermError,
    census_term,
    latest_complete_term,
    parse_term,
)
from registerwatch.exports.registers import load_register, school_calendar

if TYPE_CHECKING:
    from registerwatch.exports.base import RenderedReturn
    from registerwatch.exports.registry import ExportRequest

__all__ = [
    "ABSENCE_CODES",
    "AGE_WINDOW_OPTION",
    "DEFAULT_AGE_WINDOW",
    "KIND",
    "SCHEMA_NAME",
    "CensusTerm",
    "CensusTermError",
    "build",
    "census_term",
    "easter_sunday",
    "latest_complete_term",
    "parse_term",
    "render",
]


def build(request: ExportRequest) -> list[RenderedReturn]:
    term = parse_term(request.term) if request.term else latest_complete_term(request.as_of)
    age_window = parse_age_window(request.options.get(AGE_WINDOW_OPTION, DEFAULT_AGE_WINDOW))
    periods = counted_periods(
        term, request.as_of, allow_incomplete=request.allow_incomplete, school_id=request.school.id
    )
    data = load_register(request, periods[0].start, periods[-1].end, school_calendar(request))
    return [
        render(
            data,
            term,
            as_of=request.as_of,
            generated_at=request.generated_at,
            allow_incomplete=request.allow_incomplete,
            age_window=age_window,
        )
    ]
