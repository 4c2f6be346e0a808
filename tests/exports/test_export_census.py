"""census-attendance: term boundaries (Easter), the age window, refusals (its golden file and
XSD cases: tests/exports/test_export_returns.py)."""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from pathlib import Path

import holidays
import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree
from test_export_cli_fixtures import (
    GENERATED_AT,
    SECRET_COMMENT,
    calendar,
    make_request,
    marks,
    open_store,
    pupil,
    pupils,
)

from registerwatch.calendar import SchoolCalendar
from registerwatch.exports import census_attendance
from registerwatch.exports.base import validate
from registerwatch.exports.census_attendance import (
    CensusTermError,
    census_term,
    easter_sunday,
    latest_complete_term,
    parse_term,
)
from registerwatch.exports.census_attendance.terms import (
    spring_bank_holiday,
    term_containing,
)
from registerwatch.exports.registers import (
    ExportRequestError,
    IncompleteRegisterError,
    ReturnDataError,
    SchoolIdentity,
    make_register,
)
from registerwatch.schema import Calendar, Mark, Session, Term

AUTUMN_AS_OF = date(2026, 1, 5)


@pytest.fixture
def store(tmp_path: Path):
    opened = open_store(tmp_path / "store.db")
    yield opened
    opened.close()


def build_one(store, **kwargs):
    [rendered] = census_attendance.build(make_request(store, **kwargs))
    return rendered


def blocks(rendered) -> dict[str, dict[str, object]]:
    """UPN -> {block element: (possible, authorised, unauthorised, {reason: sessions})}."""
    found: dict[str, dict[str, object]] = {}
    for element in etree.fromstring(rendered.xml).findall("Pupils/Pupil"):
        upn = element.findtext("UPN")
        found[upn] = {
            block.tag: (
                int(block.findtext("SessionsPossible")),
                int(block.findtext("SessionsAuthorised")),
                int(block.findtext("SessionsUnauthorised")),
                {
                    d.findtext("AttendanceReason"): int(d.findtext("AbsenceSessions"))
                    for d in block.findall("SessionDetails/SessionDetail")
                },
            )
            for block in element.find("Attendance")
        }
    return found


# -- the counts -------------------------------------------------------------------------------


def test_counts_by_hand(store) -> None:
    # Autumn 2025 at Wenlock: 38 days to 24 Oct (its afternoon closed) = 75 sessions, and 34 days
    # from 3 Nov (INSET on 14 Nov) = 68 sessions; the unexpected closure's 2 Y4 sessions are not
    # possible sessions: 141.
    found = blocks(build_one(store, as_of=AUTUMN_AS_OF, term="autumn-2025"))
    assert found == {
        "D893400125001": {"TermlyAttendance": (141, 4, 4, {"C1": 1, "M": 1, "I": 2, "G": 4})},
        "T893400125002": {
            "TermlyAttendance": (141, 3, 3, {"J1": 1, "C2": 2, "N": 1, "O": 1, "U": 1})
        },
        # joined 15 Sept; K (2) and V (1) are attendance, not absence reasons
        "G893400125003": {"TermlyAttendance": (125, 3, 0, {"R": 1, "I": 2})},
        # left 10 Oct: 28 days, less one Y1 session
        "W893400125004": {"TermlyAttendance": (55, 2, 0, {"E": 2})},
    }


def test_pupils_outside_the_age_window_and_boarders_are_left_out(store) -> None:
    found = blocks(build_one(store, as_of=AUTUMN_AS_OF, term="autumn-2025"))
    assert "K893400125005" not in found  # Eve, aged 3 at 31 August 2025
    assert "Z893400125006" not in found  # Finn, a boarder (census rule 2470)


def test_the_age_window_is_a_setting(store) -> None:
    rendered = build_one(
        store, as_of=AUTUMN_AS_OF, term="autumn-2025", options={"census_age_window": "3-15"}
    )
    assert blocks(rendered)["K893400125005"] == {"TermlyAttendance": (71, 0, 0, {})}
    header = etree.fromstring(rendered.xml).find("Header/AgeWindow")
    assert [header.findtext(t) for t in ("AgeAt", "YoungestAge", "OldestAge")] == [
        "2025-08-31",
        "3",
        "15",
    ]


@pytest.mark.parametrize("window", ["four-fifteen", "15-4", "4"])
def test_a_bad_age_window_is_refused(store, window: str) -> None:
    with pytest.raises(ExportRequestError, match="census_age_window"):
        build_one(
            store, as_of=AUTUMN_AS_OF, term="autumn-2025", options={"census_age_window": window}
        )


def test_age_window_edges_at_31_august(tmp_path: Path) -> None:
    cases = {
        2001: date(2021, 8, 31),  # 4 on 31 Aug 2025: in
        2002: date(2021, 9, 1),  # 3: out
        2003: date(2009, 9, 1),  # 15: in
        2004: date(2009, 8, 31),  # 16: out
        2005: date(2012, 2, 29),  # 13 (a leap-day birthday): in
    }
    everyone = [
        pupil(n, "Test", f"Pupil{n}", f"{_upn(n)}", dob, "F", "1") for n, dob in cases.items()
    ]
    store = open_store(tmp_path / "ages.db", everyone)
    try:
        found = blocks(build_one(store, as_of=AUTUMN_AS_OF, term="autumn-2025"))
    finally:
        store.close()
    assert sorted(found) == sorted(_upn(n) for n in (2001, 2003, 2005))


def _upn(n: int) -> str:
    from registerwatch.upn import check_letter

    body = f"8934001250{n % 100:02d}"
    return check_letter(body) + body


def test_mis_comments_are_never_exported(store) -> None:
    rendered = build_one(store, as_of=AUTUMN_AS_OF, term="autumn-2025")
    assert any(m.comment == SECRET_COMMENT for m in store.marks("wenlock"))
    assert SECRET_COMMENT.encode() not in rendered.xml + rendered.csv_bytes()


# -- refusals ---------------------------------------------------------------------------------


def test_unmarked_sessions_are_refused_with_a_summary_per_pupil(tmp_path: Path) -> None:
    everyone = pupils()
    skip = [
        ("wenlock:1001", date(2025, 9, 10), Session.PM),
        ("wenlock:1001", date(2025, 12, 1), Session.AM),
        ("wenlock:1003", date(2025, 10, 2), Session.AM),
    ]
    store = open_store(tmp_path / "s.db", everyone, marks(everyone, skip=skip))
    try:
        with pytest.raises(IncompleteRegisterError) as raised:
            build_one(store, as_of=AUTUMN_AS_OF, term="autumn-2025")
        rendered = build_one(store, as_of=AUTUMN_AS_OF, term="autumn-2025", allow_incomplete=True)
    finally:
        store.close()
    assert raised.value.errors == [
        "pupil 1001: 2 school sessions without a mark (2025-09-10 PM to 2025-12-01 AM)",
        "pupil 1003: 1 school session without a mark (2025-10-02 AM)",
    ]
    validate(rendered)
    # Unmarked sessions are not counted: their code is unknown.
    found = blocks(rendered)
    assert found["D893400125001"]["TermlyAttendance"] == (
        139,
        3,
        4,
        {"C1": 1, "M": 1, "I": 1, "G": 4},
    )
    # Cara's unmarked session would have been K (attendance): one possible session fewer.
    assert found["G893400125003"]["TermlyAttendance"] == (124, 3, 0, {"R": 1, "I": 2})


def test_a_term_not_over_is_refused_unless_allowed(store) -> None:
    with pytest.raises(ExportRequestError, match="runs to 2025-12-31") as raised:
        build_one(store, as_of=date(2025, 12, 1), term="autumn-2025")
    assert "--allow-incomplete" in str(raised.value)
    rendered = build_one(store, as_of=date(2025, 12, 1), term="autumn-2025", allow_incomplete=True)
    period = etree.fromstring(rendered.xml).find("Header/Term/CountedPeriod")
    assert [period.findtext(t) for t in ("Block", "Start", "End")] == [
        "TermlyAttendance",
        "2025-08-01",
        "2025-11-30",
    ]
    # 141 possible over the term, less the 15 school days (30 sessions) of December.
    assert blocks(rendered)["D893400125001"]["TermlyAttendance"][0] == 141 - 30


def test_a_term_not_started_is_refused(store) -> None:
    with pytest.raises(ExportRequestError, match="starts 2026-04-06"):
        build_one(store, as_of=AUTUMN_AS_OF, term="summer-2026", allow_incomplete=True)


def test_a_legacy_code_in_the_term_is_refused(tmp_path: Path) -> None:
    everyone = pupils()
    changed = [
        Mark(pupil_id=m.pupil_id, date=m.date, session=m.session, code="H")
        if (m.pupil_id, m.date, m.session) == ("wenlock:1002", date(2025, 10, 6), Session.PM)
        else m
        for m in marks(everyone)
    ]
    store = open_store(tmp_path / "s.db", everyone, changed)
    try:
        with pytest.raises(ReturnDataError) as raised:
            build_one(store, as_of=AUTUMN_AS_OF, term="autumn-2025")
    finally:
        store.close()
    assert raised.value.errors == [
        (
            "pupil 1002: 2025-10-06 PM is marked 'H', which is not a 2024 national code on that "
            "date (SI 2024/208 reg 10)"
        )
    ]


def test_a_pupil_without_a_upn_is_refused(tmp_path: Path) -> None:
    everyone = [p.model_copy(update={"upn": None}) if p.mis_id == "1003" else p for p in pupils()]
    store = open_store(tmp_path / "s.db", everyone)
    try:
        with pytest.raises(ReturnDataError) as raised:
            build_one(store, as_of=AUTUMN_AS_OF, term="autumn-2025")
    finally:
        store.close()
    assert [e.split(":")[0] for e in raised.value.errors] == ["pupil 1003"]
    assert "census rule 1500" in raised.value.errors[0]


# -- terms ------------------------------------------------------------------------------------

KNOWN_EASTERS = [
    date(1818, 3, 22),
    date(1943, 4, 25),
    date(2000, 4, 23),
    date(2019, 4, 21),
    date(2024, 3, 31),
    date(2025, 4, 20),
    date(2026, 4, 5),
    date(2027, 3, 28),
    date(2038, 4, 25),
    date(2285, 3, 22),
]


@pytest.mark.parametrize("easter", KNOWN_EASTERS, ids=[d.isoformat() for d in KNOWN_EASTERS])
def test_easter_sunday_known_dates(easter: date) -> None:
    assert easter_sunday(easter.year) == easter


def test_easter_agrees_with_the_england_easter_monday_bank_holiday() -> None:
    table = holidays.country_holidays("GB", subdiv="ENG", years=range(1980, 2101))
    mondays = {d.year: d for d, name in table.items() if name == "Easter Monday"}
    assert len(mondays) == 121
    for year, monday in mondays.items():
        assert easter_sunday(year) + timedelta(days=1) == monday, year


def test_easter_agrees_with_dateutil_where_installed() -> None:
    dateutil_easter = pytest.importorskip("dateutil.easter")
    for year in range(1583, 3000):
        assert easter_sunday(year) == dateutil_easter.easter(year), year


def test_term_boundaries_2025_26() -> None:
    autumn, spring, summer = (parse_term(t) for t in ("autumn-2025", "spring-2026", "summer-2026"))
    assert (autumn.start, autumn.end) == (date(2025, 8, 1), date(2025, 12, 31))
    assert (spring.start, spring.end) == (date(2026, 1, 1), date(2026, 4, 5))  # Easter Sunday
    first, second = summer.periods
    assert (first.element, first.start, first.end) == (
        "TermlyAttendance",
        date(2026, 4, 6),
        date(2026, 5, 24),
    )  # Easter Monday .. Sunday
    assert (second.element, second.start, second.end) == (
        "SummerHalfTerm2Attendance",
        date(2026, 5, 25),
        date(2026, 7, 31),
    )  # spring bank hol.
    assert [t.age_date for t in (autumn, spring, summer)] == [date(2025, 8, 31)] * 3


def test_summer_halves_meet_when_the_spring_bank_holiday_moved() -> None:
    # 2022: the spring bank holiday was Thursday 2 June (Platinum Jubilee).
    assert spring_bank_holiday(2022) == date(2022, 6, 2)
    first, second = census_term("summer", 2022).periods
    assert first.end == date(2022, 5, 29)  # the Sunday before it
    assert second.start == date(2022, 5, 30)


@given(st.dates(min_value=date(1990, 1, 2), max_value=date(2090, 12, 31)))
def test_census_terms_cover_every_day_exactly_once(day: date) -> None:
    term = term_containing(day)
    assert term.start <= day <= term.end
    before = term_containing(day - timedelta(days=1))
    # Consecutive days are in the same term, or the earlier one's term ends the day before.
    assert before == term or (before.end == day - timedelta(days=1) and term.start == day)
    spans = [(p.start, p.end) for p in term.periods]
    assert all(s <= e for s, e in spans)
    assert all(a[1] + timedelta(days=1) == b[0] for a, b in itertools.pairwise(spans))


@pytest.mark.parametrize(
    ("as_of", "expected"),
    [
        (date(2025, 12, 1), "summer-2025"),
        (date(2026, 1, 1), "autumn-2025"),
        (date(2026, 4, 5), "autumn-2025"),  # Easter Sunday is the last day of spring
        (date(2026, 4, 6), "spring-2026"),
        (date(2026, 8, 1), "summer-2026"),
    ],
)
def test_the_default_term_is_the_last_one_ended(as_of: date, expected: str) -> None:
    assert latest_complete_term(as_of).label == expected


@pytest.mark.parametrize("text", ["winter-2025", "autumn 2025", "autumn-25", "2025-autumn", ""])
def test_bad_term_names_are_refused(text: str) -> None:
    with pytest.raises(CensusTermError, match=r"e\.g\. autumn-2025"):
        parse_term(text)


def test_term_names_ignore_case_and_spaces() -> None:
    assert parse_term(" Summer-2026 ").label == "summer-2026"


def test_marks_either_side_of_easter_fall_in_spring_and_summer() -> None:
    """A school open through Easter 2026: Thursday 2 April counts in spring, Tuesday 7 April in
    summer (Good Friday and Easter Monday are bank holidays)."""
    cal = SchoolCalendar(
        Calendar(school_id="wenlock", terms=[Term(start=date(2026, 3, 30), end=date(2026, 4, 10))])
    )
    school = SchoolIdentity("wenlock", "123456", "8934001", "893", "Wenlock Primary School")
    ava = pupils()[0]
    register = make_register(
        school,
        cal,
        [ava],
        [
            Mark(pupil_id=ava.id, date=d, session=s, code="I" if d == date(2026, 4, 2) else "/")
            for d, s in cal.school_sessions(date(2026, 3, 30), date(2026, 4, 10))
        ],
    )
    spring = census_attendance.render(
        register, parse_term("spring-2026"), as_of=date(2026, 4, 13), generated_at=GENERATED_AT
    )
    summer = census_attendance.render(
        register,
        parse_term("summer-2026"),
        as_of=date(2026, 4, 13),
        generated_at=GENERATED_AT,
        allow_incomplete=True,
    )
    validate(spring)
    validate(summer)
    # Mon 30 Mar - Thu 2 Apr: 4 days; Tue 7 - Fri 10 Apr: 4 days.
    assert blocks(spring)["D893400125001"] == {"TermlyAttendance": (8, 2, 0, {"I": 2})}
    assert blocks(summer)["D893400125001"] == {"TermlyAttendance": (8, 0, 0, {})}


def test_summer_return_has_both_half_term_blocks(tmp_path: Path) -> None:
    everyone = pupils()
    store = open_store(
        tmp_path / "s.db", everyone, marks(everyone, date(2026, 4, 1), date(2026, 7, 31))
    )
    try:
        rendered = build_one(store, as_of=date(2026, 8, 3), term="summer-2026")
    finally:
        store.close()
    validate(rendered)
    cal = calendar()
    first = cal.count_school_sessions(date(2026, 4, 6), date(2026, 5, 24))
    second = cal.count_school_sessions(date(2026, 5, 25), date(2026, 7, 31))
    assert (first, second) == (2 * 29, 2 * 38)  # 4 May bank holiday; 22 July the last day
    assert blocks(rendered)["D893400125001"] == {
        "TermlyAttendance": (first, 0, 0, {}),
        "SummerHalfTerm2Attendance": (second, 0, 0, {}),
    }
    assert "W893400125004" not in blocks(rendered)  # Dev left in October 2025


def test_generated_school_counts_are_consistent(tmp_path: Path) -> None:
    """Rule 2530 (absence <= possible) and the detail adding up to the totals, on the
    simulator's school; and no MIS comment in the output."""
    from test_export_cli_fixtures import school_table, settings

    from registerwatch.simulator.generate import generate_school
    from registerwatch.store import Store

    school = generate_school(3, 80, inject_breaches=False)
    s = school.school
    config = settings(
        schools=[
            school_table(s.id, s.urn, s.laestab)
            | {
                "calendar": {
                    "terms": [t.model_dump() for t in school.calendar.terms],
                    "closures": [c.model_dump(mode="json") for c in school.calendar.closures],
                }
            }
        ]
    )
    store = Store.open(f"sqlite:///{tmp_path / 'gen.db'}")
    try:
        store.upsert_pupils(school.pupils)
        store.upsert_marks(school.marks, s.id)
        assert school.as_of is not None
        [rendered] = census_attendance.build(
            make_request(
                store,
                as_of=school.as_of,
                term="autumn-2025",
                allow_incomplete=True,
                school_settings=config.school(s.id),
            )
        )
    finally:
        store.close()
    validate(rendered)
    found = blocks(rendered)
    assert len(found) > 40
    for upn, by_block in found.items():
        possible, authorised, unauthorised, reasons = by_block["TermlyAttendance"]
        assert authorised + unauthorised <= possible, upn
        assert sum(reasons.values()) == authorised + unauthorised, upn
    for comment in {m.comment for m in school.marks if m.comment}:
        assert comment.encode() not in rendered.xml + rendered.csv_bytes()
