"""Census attendance terms: which dates each term's absence covers.

VERIFIED from the DfE repository and the pupil-absence methodology:
the census collects absence one term in arrears, over fixed date ranges that do not follow any
school's own term dates:

- autumn: 1 August to 31 December (collected in the spring census);
- spring: 1 January to Easter Sunday (collected in the summer census);
- summer: Easter Monday to the Sunday before the spring bank holiday (the first summer half
  term, ``TermlyAttendance``), and the spring bank holiday to 31 July (the second,
  ``SummerHalfTerm2Attendance``), both collected in the autumn census.

A term is named ``<season>-<year>``, the year being the calendar year its dates fall in:
``autumn-2025`` is 1 Aug-31 Dec 2025, ``spring-2026`` is 1 Jan 2026-Easter Sunday 2026 and
``summer-2026`` is Easter Monday 2026-31 Jul 2026. All three of one school year (2025/26) are
therefore ``autumn-2025``, ``spring-2026`` and ``summer-2026``.

Easter comes from ``registerwatch.calendar.easter_sunday`` (python-dateutil); tests check it
against known dates and against the Easter Monday bank holiday in the ``holidays`` package.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

import holidays

from registerwatch.calendar import easter_sunday
from registerwatch.exports.registers import ExportRequestError


class Season(StrEnum):
    AUTUMN = "autumn"
    SPRING = "spring"
    SUMMER = "summer"


TERMLY = "TermlyAttendance"
SUMMER_HALF_TERM_2 = "SummerHalfTerm2Attendance"

_TERM = re.compile(r"(autumn|spring|summer)-([0-9]{4})")
_MAY = 5
MONDAY = 0


class CensusTermError(ExportRequestError, ValueError):
    """A census term that is not written ``autumn-2025``, ``spring-2026`` or ``summer-2026``."""


@dataclass(frozen=True)
class Period:
    """One block of a census term's attendance (``element`` names it in the XML)."""

    element: str
    start: date
    end: date


@dataclass(frozen=True)
class CensusTerm:
    season: Season
    year: int
    periods: tuple[Period, ...]

    @property
    def label(self) -> str:
        return f"{self.season.value}-{self.year}"

    @property
    def start(self) -> date:
        return self.periods[0].start

    @property
    def end(self) -> date:
        return self.periods[-1].end

    @property
    def age_date(self) -> date:
        """31 August before the school year the term belongs to: the date ages are taken at
        (INFERRED from the national statistics' "age at the start of the academic year")."""
        school_year = self.year if self.season is Season.AUTUMN else self.year - 1
        return date(school_year, 8, 31)


def spring_bank_holiday(year: int) -> date:
    """The England spring bank holiday: from the ``holidays`` package, which knows the years it
    moved (4 June 2012, 2 June 2022); otherwise the last Monday in May (the statutory default)."""
    table = holidays.country_holidays("GB", subdiv="ENG", years=year)
    named = sorted(day for day, name in table.items() if "spring bank holiday" in name.lower())
    if named:
        return named[0]
    last = date(year, _MAY + 1, 1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - MONDAY) % 7)


def census_term(season: Season | str, year: int) -> CensusTerm:
    season = Season(season)
    periods: tuple[Period, ...]
    if season is Season.AUTUMN:
        periods = (Period(TERMLY, date(year, 8, 1), date(year, 12, 31)),)
    elif season is Season.SPRING:
        periods = (Period(TERMLY, date(year, 1, 1), easter_sunday(year)),)
    else:
        easter_monday = easter_sunday(year) + timedelta(days=1)
        bank_holiday = spring_bank_holiday(year)
        # "The Sunday before the spring bank holiday". The second half starts the next day, so
        # the halves meet even in a year the bank holiday was not a Monday (2022: Thursday 2 June;
        # INFERRED: the days between belong to the second half).
        first_end = bank_holiday - timedelta(days=(bank_holiday.weekday() + 1) % 7 or 7)
        periods = (
            Period(TERMLY, easter_monday, first_end),
            Period(SUMMER_HALF_TERM_2, first_end + timedelta(days=1), date(year, 7, 31)),
        )
    return CensusTerm(season=season, year=year, periods=periods)


def parse_term(text: str) -> CensusTerm:
    """``"autumn-2025"`` (case and surrounding spaces ignored) to its census term."""
    match = _TERM.fullmatch(text.strip().lower())
    if match is None:
        raise CensusTermError(
            f"{text!r} is not a census term: write the season and the calendar year its dates "
            "fall in, e.g. autumn-2025 (1 Aug-31 Dec 2025), spring-2026 (1 Jan-Easter Sunday "
            "2026) or summer-2026 (Easter Monday-31 Jul 2026)"
        )
    return census_term(match.group(1), int(match.group(2)))


def term_containing(day: date) -> CensusTerm:
    year = day.year
    for season in (Season.SPRING, Season.SUMMER, Season.AUTUMN):
        term = census_term(season, year)
        if term.start <= day <= term.end:
            return term
    raise AssertionError(f"census terms cover every day of the year; {day} fell through")


def previous_term(term: CensusTerm) -> CensusTerm:
    return term_containing(term.start - timedelta(days=1))


def latest_complete_term(as_of: date) -> CensusTerm:
    """The last census term that ended before ``as_of`` (the census is one term in arrears)."""
    return previous_term(term_containing(as_of))
