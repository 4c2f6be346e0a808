import json
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registerwatch.calendar import (
    SchoolCalendar,
    england_bank_holidays,
    school_year_of,
    week_start,
)
from registerwatch.errors import CalendarError
from registerwatch.schema import Calendar, Closure, Session, Term

TERMS_2025_26 = [
    Term(start=date(2025, 9, 3), end=date(2025, 10, 24)),
    Term(start=date(2025, 11, 3), end=date(2025, 12, 19)),
    Term(start=date(2026, 1, 5), end=date(2026, 2, 13)),
    Term(start=date(2026, 2, 23), end=date(2026, 3, 27)),
    Term(start=date(2026, 4, 13), end=date(2026, 5, 22)),
    Term(start=date(2026, 6, 1), end=date(2026, 7, 22)),
]
CLOSURES = [
    Closure(date=date(2025, 11, 14), session="both", kind="planned", reason="INSET"),
    Closure(date=date(2025, 12, 5), session="PM", kind="planned", reason="Staff training"),
    Closure(date=date(2026, 1, 20), session="both", kind="unexpected", reason="Snow"),
]


@pytest.fixture(scope="module")
def cal() -> SchoolCalendar:
    return SchoolCalendar(Calendar(school_id="oakfield", terms=TERMS_2025_26, closures=CLOSURES))


def test_weekends_half_terms_bank_holidays_and_closures_are_not_school_days(cal):
    assert not cal.is_school_day(date(2025, 9, 6))  # Saturday
    assert not cal.is_school_day(date(2025, 10, 29))  # half-term
    assert not cal.is_school_day(date(2026, 5, 4))  # early May bank holiday (in term)
    assert not cal.is_school_day(date(2025, 11, 14))  # INSET
    assert cal.is_school_day(date(2025, 12, 5))  # PM-only closure leaves the AM
    assert cal.sessions_on(date(2025, 12, 5)) == (Session.AM,)
    assert cal.sessions_on(date(2025, 12, 8)) == (Session.AM, Session.PM)
    # An unexpected closure still needs a register (coded Y4): it stays a school session.
    assert cal.is_school_day(date(2026, 1, 20))
    assert cal.closure_code(date(2026, 1, 20), Session.AM) == "Y4"
    assert cal.closure_code(date(2025, 11, 14), Session.PM) == "#"


def test_counts_and_addition(cal):
    # Tue 21 Oct + 5 school days: Wed, Thu, Fri 24, (half-term), Mon 3 Nov, Tue 4 Nov.
    assert cal.add_school_days(date(2025, 10, 21), 5) == date(2025, 11, 4)
    # across the INSET day: Mon 10 Nov + 5 = Tue..Thu, (Fri 14 INSET), Mon 17, Tue 18
    assert cal.add_school_days(date(2025, 11, 10), 5) == date(2025, 11, 18)
    # across the May bank holiday: Thu 30 Apr + 3 = Fri 1 May, Tue 5, Wed 6
    assert cal.add_school_days(date(2026, 4, 30), 3) == date(2026, 5, 6)
    assert cal.add_school_days(date(2025, 11, 4), -5) == date(2025, 10, 21)
    assert cal.count_school_days(date(2025, 9, 3), date(2025, 9, 5)) == 3
    assert cal.school_days(date(2025, 10, 23), date(2025, 11, 4)) == [
        date(2025, 10, 23),
        date(2025, 10, 24),
        date(2025, 11, 3),
        date(2025, 11, 4),
    ]
    assert cal.count_school_sessions(date(2025, 12, 5), date(2025, 12, 5)) == 1
    assert cal.add_school_sessions(date(2025, 12, 4), Session.PM, 2) == (
        date(2025, 12, 8),
        Session.AM,
    )


def test_beyond_the_configured_terms_is_a_clear_error(cal):
    with pytest.raises(CalendarError, match="add the missing term dates"):
        cal.add_school_days(date(2026, 7, 20), 5)


def test_school_weeks(cal):
    assert cal.is_school_week(date(2025, 10, 20))
    assert not cal.is_school_week(date(2025, 10, 29))  # half-term week
    # 10 school weeks ending the week of 19 Dec 2025 skip the half-term week.
    start = cal.rolling_school_weeks_start(date(2025, 12, 19), 10)
    assert start == date(2025, 10, 6)
    assert len(cal.school_weeks(start, date(2025, 12, 19))) == 10


def test_school_year_and_week_helpers(cal):
    assert school_year_of(date(2025, 8, 1)) == 2025
    assert school_year_of(date(2026, 7, 31)) == 2025
    assert week_start(date(2025, 11, 16)) == date(2025, 11, 10)
    assert cal.school_year_start(2025) == date(2025, 9, 3)


def test_overlapping_terms_are_rejected():
    with pytest.raises(CalendarError, match="overlap"):
        SchoolCalendar(
            Calendar(
                school_id="x",
                terms=[
                    Term(start=date(2025, 9, 1), end=date(2025, 10, 1)),
                    Term(start=date(2025, 9, 20), end=date(2025, 11, 1)),
                ],
            )
        )


def test_register_close_time_is_30_minutes_after_opening_in_london(cal):
    closes = cal.register_closes(date(2025, 11, 3), Session.AM)
    assert closes.hour == 9 and closes.minute == 15
    assert closes.utcoffset() == timedelta(0)  # GMT in November
    assert cal.register_closes(date(2025, 9, 8), Session.AM).utcoffset() == timedelta(hours=1)


def test_bank_holidays_agree_with_govuk_on_weekdays(shared_data):
    data = json.loads((shared_data / "govuk-bank-holidays-2019-2027.json").read_text())
    govuk = {date.fromisoformat(e["date"]) for e in data["england-and-wales"]["events"]}
    years = range(2019, 2028)
    ours = england_bank_holidays(years)
    govuk_weekdays = {d for d in govuk if d.weekday() < 5 and d.year in years}
    assert ours == govuk_weekdays


# -- property tests ---------------------------------------------------------------------------

days = st.dates(min_value=date(2025, 9, 1), max_value=date(2026, 7, 22))


@settings(max_examples=200, deadline=None)
@given(day=days, n=st.integers(min_value=1, max_value=60))
def test_add_then_count_round_trips(cal, day, n):
    try:
        target = cal.add_school_days(day, n)
    except CalendarError:
        return
    assert cal.is_school_day(target)
    assert target > day
    assert cal.school_days_after(day, target) == n
    if cal.is_school_day(day):
        assert cal.add_school_days(target, -n) == day


@settings(max_examples=200, deadline=None)
@given(a=days, b=days, c=days)
def test_counting_is_additive(cal, a, b, c):
    lo, mid, hi = sorted((a, b, c))
    assert cal.count_school_days(lo, mid) + cal.count_school_days(
        mid + timedelta(days=1), hi
    ) == cal.count_school_days(lo, hi)
    assert cal.count_school_days(lo, hi) == len(cal.school_days(lo, hi))


@settings(max_examples=200, deadline=None)
@given(day=days)
def test_school_days_are_weekdays_in_term_and_not_holidays(cal, day):
    if cal.is_school_day(day):
        assert day.weekday() < 5
        assert cal.in_term(day)
        assert day not in cal.bank_holidays
    assert cal.count_school_sessions(day, day) == len(cal.sessions_on(day)) <= 2


@settings(max_examples=100, deadline=None)
@given(day=days, n=st.integers(min_value=0, max_value=40))
def test_session_addition_counts_sessions(cal, day, n):
    if not cal.is_school_session(day, Session.AM):
        return
    try:
        target_day, target_session = cal.add_school_sessions(day, Session.AM, n)
    except CalendarError:
        return
    between = cal.school_sessions(day, target_day)
    assert between[0] == (day, Session.AM)
    assert between.index((target_day, target_session)) == n


# -- group-scoped closures and register times (issue 9 item 5) -----------------------------


def _group_calendar(**extra: object) -> SchoolCalendar:
    return SchoolCalendar(
        Calendar(
            school_id="s1",
            terms=[Term(start=date(2025, 9, 3), end=date(2025, 10, 24))],
            closures=[
                Closure(
                    date=date(2025, 9, 3),
                    session="both",
                    kind="planned",
                    reason="staggered start",
                    year_groups=["r", "7"],
                ),
                Closure(
                    date=date(2025, 9, 4),
                    session="AM",
                    kind="planned",
                    reason="polling",
                    groups=["8C"],
                ),
                Closure(date=date(2025, 9, 10), session="both", kind="unexpected", reason="flood"),
            ],
            **extra,
        ),
        bank_holidays=[],
    )


def test_a_group_closure_leaves_the_school_open_for_everyone_else() -> None:
    cal = _group_calendar()
    assert cal.sessions_on(date(2025, 9, 3)) == (Session.AM, Session.PM)
    assert cal.closure(date(2025, 9, 3), Session.AM) is None
    assert cal.group_closure(date(2025, 9, 3), Session.AM, "R", "RA") is not None
    assert cal.group_closure(date(2025, 9, 3), Session.PM, " 7 ", "7B") is not None
    assert cal.group_closure(date(2025, 9, 3), Session.AM, "8", "8C") is None
    assert cal.group_closure(date(2025, 9, 4), Session.AM, "8", "8C") is not None
    assert cal.group_closure(date(2025, 9, 4), Session.PM, "8", "8C") is None


def test_closure_year_groups_are_nc_years() -> None:
    with pytest.raises(ValueError):
        Closure(date=date(2025, 9, 3), year_groups=["Year 7"])


def test_a_whole_school_unexpected_closure_is_not_a_deadline_day() -> None:
    cal = _group_calendar()
    # Mon 8 Sep + 5 school days is Mon 15 Sep; Wed 10 Sep held no session, so Tue 16 Sep
    assert cal.add_school_days(date(2025, 9, 8), 5) == date(2025, 9, 15)
    assert cal.add_deadline_school_days(date(2025, 9, 8), 5) == date(2025, 9, 16)
    assert cal.unexpectedly_closed(date(2025, 9, 10))
    with pytest.raises(CalendarError):
        cal.add_deadline_school_days(date(2025, 10, 22), 5)


def test_register_times_by_year_group_like_wenlock() -> None:
    from datetime import time

    from registerwatch.schema import RegisterTimes

    times = RegisterTimes(
        by_group=[
            {"year_groups": ["3", "4"], "pm_open": "12:45"},
            {"year_groups": ["5", "6"], "pm_open": "13:30", "close_after_minutes": 20},
        ]
    )
    cal = _group_calendar(register_times=times)
    day = date(2025, 9, 8)
    assert cal.register_opens(day, Session.PM, "3").time() == time(12, 45)
    assert cal.register_closes(day, Session.PM, "6").time() == time(13, 50)
    assert cal.register_opens(day, Session.PM).time() == time(13, 15)
    assert cal.register_opens(day, Session.AM, "4").time() == time(8, 45)
    with pytest.raises(ValueError):
        RegisterTimes(by_group=[{"pm_open": "12:45"}])
