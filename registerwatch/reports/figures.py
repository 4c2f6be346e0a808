"""The register figures of a report: the current school term, its weekly attendance rates and
the ages of the sessions still coded N, from one streamed pass over the year's marks.

``as_of`` has the scan's meaning ("today, before registration"): marks dated ``as_of`` or later
are left out of the figures.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from datetime import date, timedelta

from registerwatch.calendar import (
    SchoolCalendar,
    easter_sunday,
    school_year_bounds,
    school_year_of,
    week_start,
)
from registerwatch.codes import SessionStatistics, session_statistics
from registerwatch.reports.model import NAgeBucket, SchoolTerm, WeekRate
from registerwatch.schema import Session
from registerwatch.store import Store

# Ages (in school days since the session, counted to the report day) of sessions still coded N.
# With the 5-school-day deadline of MRK001, "3-5" holds the sessions due soon or today and
# "6-10" and ">10" the ones already overdue.
N_AGE_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("0-2", 0, 2),
    ("3-5", 3, 5),
    ("6-10", 6, 10),
    (">10", 11, None),
)


def _season(day: date) -> tuple[int, int]:
    """(school year, 0 autumn / 1 spring / 2 summer) of a term that starts on ``day``.

    INFERRED: configs list the spans between holidays (half-terms included) as "terms"; a
    reader's "this term" is the autumn, spring or summer term. A span starting August-December
    is autumn, one starting before Easter Sunday spring, any later one summer (the Easter
    holiday is what separates the spring and summer terms of an English school year).
    """
    if day.month >= 8:
        return school_year_of(day), 0
    return school_year_of(day), 1 if day < easter_sunday(day.year) else 2


_SEASON_NAMES = ("Autumn", "Spring", "Summer")


def school_term(calendar: SchoolCalendar, day: date) -> SchoolTerm | None:
    """The school term of the last school day on or before ``day`` (None before the first).

    So in a holiday (half-term included) the report shows the term that holiday follows.
    """
    days = calendar.school_days(calendar.first_day, day)
    if not days:
        return None
    last = days[-1]
    span = next(t for t in calendar.terms if t.start <= last <= t.end)
    key = _season(span.start)
    spans = [t for t in calendar.terms if _season(t.start) == key]
    start = min(t.start for t in spans)
    return SchoolTerm(
        name=f"{_SEASON_NAMES[key[1]]} term {start.year}",
        start=start,
        end=max(t.end for t in spans),
    )


# The term, its weeks, the term's totals and the N ages.
Figures = tuple[
    SchoolTerm | None, tuple[WeekRate, ...], SessionStatistics | None, tuple[NAgeBucket, ...]
]


def register_figures(
    store: Store, school_id: str, calendar: SchoolCalendar, as_of: date
) -> Figures:
    data_end = as_of - timedelta(days=1)
    term = school_term(calendar, data_end)
    if term is None:
        return None, (), None, n_buckets({})
    # N ages cover the school year of the term shown (in August, the year just ended).
    year_start, _ = school_year_bounds(school_year_of(term.start))
    term_end = min(term.end, data_end)

    # One streamed pass over the year's marks: weekly code counts and the N sessions.
    week_codes: dict[date, Counter[str]] = defaultdict(Counter)
    n_marks: list[tuple[str, date]] = []
    school_session: dict[tuple[date, Session], bool] = {}
    for mark in store.iter_marks(school_id, start=min(year_start, term.start), end=data_end):
        if mark.code == "N" and mark.date >= year_start:
            n_marks.append((mark.pupil_id, mark.date))
        if not term.start <= mark.date <= term_end:
            continue
        key = (mark.date, mark.session)
        if key not in school_session:
            school_session[key] = calendar.is_school_session(mark.date, mark.session)
        # Attendance statistics count the sessions the school was open; a mark on a planned
        # closure or a weekend is a data error (rule MRK005), not a session.
        if school_session[key]:
            week_codes[week_start(mark.date)][mark.code] += 1

    weeks: list[WeekRate] = []
    for monday in calendar.school_weeks(term.start, term_end):
        first, sunday = max(monday, term.start), monday + timedelta(days=6)
        complete = calendar.school_days(first, min(sunday, term_end))
        planned = calendar.school_days(first, min(sunday, term.end))
        weeks.append(
            WeekRate(
                week_start=monday,
                school_days=len(complete),
                partial=len(planned) > len(complete),
                statistics=session_statistics(week_codes.get(monday, {}), on=monday),
            )
        )
    total: Counter[str] = Counter()
    for counts in week_codes.values():
        total.update(counts)
    term_statistics = session_statistics(total, on=term.start) if weeks else None

    ages: dict[str, list[str]] = defaultdict(list)
    for pupil_id, day in n_marks:
        ages[_bucket(calendar.school_days_after(day, as_of))].append(pupil_id)
    return term, tuple(weeks), term_statistics, n_buckets(ages)


def _bucket(age: int) -> str:
    for label, low, high in N_AGE_BUCKETS:
        if age >= low and (high is None or age <= high):
            return label
    raise AssertionError(f"no N age bucket for {age}")  # the buckets cover 0 and up


def n_buckets(ages: Mapping[str, list[str]]) -> tuple[NAgeBucket, ...]:
    return tuple(
        NAgeBucket(
            label=label,
            min_days=low,
            max_days=high,
            sessions=len(ages.get(label, ())),
            pupils=len(set(ages.get(label, ()))),
        )
        for label, low, high in N_AGE_BUCKETS
    )
