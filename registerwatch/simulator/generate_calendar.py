"""The synthetic school's year: term dates, closures, register times and the default "today".

Term dates follow the usual English pattern (INFERRED as a rule; it reproduces the typical
2025/26 calendar, autumn 2025-09-03..10-24 and so on): autumn starts on the first Wednesday in
September and spring on the first weekday from 4 January; half-terms fall in the week of the last
Monday of October, the third Monday of February and the late-May bank holiday (last Monday of
May); the Easter break is the fortnight from the Monday of Holy Week; the year ends on 22 July (the
weekday before, when that is a weekend). England bank holidays are not listed here:
``SchoolCalendar`` takes them from the ``holidays`` package.
"""

from __future__ import annotations

from datetime import date, time, timedelta

from registerwatch.calendar import SchoolCalendar, easter_sunday
from registerwatch.schema import Calendar, Closure, ClosureKind, RegisterTimes, Term

MONDAY, WEDNESDAY, THURSDAY, FRIDAY = 0, 2, 3, 4


def _on_or_after(day: date, weekday: int) -> date:
    return day + timedelta(days=(weekday - day.weekday()) % 7)


def _on_or_before(day: date, weekday: int) -> date:
    return day - timedelta(days=(day.weekday() - weekday) % 7)


def _last_weekday_of_month(year: int, month: int, weekday: int) -> date:
    first_of_next = date(year + month // 12, month % 12 + 1, 1)
    return _on_or_before(first_of_next - timedelta(days=1), weekday)


def term_dates(year: int) -> list[Term]:
    """The six half-terms of the school year that starts in the autumn of ``year``.

    For 2025: 2025-09-03..10-24, 11-03..12-19, 2026-01-05..02-13, 02-23..03-27,
    04-13..05-22, 06-01..07-22.
    """
    nxt = year + 1
    autumn_start = _on_or_after(date(year, 9, 1), WEDNESDAY)
    october_break = _last_weekday_of_month(year, 10, MONDAY)
    autumn_end = _on_or_before(date(year, 12, 20), FRIDAY)
    spring_start = date(nxt, 1, 4)
    while spring_start.weekday() > FRIDAY:
        spring_start += timedelta(days=1)
    february_break = _on_or_after(date(nxt, 2, 1), MONDAY) + timedelta(weeks=2)
    sunday = easter_sunday(nxt)
    may_break = _last_weekday_of_month(nxt, 5, MONDAY)
    summer_end = date(nxt, 7, 22)
    while summer_end.weekday() > FRIDAY:
        summer_end -= timedelta(days=1)
    return [
        Term(start=autumn_start, end=october_break - timedelta(days=3)),
        Term(start=october_break + timedelta(days=7), end=autumn_end),
        Term(start=spring_start, end=february_break - timedelta(days=3)),
        # The Easter break: the fortnight from the Monday of Holy Week.
        Term(start=february_break + timedelta(days=7), end=sunday - timedelta(days=9)),
        Term(start=sunday + timedelta(days=8), end=may_break - timedelta(days=3)),
        Term(start=may_break + timedelta(days=7), end=summer_end),
    ]


def closures(terms: list[Term]) -> list[Closure]:
    """Two INSET days, one planned afternoon closure and one unexpected whole-day closure.

    None falls on a term's first day: the reg 13(2) new-pupil exemption turns on a starting day
    that is "the first day of the school year", and an INSET day there would make that day
    ambiguous (first term day, or first day pupils attend?).
    """
    autumn1, autumn2, spring1 = terms[0], terms[1], terms[2]
    second_friday = _on_or_after(autumn2.start, FRIDAY) + timedelta(weeks=1)
    third_thursday = _on_or_after(autumn2.start, THURSDAY) + timedelta(weeks=2)
    spring_inset = _on_or_after(spring1.start, FRIDAY)
    return [
        Closure(
            date=autumn1.end,
            session="PM",
            kind=ClosureKind.PLANNED,
            reason="Early finish before half-term",
        ),
        Closure(date=second_friday, session="both", kind=ClosureKind.PLANNED, reason="INSET day"),
        Closure(
            date=third_thursday,
            session="both",
            kind=ClosureKind.UNEXPECTED,
            reason="Heating failure: site closed",
        ),
        Closure(date=spring_inset, session="both", kind=ClosureKind.PLANNED, reason="INSET day"),
    ]


def build_calendar(school_id: str, year: int, phase: str) -> Calendar:
    terms = term_dates(year)
    # Primary registers usually open a little later in the morning and earlier after lunch.
    times = (
        RegisterTimes(am_open=time(8, 50), pm_open=time(13, 0))
        if phase == "primary"
        else RegisterTimes(am_open=time(8, 40), pm_open=time(13, 20))
    )
    return Calendar(
        school_id=school_id, terms=terms, closures=closures(terms), register_times=times
    )


def default_as_of(calendar: SchoolCalendar, year: int) -> date:
    """The first school day on or after 1 December: about twelve weeks of registers."""
    return calendar.next_school_day(date(year, 11, 30))
