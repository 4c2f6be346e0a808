from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registerwatch import school_age
from registerwatch.errors import CalendarError
from registerwatch.school_age import (
    csa_end,
    csa_start,
    date_attaining_age,
    is_compulsory_school_age,
    last_friday_in_june,
)


def starts_on(month: int, day: int):
    return lambda year: date(year, month, day)


@pytest.mark.parametrize(
    ("year", "expected"),
    [
        (2023, date(2023, 6, 30)),  # 30 June is itself a Friday
        (2024, date(2024, 6, 28)),  # IPSEA example's leaving date
        (2025, date(2025, 6, 27)),
        (2026, date(2026, 6, 26)),
        (2027, date(2027, 6, 25)),
        (2021, date(2021, 6, 25)),
        (2022, date(2022, 6, 24)),  # 24 June: the earliest a last Friday can be
    ],
)
def test_last_friday_in_june(year: int, expected: date) -> None:
    assert last_friday_in_june(year) == expected


@pytest.mark.parametrize(
    ("dob", "expected"),
    [
        # Fifth birthday on a prescribed day: CSA starts that day (s.8(2)(a)).
        (date(2018, 12, 31), date(2023, 12, 31)),
        (date(2019, 3, 31), date(2024, 3, 31)),
        (date(2019, 8, 31), date(2024, 8, 31)),
        # One day later: the next prescribed day (s.8(2)(b)).
        (date(2019, 1, 1), date(2024, 3, 31)),
        (date(2019, 4, 1), date(2024, 8, 31)),
        (date(2019, 9, 1), date(2024, 12, 31)),
        # One day earlier: that same prescribed day.
        (date(2018, 12, 30), date(2023, 12, 31)),
        (date(2019, 3, 30), date(2024, 3, 31)),
        (date(2019, 8, 30), date(2024, 8, 31)),
        # IPSEA: turning 5 on 10 Feb 2024 means CSA from 31 Mar 2024.
        (date(2019, 2, 10), date(2024, 3, 31)),
    ],
)
def test_csa_start(dob: date, expected: date) -> None:
    assert csa_start(dob) == expected


@pytest.mark.parametrize(
    ("dob", "expected"),
    [
        # IPSEA: born 23 Sep 2007 ceases 28 Jun 2024. 16 on 23 Sep 2023: after the 30 Jun 2023
        # leaving date and after the school year began, so the next leaving date applies.
        (date(2007, 9, 23), date(2024, 6, 28)),
        # 16 on the leaving date itself (s.8(3)(b)).
        (date(2007, 6, 30), date(2023, 6, 30)),
        # 16 the day before: that leaving date is the next one after (s.8(3)(c)).
        (date(2007, 6, 29), date(2023, 6, 30)),
        # 16 after the leaving date but in the summer holiday (s.8(3)(a)).
        (date(2007, 7, 1), date(2023, 6, 30)),
        (date(2007, 7, 20), date(2023, 6, 30)),
        (date(2007, 8, 31), date(2023, 6, 30)),
        # 16 on the day the school year begins (default 1 September): not "before" it.
        (date(2007, 9, 1), date(2024, 6, 28)),
        # 16 early in a calendar year: that June.
        (date(2008, 1, 1), date(2024, 6, 28)),
        (date(2007, 12, 31), date(2024, 6, 28)),
    ],
)
def test_csa_end(dob: date, expected: date) -> None:
    assert csa_end(dob) == expected


@pytest.mark.parametrize(
    ("dob", "expected"),
    [
        (date(2007, 9, 1), date(2023, 6, 30)),
        (date(2007, 9, 2), date(2023, 6, 30)),
        (date(2007, 9, 3), date(2023, 6, 30)),
        (date(2007, 9, 4), date(2024, 6, 28)),  # 16 on the first day of term
        (date(2007, 9, 5), date(2024, 6, 28)),
    ],
)
def test_csa_end_uses_the_schools_own_school_year_start(dob: date, expected: date) -> None:
    assert csa_end(dob, starts_on(9, 4)) == expected


def test_csa_end_with_an_august_school_year_start() -> None:
    assert csa_end(date(2007, 8, 27), starts_on(8, 28)) == date(2023, 6, 30)
    assert csa_end(date(2007, 8, 28), starts_on(8, 28)) == date(2024, 6, 28)


def test_csa_end_asks_the_calendar_for_the_year_of_the_16th_birthday() -> None:
    asked: list[int] = []

    def start(year: int) -> date:
        asked.append(year)
        return date(year, 9, 4)

    assert csa_end(date(2007, 9, 2), start) == date(2023, 6, 30)
    assert asked == [2023]


def test_csa_end_does_not_ask_the_calendar_for_a_birthday_before_the_leaving_date() -> None:
    def unknown(year: int) -> date:
        raise CalendarError(f"no terms for {year}")

    assert csa_end(date(2008, 3, 1), unknown) == date(2024, 6, 28)
    with pytest.raises(CalendarError, match="no terms for 2023"):
        csa_end(date(2007, 7, 15), unknown)


@pytest.mark.parametrize(
    "bad_start",
    [
        starts_on(7, 31),  # before August: not a school year under s.579
        lambda year: date(year + 1, 9, 1),  # calendar keyed by the year the school year ends
        lambda year: date(year - 1, 9, 1),
    ],
)
def test_csa_end_rejects_a_school_year_start_in_the_wrong_place(bad_start) -> None:
    with pytest.raises(ValueError, match=r"school_year_start\(2023\) returned"):
        csa_end(date(2007, 7, 15), bad_start)


def test_leap_day_birthday() -> None:
    # Fifth birthday 2021 and 16th birthday 2032 (leap) for someone born 29 Feb 2016.
    assert date_attaining_age(date(2016, 2, 29), 5) == date(2021, 3, 1)
    assert date_attaining_age(date(2016, 2, 29), 16) == date(2032, 2, 29)
    assert csa_start(date(2016, 2, 29)) == date(2021, 3, 31)
    assert csa_end(date(2016, 2, 29)) == date(2032, 6, 25)
    # 2100 is not a leap year.
    assert date_attaining_age(date(2084, 2, 29), 16) == date(2100, 3, 1)
    assert csa_end(date(2084, 2, 29)) == last_friday_in_june(2100)


def test_leap_day_convention_does_not_change_the_result(monkeypatch: pytest.MonkeyPatch) -> None:
    dobs = [date(2016, 2, 29), date(2084, 2, 29)]
    before = [(csa_start(d), csa_end(d)) for d in dobs]
    monkeypatch.setattr(school_age, "LEAP_DAY_BIRTHDAY_IN_COMMON_YEAR", (2, 28))
    assert date_attaining_age(date(2016, 2, 29), 5) == date(2021, 2, 28)
    assert [(csa_start(d), csa_end(d)) for d in dobs] == before


@pytest.mark.parametrize(
    ("dob", "on", "expected"),
    [
        (date(2019, 2, 10), date(2024, 3, 30), False),
        (date(2019, 2, 10), date(2024, 3, 31), True),
        (date(2007, 9, 23), date(2024, 6, 28), True),
        (date(2007, 9, 23), date(2024, 6, 29), False),
        (date(2007, 9, 23), date(2015, 6, 1), True),
        (date(2007, 9, 23), date(2007, 9, 23), False),
    ],
)
def test_is_compulsory_school_age(dob: date, on: date, expected: bool) -> None:
    assert is_compulsory_school_age(dob, on) is expected


def test_is_compulsory_school_age_passes_the_school_year_start_through() -> None:
    dob = date(2007, 9, 2)
    assert is_compulsory_school_age(dob, date(2023, 7, 1)) is True
    assert is_compulsory_school_age(dob, date(2023, 7, 1), starts_on(9, 4)) is False


dobs = st.dates(min_value=date(1950, 1, 1), max_value=date(2090, 12, 31))
school_year_starts = st.one_of(
    st.none(),
    st.integers(min_value=0, max_value=60).map(
        lambda offset: lambda year: date(year, 8, 1) + timedelta(days=offset)
    ),
)
prescribed = set(school_age.PRESCRIBED_DAYS)


@given(dobs, school_year_starts)
def test_property_start_and_end_have_their_legal_shape(dob: date, start_of_year) -> None:
    start = csa_start(dob)
    end = csa_end(dob, start_of_year)
    assert start < end
    assert (start.month, start.day) in prescribed
    assert end.month == 6 and end.day >= 24 and end.weekday() == 4


@given(dobs)
def test_property_start_is_the_first_prescribed_day_on_or_after_the_fifth_birthday(
    dob: date,
) -> None:
    fifth = date_attaining_age(dob, 5)
    start = csa_start(dob)
    assert start >= fifth
    days_between = (fifth + timedelta(days=n) for n in range((start - fifth).days))
    assert not any((d.month, d.day) in prescribed for d in days_between)


@given(dobs)
def test_property_end_matches_the_dfe_plain_english_rule(dob: date) -> None:
    # With the default 1 September start: 16 between 1 Sep and 31 Aug leaves in that June.
    sixteenth = date_attaining_age(dob, 16)
    year = sixteenth.year if sixteenth.month < 9 else sixteenth.year + 1
    assert csa_end(dob) == last_friday_in_june(year)


@given(dobs, school_year_starts)
def test_property_compulsory_exactly_from_start_to_end(dob: date, start_of_year) -> None:
    start = csa_start(dob)
    end = csa_end(dob, start_of_year)
    one_day = timedelta(days=1)
    assert not is_compulsory_school_age(dob, start - one_day, start_of_year)
    assert is_compulsory_school_age(dob, start, start_of_year)
    assert is_compulsory_school_age(dob, end, start_of_year)
    assert not is_compulsory_school_age(dob, end + one_day, start_of_year)
