"""census-attendance-1.xsd: the golden file validates, the reason codes match the code table,
and one negative case per constraint it enforces."""

from __future__ import annotations

from datetime import date

import pytest
from test_export_cli_fixtures import (
    GOLDEN,
    Mutation,
    add_after,
    assert_rejected,
    duplicate,
    enumeration,
    make_request,
    mutated,
    open_store,
    remove,
    set_attribute,
    set_text,
    validate_file,
)

from registerwatch.codes import CODES_2024
from registerwatch.exports import census_attendance
from registerwatch.exports.base import validate
from registerwatch.exports.census_attendance import ABSENCE_CODES
from registerwatch.exports.registers import NC_YEARS

SCHEMA = "census-attendance-1.xsd"
AVA = "Pupils/Pupil[1]"
TERMLY = f"{AVA}/Attendance/TermlyAttendance"
DETAIL = f"{TERMLY}/SessionDetails/SessionDetail[1]"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory):
    store = open_store(tmp_path_factory.mktemp("census") / "store.db")
    try:
        [result] = census_attendance.build(make_request(store, as_of=date(2026, 1, 5),
                                                        term="autumn-2025"))
    finally:
        store.close()
    return result


def test_the_golden_file_validates_against_the_xsd() -> None:
    validate_file(SCHEMA, GOLDEN / "census-attendance-1.xml")


def test_reason_enumeration_is_the_2024_absence_codes() -> None:
    expected = [c.code for c in CODES_2024 if c.authorised or c.unauthorised]
    assert enumeration(SCHEMA, "AbsenceReasonType") == expected == list(ABSENCE_CODES)


def test_nc_year_enumeration_is_the_one_the_renderer_normalises_to() -> None:
    assert enumeration(SCHEMA, "NCYearType") == list(NC_YEARS)


def _summer_half_term_2_only(root) -> None:
    termly = root.find(TERMLY)
    termly.tag = "SummerHalfTerm2Attendance"


NEGATIVE_CASES: list[tuple[str, Mutation, tuple[str, ...]]] = [
    ("UPN not in the DfE form", set_text(f"{AVA}/UPN", "D8934001250O1"), ("'UPN'", "pattern")),
    ("UPN missing (rule 1500)", remove(f"{AVA}/UPN"), ("UPN",)),
    ("the same UPN twice (rule 1520)", duplicate(AVA), ("one-pupil-per-upn", "Duplicate")),
    ("a present code as an absence reason (rule 2475)",
     set_text(f"{DETAIL}/AttendanceReason", "/"), ("'AttendanceReason'", "enumeration")),
    ("a not-possible code as an absence reason", set_text(f"{DETAIL}/AttendanceReason", "Y4"),
     ("'AttendanceReason'", "enumeration")),
    ("a legacy code as an absence reason", set_text(f"{DETAIL}/AttendanceReason", "H"),
     ("'AttendanceReason'", "enumeration")),
    ("a reason with zero sessions (rule 2480)", set_text(f"{DETAIL}/AbsenceSessions", "0"),
     ("'AbsenceSessions'",)),
    ("a reason without its sessions (rule 2490)", remove(f"{DETAIL}/AbsenceSessions"),
     ("AbsenceSessions",)),
    ("the same reason twice (rule 2505)", duplicate(DETAIL), ("each-reason-once", "Duplicate")),
    ("negative sessions possible (rule 2500)", set_text(f"{TERMLY}/SessionsPossible", "-1"),
     ("'SessionsPossible'",)),
    ("sessions possible missing (rule 2500)", remove(f"{TERMLY}/SessionsPossible"),
     ("SessionsPossible",)),
    ("negative authorised", set_text(f"{TERMLY}/SessionsAuthorised", "-4"),
     ("'SessionsAuthorised'",)),
    ("unauthorised not a number", set_text(f"{TERMLY}/SessionsUnauthorised", "four"),
     ("'SessionsUnauthorised'",)),
    ("no attendance block at all", lambda root: root.find(f"{AVA}/Attendance").remove(
        root.find(TERMLY)), ("'Attendance'", "Missing child")),
    ("an unknown block", lambda root: setattr(root.find(TERMLY), "tag", "AnnualAttendance"),
     ("'AnnualAttendance'", "not expected")),
    ("the first summer block twice", duplicate(TERMLY), ("'TermlyAttendance'", "not expected")),
    ("impossible date of birth", set_text(f"{AVA}/DOB", "2017-02-29"), ("'DOB'",)),
    ("term start not a date", set_text("Header/Term/TermStart", "autumn"), ("'TermStart'",)),
    ("counted period end not a date", set_text("Header/Term/CountedPeriod/End", "2025-12-32"),
     ("'End'",)),
    ("URN with a letter", set_text("Header/School/URN", "12345X"), ("'URN'", "pattern")),
    ("LA code of four digits", set_text("Header/School/LACode", "8934"),
     ("'LACode'", "pattern")),
    ("LAESTAB with a space", set_text("Header/School/LAEstab", "893 4001"),
     ("'LAEstab'", "pattern")),
    ("a season that is not a census term", set_text("Header/Term/Season", "winter"),
     ("'Season'", "enumeration")),
    ("a two-digit year", set_text("Header/Term/Year", "25"), ("'Year'", "pattern")),
    ("a block name that is not one", set_text("Header/Term/CountedPeriod/Block", "Annual"),
     ("'Block'", "enumeration")),
    ("sex not M, F or U", set_text(f"{AVA}/Sex", "female"), ("'Sex'", "enumeration")),
    ("NC year not a CBDS code", set_text(f"{AVA}/NCyearActual", "Y4"),
     ("'NCyearActual'", "enumeration")),
    ("blank surname", set_text(f"{AVA}/Surname", ""), ("'Surname'", "length")),
    ("negative age", set_text("Header/AgeWindow/YoungestAge", "-4"), ("'YoungestAge'",)),
    ("GeneratedAt without an offset", set_text("Header/GeneratedAt", "2026-01-05T17:30:00"),
     ("'GeneratedAt'", "pattern")),
    ("header missing its term", remove("Header/Term"), ("Term",)),
    ("an element the census does not define",
     add_after(f"{AVA}/DOB", "HomeAddress", "1 Any Street"), ("'HomeAddress'", "not expected")),
    ("another return's name", set_text("Header/Return", "ctf"), ("'Return'", "fixed")),
    ("another schema version", set_attribute("version", "0"), ("version",)),
]


@pytest.mark.parametrize(("change", "expected"), [(c, e) for _, c, e in NEGATIVE_CASES],
                         ids=[name for name, _, _ in NEGATIVE_CASES])
def test_each_constraint_rejects_a_violation(rendered, change: Mutation,
                                             expected: tuple[str, ...]) -> None:
    assert_rejected(rendered, change, *expected)


def test_a_second_summer_half_alone_is_valid(rendered) -> None:
    """A pupil on roll only after the spring bank holiday has only the second summer block."""
    validate(mutated(rendered, _summer_half_term_2_only))
