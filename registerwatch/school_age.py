"""Compulsory school age (CSA): Education Act 1996 s.8.

The X code is lawful only on sessions when a pupil is not of compulsory school age, and the census
age window depends on it, so the first and last days must follow s.8 exactly. s.8(2) and s.8(3)
are quoted from legislation.gov.uk in the reference notes (section 7); the prescribed days and the
school leaving date are set by order under s.8(4) and are only SECONDARY sources here (IPSEA,
Newham, Cognus). Each fact not read in primary text is one constant below, tagged with how we know
it, so that confirming or correcting it is a one-line change.

Both ends are inclusive: s.8(2) starts CSA at the beginning of a day and s.8(3) ends it at the end
of one. Attendance in practice becomes compulsory from the start of the next term; that is school
policy, not the legal age, and is not modelled here.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

# SECONDARY (IPSEA, Newham, Cognus; MEMORY: Education (Start of Compulsory School Age) Order 1998,
# SI 1998/1607): the days prescribed under s.8(4), as (month, day), in calendar order.
PRESCRIBED_DAYS: tuple[tuple[int, int], ...] = ((3, 31), (8, 31), (12, 31))

# SECONDARY (same sources; MEMORY: Education (School Leaving Date) Order 1997, SI 1997/1970):
# the school leaving date is the last Friday in June.
SCHOOL_LEAVING_MONTH = 6
SCHOOL_LEAVING_WEEKDAY = 4  # date.weekday(): Monday is 0, Friday is 4

# s.8(2) and s.8(3).
CSA_START_AGE = 5
CSA_END_AGE = 16

# INFERRED: the school year begins on 1 September. EA 1996 s.579 (MEMORY, per the reference) says
# the school year begins with the first term to begin after July, so the true date is the first day
# of the school's autumn term; pass it to csa_end through `school_year_start` when it is known.
DEFAULT_SCHOOL_YEAR_START: tuple[int, int] = (9, 1)

# INFERRED: someone born on 29 February attains an age on 1 March in a common year. In England a
# person attains an age at the start of the anniversary of their birth (MEMORY: Family Law Reform
# Act 1969 s.9), and a common year has no 29 February. With today's prescribed days and leaving
# date, 28 February would give the same CSA start and end, so this choice changes no result.
LEAP_DAY_BIRTHDAY_IN_COMMON_YEAR: tuple[int, int] = (3, 1)

SchoolYearStart = Callable[[int], date]


def date_attaining_age(dob: date, age: int) -> date:
    """The day on which someone born on ``dob`` attains ``age`` years."""
    year = dob.year + age
    try:
        return dob.replace(year=year)
    except ValueError:  # 29 February in a common year
        month, day = LEAP_DAY_BIRTHDAY_IN_COMMON_YEAR
        return date(year, month, day)


def last_friday_in_june(year: int) -> date:
    """The school leaving date for ``year``: the last Friday in June (SECONDARY)."""
    next_month = date(year, SCHOOL_LEAVING_MONTH + 1, 1)
    last_day = next_month - timedelta(days=1)
    return last_day - timedelta(days=(last_day.weekday() - SCHOOL_LEAVING_WEEKDAY) % 7)


def csa_start(dob: date) -> date:
    """The first day of compulsory school age (EA 1996 s.8(2)).

    The 5th birthday when that is a prescribed day (s.8(2)(a)), otherwise the next prescribed day
    after it (s.8(2)(b)).
    """
    fifth = date_attaining_age(dob, CSA_START_AGE)
    for year in (fifth.year, fifth.year + 1):
        for month, day in PRESCRIBED_DAYS:
            prescribed = date(year, month, day)
            if prescribed >= fifth:
                return prescribed
    raise AssertionError("PRESCRIBED_DAYS must name at least one day")  # pragma: no cover


def _school_year_start(year: int, school_year_start: SchoolYearStart | None) -> date:
    if school_year_start is None:
        month, day = DEFAULT_SCHOOL_YEAR_START
        return date(year, month, day)
    start = school_year_start(year)
    # s.579 (MEMORY): the school year begins with the first term to begin after July. A date
    # outside August-December of `year` means the caller's calendar is keyed by another year.
    if start.year != year or start.month < 8:
        raise ValueError(
            f"school_year_start({year}) returned {start.isoformat()}: it must be the first day "
            f"of the school year that begins in the autumn of {year} (1 August-31 December {year})"
        )
    return start


def csa_end(dob: date, school_year_start: SchoolYearStart | None = None) -> date:
    """The last day of compulsory school age (EA 1996 s.8(3)).

    The school leaving date of the year the pupil attains 16 if they attain it on or before that
    date (s.8(3)(b), (c)) or after it but before the next school year begins (s.8(3)(a));
    otherwise the next year's leaving date (s.8(3)(c)).

    ``school_year_start(year)`` gives the first day of the school year that begins in the autumn
    of ``year``, e.g. from the school calendar; without it 1 September is assumed (INFERRED). It
    is called only for a 16th birthday after the leaving date. Raises ValueError when it returns
    a date outside August-December of that year.
    """
    sixteenth = date_attaining_age(dob, CSA_END_AGE)
    leaving = last_friday_in_june(sixteenth.year)
    if sixteenth <= leaving:
        return leaving
    # Attaining 16 at the start of the day the school year begins is not "before the beginning of
    # the next school year", so that birthday moves to the following leaving date.
    if sixteenth < _school_year_start(sixteenth.year, school_year_start):
        return leaving
    return last_friday_in_june(sixteenth.year + 1)


def is_compulsory_school_age(
    dob: date, on: date, school_year_start: SchoolYearStart | None = None
) -> bool:
    """Whether someone born on ``dob`` is of compulsory school age on the day ``on``."""
    if on < csa_start(dob):
        return False
    return on <= csa_end(dob, school_year_start)
