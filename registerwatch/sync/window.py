"""Which dates each resource is pulled for: bookmarks, the trailing window, the periodic
whole-year re-pull, and the refusal to sync into a school year the config has no terms for."""

from __future__ import annotations

from datetime import date

from registerwatch.calendar import SchoolCalendar, school_year_of
from registerwatch.errors import CalendarError
from registerwatch.store import Store
from registerwatch.sync.summary import WINDOWED, SchoolSyncResult, Window

# -- windows -----------------------------------------------------------------------------------


def parse_bookmark(value: str | None) -> date | None:
    """A bookmark is the ISO date the last finished sync ran to (its ``as_of``)."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def plan_window(
    calendar: SchoolCalendar, bookmark: date | None, as_of: date, trailing_school_days: int
) -> Window | None:
    """The dates to pull: see the module docstring. None when there is nothing to pull yet
    (``as_of`` falls before the school year's first term day).

    The trailing window starts ``trailing_school_days`` school days before ``as_of``, so it
    holds those days and ``as_of`` itself (today's morning register may already be in). When the
    configured terms do not reach that far back, it starts at the first configured term day.
    """
    if bookmark is None:
        start = calendar.school_year_start(school_year_of(as_of))
        first_sync = True
    else:
        try:
            trailing = calendar.add_school_days(as_of, -trailing_school_days)
        except CalendarError:
            trailing = calendar.first_day
        # The bookmark's own day is pulled again: its afternoon may not have been in yet.
        start = min(bookmark, trailing)
        first_sync = False
    if start > as_of:
        return None
    return Window(start, as_of, first_sync)


FULL_PULL_BOOKMARK = "full_pull"


def _require_terms_for(calendar: SchoolCalendar, as_of: date) -> None:
    """Refuse to sync into a school year the config has no terms for.

    Without them every date looks like a holiday: sync would pull an empty window and the scan
    would find nothing, silently. Before 1 September (the summer holiday) a missing new year
    is not yet an error.
    """
    year = school_year_of(as_of)
    if as_of < date(year, 9, 1) or school_year_of(calendar.last_day) >= year:
        return
    raise CalendarError(
        f"school {calendar.school_id!r}: the configured terms end on {calendar.last_day}, "
        f"but registers are being synced to {as_of}: add the {year}/{(year + 1) % 100:02d} "
        "terms to [schools.calendar] terms in the config"
    )


def full_pull_due(store: Store, school_id: str, as_of: date, full_repull_days: int | None) -> bool:
    """Is it time to re-pull the whole school year (not just the trailing window)?

    Without a change feed, a trailing window never sees an entry that vanished or changed
    further back; registers are legal documents kept 6 years, so every ``full_repull_days``
    the whole year is compared again (AMD002/AMD003 then see old changes within that delay).
    """
    if full_repull_days is None:
        return False
    last = parse_bookmark(store.get_bookmark(school_id, FULL_PULL_BOOKMARK))
    return last is None or (as_of - last).days >= full_repull_days or as_of < last


def _plan(
    store: Store,
    school_id: str,
    calendar: SchoolCalendar,
    as_of: date,
    trailing: int,
    result: SchoolSyncResult,
    full_repull_days: int | None = None,
) -> dict[str, Window | None]:
    windows: dict[str, Window | None] = {}
    whole_year = full_pull_due(store, school_id, as_of, full_repull_days)
    for resource in WINDOWED:
        raw = store.get_bookmark(school_id, resource)
        bookmark = parse_bookmark(raw)
        if raw is not None and bookmark is None:
            # Treated as a first sync: re-pulling the whole year is safe, only slower.
            result.warnings.append(
                f"{resource} bookmark {raw!r} is not a date; pulled the whole school year"
            )
        window = plan_window(calendar, bookmark, as_of, trailing)
        if whole_year and window is not None and not window.first_sync:
            year_start = calendar.school_year_start(school_year_of(as_of))
            window = Window(min(window.start, year_start), as_of, first_sync=False)
        windows[resource] = window
    return windows
