"""Arbor list queries: ``filters.<property>.<operator>=`` and ``page-number``/``page-size``."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import date, datetime, time
from typing import Any

from registerwatch.simulator.arbor.protocol import (
    API_ROOT,
    ARBOR_DATETIME,
    DEFAULT_PAGE_SIZE,
    FILTER_OPERATORS,
    MAX_PAGE_SIZE,
    Kind,
)
from registerwatch.simulator.common import PagingError, read_page
from registerwatch.simulator.server import Request


class BadQuery(ValueError):
    """A query the API rejects with 400."""


# A listing compares every record's date-time with the filter's, and a school's records share a
# few hundred session start times: each distinct text is parsed once (a failure is not cached,
# so a bad value is refused every time).
@functools.lru_cache(maxsize=1 << 14)
def _filter_instant(value: str) -> datetime:
    """A filter value: ``Y-m-d`` (midnight) or ``Y-m-d H:i:s``; ValueError otherwise."""
    text = value.strip()
    if len(text) == 10:
        return datetime.combine(date.fromisoformat(text), time())
    return datetime.strptime(text.replace("T", " "), ARBOR_DATETIME)


def matches(actual: Any, operator: str, wanted: str) -> bool:
    if isinstance(actual, dict):  # a stub: filters on related objects take the href
        actual = actual.get("href")
    if operator in ("equals", "in"):
        options = wanted.split(",") if operator == "in" else [wanted]
        text = "NULL" if actual is None else str(actual)
        return text in options
    if actual is None:
        return False
    bound = _filter_instant(wanted)
    value = _filter_instant(str(actual))
    return {
        "from": value >= bound,
        "to": value <= bound,
        "after": value > bound,
        "before": value < bound,
    }[operator]


def id_of(record: Mapping[str, Any]) -> int:
    return int(str(record["href"]).rsplit("/", 1)[-1])


def api_parts(path: str) -> list[str] | None:
    """Path segments after ``rest-v2``; None when the path is not under the API."""
    segments = [s for s in path.split("/") if s]
    if API_ROOT not in segments:
        return None
    rest = segments[segments.index(API_ROOT) + 1 :]
    return rest or None


def paging(request: Request) -> tuple[int, int]:
    """(page-number, page-size): a larger page-size is clamped to ``MAX_PAGE_SIZE``."""
    try:
        return read_page(
            request,
            number_arg="page-number",
            size_arg="page-size",
            default_size=DEFAULT_PAGE_SIZE,
            max_size=MAX_PAGE_SIZE,
        )
    except PagingError as exc:
        raise BadQuery(
            "page-number and page-size must be integers"
            if exc.not_whole
            else "page-number and page-size start at 1"
        ) from None


def filters_of(request: Request, kind: Kind) -> list[tuple[str, str, str]]:
    filters: list[tuple[str, str, str]] = []
    for name, values in sorted(request.query.items()):
        if not name.startswith("filters."):
            continue
        _, prop, operator = [*name.split(".", 2), "", ""][:3]
        if operator not in FILTER_OPERATORS:
            raise BadQuery(f"{name}: unknown operator {operator!r}")
        if prop not in kind.filterable:
            raise BadQuery(f"{name}: {kind.entity} cannot be filtered on {prop!r}")
        filters.extend((prop, operator, value) for value in values)
    return filters
