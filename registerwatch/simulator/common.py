"""What every vendor simulator pages and formats the same way; each keeps its own wire names.

The vendors differ in their parameter names, defaults and error bodies, so the helpers take
those as arguments and leave the vendor to word the error: ``read_page`` raises
``PagingError`` and the vendor answers it in its own envelope.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import TypeVar

from registerwatch.calendar import LONDON
from registerwatch.schema import Calendar, Session
from registerwatch.simulator.server import Request

T = TypeVar("T")


class PagingError(ValueError):
    """Page parameters the API rejects: ``not_whole`` (not integers) or below 1."""

    def __init__(self, *, not_whole: bool) -> None:
        super().__init__("not whole numbers" if not_whole else "below 1")
        self.not_whole = not_whole


def read_page(
    request: Request, *, number_arg: str, size_arg: str, default_size: int, max_size: int
) -> tuple[int, int]:
    """(page number from 1, page size clamped to ``max_size``) from a page-number API's query."""
    try:
        number = int(request.arg(number_arg, "1") or 1)
        size = int(request.arg(size_arg, str(default_size)) or default_size)
    except ValueError:
        raise PagingError(not_whole=True) from None
    if number < 1 or size < 1:
        raise PagingError(not_whole=False)
    return number, min(size, max_size)


def page_of(items: Sequence[T], number: int, size: int) -> list[T]:
    """Page ``number`` (from 1) of ``items``; past the end, an empty page."""
    return list(items[(number - 1) * size : number * size])


def london_wall_clock(instant: datetime) -> datetime:
    """An instant as a school's clock shows it (Europe/London), without an offset: how every
    simulated vendor writes its date-times."""
    return instant.astimezone(LONDON).replace(tzinfo=None)


def iso_midnight(day: date | None) -> str | None:
    """A date as the naive midnight date-time iSAMS and GO 4 Schools send."""
    return None if day is None else f"{day.isoformat()}T00:00:00"


def register_opens(calendar: Calendar, day: date, session: Session) -> datetime:
    """When the school's register for ``session`` opens, as a naive local date-time."""
    times = calendar.register_times
    return datetime.combine(day, times.am_open if session is Session.AM else times.pm_open)
