"""School days: terms, closures and England bank holidays.

Every deadline in the product is counted here; no rule counts weekdays itself.

A school day is a weekday inside a term that is not an England bank holiday and not a whole-day
closure. A day with one session closed is still a school day with one session. A
school week is a Monday-to-Sunday week with at least one school session (the penalty-notice
threshold's definition, WTISA National Framework, SECONDARY).
"""

from __future__ import annotations

import bisect
import threading
from collections import OrderedDict
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from functools import cached_property, lru_cache
from typing import Protocol
from zoneinfo import ZoneInfo

import holidays
from dateutil.easter import easter

from registerwatch.errors import CalendarError
from registerwatch.schema import Calendar, Closure, ClosureKind, Session

LONDON = ZoneInfo("Europe/London")
SESSIONS = (Session.AM, Session.PM)

# INFERRED: the statistical/census school year runs 1 August to 31 July (DfE: "AcademicYear
# switches on 1 August"; census autumn term starts 1 August). Rules that count "in the school
# year" (LAR001) use this boundary.
SCHOOL_YEAR_START_MONTH = 8


def england_bank_holidays(years: Iterable[int]) -> frozenset[date]:
    """England bank holidays from the ``holidays`` package, weekdays only.

    ``holidays`` lists both a holiday's nominal weekend date and its observed weekday; only the
    observed weekday closes a school, and weekends are never school days anyway.
    """
    wanted = tuple(sorted(set(years)))
    if not wanted:
        return frozenset()
    return _england_bank_holidays(wanted)


# Kept per process: building the table costs ~30 ms, and each night's settings (a new school
# object, so a new calendar) would otherwise pay it again for every school.
@lru_cache(maxsize=32)
def _england_bank_holidays(years: tuple[int, ...]) -> frozenset[date]:
    table = holidays.country_holidays("GB", subdiv="ENG", years=list(years))
    return frozenset(d for d in table if d.weekday() < 5)


def school_year_of(day: date) -> int:
    """The calendar year in which ``day``'s school year starts (2025 for 2025/26)."""
    return day.year if day.month >= SCHOOL_YEAR_START_MONTH else day.year - 1


def school_year_bounds(year: int) -> tuple[date, date]:
    return date(year, SCHOOL_YEAR_START_MONTH, 1), date(
        year + 1, SCHOOL_YEAR_START_MONTH, 1
    ) - timedelta(days=1)


def easter_sunday(year: int) -> date:
    """Western Easter Sunday (census spring term end; the Easter holidays in term dates)."""
    return easter(year)


def week_start(day: date) -> date:
    """Monday of ``day``'s week."""
    return day - timedelta(days=day.weekday())


class SchoolCalendar:
    """The calendar of one school, answering every school-day question the product asks."""

    def __init__(self, calendar: Calendar, bank_holidays: Iterable[date] | None = None) -> None:
        if not calendar.terms:
            raise CalendarError(f"school {calendar.school_id!r}: no terms configured")
        self.calendar = calendar
        self.school_id = calendar.school_id
        self.terms = sorted(calendar.terms, key=lambda t: t.start)
        for earlier, later in zip(self.terms, self.terms[1:], strict=False):
            if later.start <= earlier.end:
                raise CalendarError(
                    f"school {self.school_id!r}: terms {earlier.start}..{earlier.end} and "
                    f"{later.start}..{later.end} overlap"
                )
        self.first_day = self.terms[0].start
        self.last_day = self.terms[-1].end
        if bank_holidays is None:
            bank_holidays = england_bank_holidays(
                range(self.first_day.year, self.last_day.year + 1)
            )
        self.bank_holidays = frozenset(bank_holidays)
        self._closures: dict[tuple[date, Session], Closure] = {}
        # closures of some year groups or registration groups: the school is open
        self._group_closures: dict[tuple[date, Session], list[Closure]] = {}
        for closure in calendar.closures:
            sessions = SESSIONS if closure.session == "both" else (Session(closure.session),)
            for session in sessions:
                if closure.whole_school:
                    self._closures[(closure.date, session)] = closure
                else:
                    self._group_closures.setdefault((closure.date, session), []).append(closure)

    # -- sessions ---------------------------------------------------------------------------

    def in_term(self, day: date) -> bool:
        index = bisect.bisect_right(self._term_starts, day) - 1
        return index >= 0 and day <= self.terms[index].end

    @cached_property
    def _term_starts(self) -> list[date]:
        return [t.start for t in self.terms]

    def _potential_school_day(self, day: date) -> bool:
        return day.weekday() < 5 and self.in_term(day) and day not in self.bank_holidays

    def closure(self, day: date, session: Session) -> Closure | None:
        """The closure covering this session, if any (planned → '#', unexpected → 'Y4')."""
        return self._closures.get((day, Session(session)))

    def group_closure(
        self, day: date, session: Session, nc_year: str | None, reg_group: str | None
    ) -> Closure | None:
        """The closure of part of the school covering a pupil of this NC year and group on the
        session, if any (the school itself is open)."""
        for closure in self._group_closures.get((day, Session(session)), ()):
            if closure.covers(nc_year, reg_group):
                return closure
        return None

    def has_group_closures(self, day: date, session: Session) -> bool:
        return (day, Session(session)) in self._group_closures

    def closure_code(self, day: date, session: Session) -> str | None:
        closure = self.closure(day, session)
        if closure is None:
            return None
        return "#" if closure.kind is ClosureKind.PLANNED else "Y4"

    def sessions_on(self, day: date) -> tuple[Session, ...]:
        """Sessions the school is open on ``day`` (empty when not a school day).

        An *unexpected* closure (Y4) still happened on a day the school meant to open, so the
        register is still taken (with Y4) for it; only planned closures remove a session.
        """
        if not self._potential_school_day(day):
            return ()
        return tuple(s for s in SESSIONS if not self._planned_closed(day, s))

    def _planned_closed(self, day: date, session: Session) -> bool:
        closure = self._closures.get((day, session))
        return closure is not None and closure.kind is ClosureKind.PLANNED

    def is_school_session(self, day: date, session: Session) -> bool:
        return Session(session) in self.sessions_on(day)

    def is_school_day(self, day: date) -> bool:
        return bool(self.sessions_on(day))

    @cached_property
    def _days(self) -> list[date]:
        days: list[date] = []
        for term in self.terms:
            day = term.start
            while day <= term.end:
                if self.is_school_day(day):
                    days.append(day)
                day += timedelta(days=1)
        return days

    def unexpectedly_closed(self, day: date) -> bool:
        """A school day on which every session is a whole-school unexpected closure (Y4): it
        holds no session, so deadlines counted in school days (MRK001's five days, LAR002's
        consecutive days) do not count it."""
        sessions = self.sessions_on(day)
        return bool(sessions) and all(
            (c := self._closures.get((day, s))) is not None and c.kind is ClosureKind.UNEXPECTED
            for s in sessions
        )

    @cached_property
    def _deadline_days(self) -> list[date]:
        return [d for d in self._days if not self.unexpectedly_closed(d)]

    def add_deadline_school_days(self, day: date, n: int) -> date:
        """The ``n``-th school day after ``day`` (n > 0) not wholly closed unexpectedly (see
        ``unexpectedly_closed``). Raises CalendarError beyond the configured terms."""
        index = bisect.bisect_right(self._deadline_days, day) + n - 1
        if n <= 0 or index >= len(self._deadline_days):
            raise CalendarError(
                f"school {self.school_id!r}: {n} school days after {day} falls outside the "
                f"configured terms ({self.first_day}..{self.last_day}); add the missing term "
                "dates to the config"
            )
        return self._deadline_days[index]

    # -- day arithmetic ---------------------------------------------------------------------

    def school_days(self, start: date, end: date) -> list[date]:
        """School days from ``start`` to ``end``, both inclusive."""
        lo = bisect.bisect_left(self._days, start)
        hi = bisect.bisect_right(self._days, end)
        return self._days[lo:hi]

    def count_school_days(self, start: date, end: date) -> int:
        """Number of school days in [start, end] (0 when end < start)."""
        if end < start:
            return 0
        return bisect.bisect_right(self._days, end) - bisect.bisect_left(self._days, start)

    def school_days_after(self, day: date, through: date) -> int:
        """School days strictly after ``day`` up to and including ``through``."""
        return self.count_school_days(day + timedelta(days=1), through)

    def add_school_days(self, day: date, n: int) -> date:
        """The ``n``-th school day after ``day`` (``n`` < 0: before). ``n == 0``: ``day`` itself.

        Raises CalendarError when the answer lies beyond the configured terms: add next year's
        terms to the config.
        """
        if n == 0:
            return day
        if n > 0:
            index = bisect.bisect_right(self._days, day) + n - 1
        else:
            index = bisect.bisect_left(self._days, day) + n
        if index < 0 or index >= len(self._days):
            raise CalendarError(
                f"school {self.school_id!r}: {abs(n)} school days "
                f"{'after' if n > 0 else 'before'} {day} falls outside the configured terms "
                f"({self.first_day}..{self.last_day}); add the missing term dates to the config"
            )
        return self._days[index]

    def next_school_day(self, day: date) -> date:
        return self.add_school_days(day, 1)

    def previous_school_day(self, day: date) -> date:
        return self.add_school_days(day, -1)

    def school_day_index(self, day: date) -> int | None:
        """Position of a school day in the calendar (for consecutive-day runs), else None."""
        index = bisect.bisect_left(self._days, day)
        if index < len(self._days) and self._days[index] == day:
            return index
        return None

    # -- sessions arithmetic ----------------------------------------------------------------

    def school_sessions(self, start: date, end: date) -> list[tuple[date, Session]]:
        return [(d, s) for d in self.school_days(start, end) for s in self.sessions_on(d)]

    def count_school_sessions(self, start: date, end: date) -> int:
        return sum(len(self.sessions_on(d)) for d in self.school_days(start, end))

    def add_school_sessions(self, day: date, session: Session, n: int) -> tuple[date, Session]:
        """The ``n``-th school session after (day, session), n >= 0."""
        if n < 0:
            raise ValueError("n must be >= 0")
        current = (day, Session(session))
        if n == 0:
            return current
        remaining = n
        if session is Session.AM and self.is_school_session(day, Session.PM):
            remaining -= 1
            if remaining == 0:
                return (day, Session.PM)
        cursor = day
        while True:
            cursor = self.next_school_day(cursor)
            for s in self.sessions_on(cursor):
                remaining -= 1
                if remaining == 0:
                    return (cursor, s)

    # -- weeks and years --------------------------------------------------------------------

    def is_school_week(self, day: date) -> bool:
        monday = week_start(day)
        return self.count_school_days(monday, monday + timedelta(days=6)) > 0

    def school_weeks(self, start: date, end: date) -> list[date]:
        """Mondays of the school weeks that overlap [start, end]."""
        return sorted({week_start(d) for d in self.school_days(week_start(start), end)})

    def rolling_school_weeks_start(self, end: date, weeks: int) -> date:
        """Monday that starts the window of the last ``weeks`` school weeks ending with ``end``'s
        week (weeks with no school session are skipped, as the penalty-notice threshold says)."""
        if weeks <= 0:
            raise ValueError("weeks must be positive")
        mondays = sorted({week_start(d) for d in self._days if d <= end})
        if not mondays:
            return week_start(end)
        chosen = mondays[-weeks:]
        return chosen[0]

    def school_year_start(self, year: int) -> date:
        """First term day of the school year starting in ``year`` (EA 1996 s.579: the school
        year begins with the first term to start after July; INFERRED fallback 1 September)."""
        for term in self.terms:
            if term.start.year == year and term.start.month >= SCHOOL_YEAR_START_MONTH:
                return term.start
        return date(year, 9, 1)

    # -- register times ---------------------------------------------------------------------

    def register_opens(
        self, day: date, session: Session, nc_year: str | None = None, reg_group: str | None = None
    ) -> datetime:
        """When the register of a group of that NC year opens (register times may differ by
        year group: ``RegisterTimes.by_group``)."""
        am, pm, _ = self.calendar.register_times.for_group(nc_year, reg_group)
        opens: time = am if Session(session) is Session.AM else pm
        return datetime.combine(day, opens, tzinfo=LONDON)

    def register_closes(
        self, day: date, session: Session, nc_year: str | None = None, reg_group: str | None = None
    ) -> datetime:
        """Register close time: open + close_after_minutes (policy: 30 minutes, SECONDARY)."""
        _, _, minutes = self.calendar.register_times.for_group(nc_year, reg_group)
        return self.register_opens(day, session, nc_year, reg_group) + timedelta(minutes=minutes)


class HasCalendar(Protocol):
    """A configured school (``config.SchoolSettings``): anything that gives its calendar."""

    def to_calendar(self) -> Calendar: ...


# A few dozen schools at most; a long-running daemon reloading its config must not grow this.
_CALENDAR_CACHE_SIZE = 64
_calendars: OrderedDict[int, tuple[HasCalendar, SchoolCalendar]] = OrderedDict()
_calendars_lock = threading.Lock()


def calendar_for(school: HasCalendar) -> SchoolCalendar:
    """The :class:`SchoolCalendar` of a configured school: the one way to build it from the
    config (sync, the scan, the returns, the night's school-day gate and the CLI all ask here).

    Built once per school object and kept (the bank holidays are computed per build); the
    settings are frozen, so the same object always means the same calendar. Raises
    CalendarError when the school has no terms, every time it is asked.
    """
    key = id(school)
    with _calendars_lock:
        hit = _calendars.get(key)
        # The entry holds the school itself, so its id cannot be reused while it is cached.
        if hit is not None and hit[0] is school:
            _calendars.move_to_end(key)
            return hit[1]
    built = SchoolCalendar(school.to_calendar())
    with _calendars_lock:
        _calendars[key] = (school, built)
        while len(_calendars) > _CALENDAR_CACHE_SIZE:
            _calendars.popitem(last=False)
    return built
