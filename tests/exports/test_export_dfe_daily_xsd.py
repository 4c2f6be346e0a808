"""dfe-daily-1.xsd: the golden file validates, its enumerations match the code tables, and one
negative case per constraint it enforces."""

from __future__ import annotations

import dataclasses
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
    open_store,
    remove,
    set_attribute,
    set_text,
    validate_file,
)

from registerwatch.codes import CODES_2024
from registerwatch.exports import dfe_daily
from registerwatch.exports.registers import NC_YEARS

SCHEMA = "dfe-daily-1.xsd"
FIRST = "Records/Record[1]"
BEN_AM = "Records/Record[3]"  # U with MinutesLate 40


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory):
    store = open_store(tmp_path_factory.mktemp("dfe") / "store.db")
    try:
        [result] = dfe_daily.build(make_request(store, as_of=date(2025, 9, 10),
                                                day=date(2025, 9, 9)))
    finally:
        store.close()
    return result


def test_the_golden_file_validates_against_the_xsd() -> None:
    validate_file(SCHEMA, GOLDEN / "dfe-daily-1.xml")


def test_attendance_code_enumeration_is_the_2024_code_table() -> None:
    assert enumeration(SCHEMA, "AttendanceCodeType") == [c.code for c in CODES_2024]


def test_nc_year_enumeration_is_the_one_the_renderer_normalises_to() -> None:
    assert enumeration(SCHEMA, "NCYearType") == list(NC_YEARS)


NEGATIVE_CASES: list[tuple[str, Mutation, tuple[str, ...]]] = [
    ("UPN check letter outside the alphabet", set_text(f"{FIRST}/UPN", "I893400125001"),
     ("'UPN'", "pattern")),
    ("UPN too short", set_text(f"{FIRST}/UPN", "D89340012500"), ("'UPN'", "pattern")),
    ("UPN last character lower case", set_text(f"{FIRST}/UPN", "D89340012500a"),
     ("'UPN'", "pattern")),
    ("code not in the 2024 table (legacy H)", set_text(f"{FIRST}/AttendanceCode", "H"),
     ("'AttendanceCode'", "enumeration")),
    ("code not a code at all", set_text(f"{FIRST}/AttendanceCode", "ZZ"),
     ("'AttendanceCode'", "enumeration")),
    ("session not AM or PM", set_text(f"{FIRST}/Session", "EV"), ("'Session'", "enumeration")),
    ("header session not AM or PM", set_text("Header/Sessions/Session", "am"),
     ("'Session'", "enumeration")),
    ("header session listed twice", set_text("Header/Sessions/Session[2]", "AM"),
     ("each-session-once",)),
    ("negative minutes late", set_text(f"{BEN_AM}/MinutesLate", "-5"), ("'MinutesLate'",)),
    ("negative unmarked count", set_text("Header/UnmarkedSessions", "-1"),
     ("'UnmarkedSessions'",)),
    ("missing forename", remove(f"{FIRST}/Forename"), ("Forename",)),
    ("missing date of birth", remove(f"{FIRST}/DOB"), ("DOB",)),
    ("missing session", remove(f"{FIRST}/Session"), ("Session",)),
    ("missing header GeneratedAt", remove("Header/GeneratedAt"), ("GeneratedAt",)),
    ("neither a code nor unmarked", remove(f"{FIRST}/AttendanceCode"),
     ("AttendanceCode", "Unmarked")),
    ("both a code and unmarked", add_after(f"{FIRST}/AttendanceCode", "Unmarked"),
     ("'Unmarked'", "not expected")),
    ("unmarked with content", lambda root: (
        root.find(FIRST).remove(root.find(f"{FIRST}/AttendanceCode")),
        add_after(f"{FIRST}/Session", "Unmarked", "late")(root)), ("'Unmarked'",)),
    ("an element that could carry an MIS comment", add_after(f"{FIRST}/AttendanceCode",
                                                             "Comment", "dentist"),
     ("'Comment'", "not expected")),
    ("impossible date of birth", set_text(f"{FIRST}/DOB", "2017-02-30"), ("'DOB'", "date")),
    ("attendance date not ISO", set_text("Header/AttendanceDate", "09/09/2025"),
     ("'AttendanceDate'",)),
    ("admission date not a date", set_text(f"{FIRST}/AdmissionDate", "2024-13-01"),
     ("'AdmissionDate'",)),
    ("URN of five digits", set_text(f"{FIRST}/URN", "12345"), ("'URN'", "pattern")),
    ("school URN with a letter", set_text("Header/School/URN", "12345A"), ("'URN'", "pattern")),
    ("LA code of two digits", set_text(f"{FIRST}/LACode", "89"), ("'LACode'", "pattern")),
    ("LAESTAB of six digits", set_text("Header/School/LAEstab", "893400"),
     ("'LAEstab'", "pattern")),
    ("sex not M, F or U", set_text(f"{FIRST}/Sex", "X"), ("'Sex'", "enumeration")),
    ("flag not Y or N", set_text(f"{FIRST}/FSM", "yes"), ("'FSM'", "enumeration")),
    ("NC year not a CBDS code", set_text(f"{FIRST}/NCyearActual", "Y4"),
     ("'NCyearActual'", "enumeration")),
    ("blank forename", set_text(f"{FIRST}/Forename", "   "), ("'Forename'", "length")),
    ("GeneratedAt without an offset", set_text("Header/GeneratedAt", "2026-01-05T17:30:00"),
     ("'GeneratedAt'", "pattern")),
    ("the same pupil twice in a session", duplicate(FIRST),
     ("one-record-per-pupil-session", "Duplicate")),
    ("blank pupil reference", set_text(f"{FIRST}/PupilRef", ""), ("'PupilRef'", "length")),
    ("pupil reference with surrounding spaces", set_text(f"{FIRST}/PupilRef", " 1001 "),
     ("'PupilRef'", "pattern")),
    ("another return's name", set_text("Header/Return", "census-attendance"),
     ("'Return'", "fixed")),
    ("another schema version", set_attribute("version", "2"), ("version",)),
]


@pytest.mark.parametrize(("change", "expected"), [(c, e) for _, c, e in NEGATIVE_CASES],
                         ids=[name for name, _, _ in NEGATIVE_CASES])
def test_each_constraint_rejects_a_violation(rendered, change: Mutation,
                                             expected: tuple[str, ...]) -> None:
    assert_rejected(rendered, change, *expected)


def test_the_error_lists_every_problem_at_once(rendered) -> None:
    def two_problems(root) -> None:
        set_text(f"{FIRST}/Session", "EV")(root)
        set_text(f"{FIRST}/URN", "1")(root)

    message = assert_rejected(rendered, two_problems, "'Session'", "'URN'")
    assert message.count("\n  - ") >= 2


def test_two_records_sharing_a_upn_still_validate(rendered) -> None:
    """A duplicated UPN is UPN002's finding to fix; the day's return still goes (keyed by the
    MIS's own id), so the DfE is not left without the school's attendance."""
    from lxml import etree

    from registerwatch.exports.base import validate

    root = etree.fromstring(rendered.xml)
    first, *others = root.findall("Records/Record")
    second = next(r for r in others if r.findtext("PupilRef") != first.findtext("PupilRef")
                  and r.findtext("Session") == first.findtext("Session"))
    assert first.find("UPN") is not None and second.find("UPN") is not None
    second.find("UPN").text = first.findtext("UPN")
    copy = dataclasses.replace(rendered, xml=etree.tostring(root, xml_declaration=True,
                                                            encoding="UTF-8"))
    validate(copy)
