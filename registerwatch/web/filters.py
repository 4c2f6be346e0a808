"""Template filters: instants in London time, dates as people read them, code categories."""

from __future__ import annotations

from datetime import date, datetime

from jinja2 import Environment

from registerwatch.calendar import LONDON
from registerwatch.codes import UnknownCodeError, lookup


def london(value: datetime | None, fmt: str = "%d %b %Y %H:%M") -> str:
    return "" if value is None else value.astimezone(LONDON).strftime(fmt)


def day(value: date | None, fmt: str = "%a %d %b %Y") -> str:
    return "" if value is None else value.strftime(fmt)


def code_category(code: str | None) -> str:
    """The CSS class of an attendance code's 2024 category ("unknown" for anything else)."""
    if not code:
        return "none"
    try:
        return str(lookup(code).category)
    except UnknownCodeError:
        return "unknown"


def install(env: Environment) -> None:
    env.filters["london"] = london
    env.filters["day"] = day
    env.filters["code_category"] = code_category
