"""ctf-attendance-1.xsd: the golden file validates, the marks alphabet matches the code tables,
and one negative case per constraint it enforces."""

from __future__ import annotations

import string
from datetime import date

import pytest
from test_export_cli_fixtures import (
    GOLDEN,
    Mutation,
    add_after,
    assert_rejected,
    duplicate,
    make_request,
    mutated,
    open_store,
    remove,
    set_text,
    validate_file,
)

from registerwatch.adapters.ctf import NOT_IN_SESSION, VENDOR_SINGLE_CHARACTER_CODES
from registerwatch.codes import CODES_2024
from registerwatch.errors import ExportValidationError
from registerwatch.exports import ctf
from registerwatch.exports.base import validate

SCHEMA = "ctf-attendance-1.xsd"
AVA = "CTFpupilData/Pupil[1]"
YEAR = f"{AVA}/Attendance/YearData"
MARKS = f"{YEAR}/AttendSessions/AttendanceMarks"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory):
    store = open_store(tmp_path_factory.mktemp("ctf") / "store.db")
    try:
        [result] = ctf.build(make_request(store, as_of=date(2026, 1, 5)))
    finally:
        store.close()
    return result


def test_the_golden_file_validates_against_the_xsd() -> None:
    validate_file(SCHEMA, GOLDEN / "ctf-1.xml")


def test_marks_alphabet_is_the_single_character_codes_vendor_characters_and_hash(
        rendered) -> None:
    """Every printable character is tried: exactly the expected ones are accepted."""
    expected = ({c.code for c in CODES_2024 if len(c.code) == 1}
                | set(VENDOR_SINGLE_CHARACTER_CODES) | {NOT_IN_SESSION})
    accepted = set()
    for character in sorted(set(string.printable) - set(string.whitespace)):
        try:
            validate(mutated(rendered, set_text(MARKS, character * 2)))
        except ExportValidationError:
            continue
        accepted.add(character)
    assert accepted == expected


NEGATIVE_CASES: list[tuple[str, Mutation, tuple[str, ...]]] = [
    ("UPN not in the DfE form", set_text(f"{AVA}/UPN", "893400125001D"), ("'UPN'", "pattern")),
    ("UPN missing", remove(f"{AVA}/UPN"), ("UPN",)),
    ("the same UPN twice", duplicate(AVA), ("one-pupil-per-upn", "Duplicate")),
    ("a legacy code in the marks", set_text(MARKS, "/H"), ("'AttendanceMarks'", "pattern")),
    ("a two-character code written inline", set_text(MARKS, "/C1\\"),
     ("'AttendanceMarks'", "pattern")),
    ("an odd number of characters", set_text(MARKS, "/\\/"), ("'AttendanceMarks'", "pattern")),
    ("an empty marks string", set_text(MARKS, ""), ("'AttendanceMarks'",)),
    ("marks without a start date", remove(f"{YEAR}/AttendSessions/AttendanceStartDate"),
     ("AttendanceStartDate",)),
    ("a start date that is not a date", set_text(f"{YEAR}/AttendSessions/AttendanceStartDate",
                                                 "2025-09-31"), ("'AttendanceStartDate'",)),
    ("negative sessions possible", set_text(f"{YEAR}/SessionsPossible", "-1"),
     ("'SessionsPossible'",)),
    ("sessions attended not a number", set_text(f"{YEAR}/SessionsAttended", "many"),
     ("'SessionsAttended'",)),
    ("sessions unauthorised missing", remove(f"{YEAR}/SessionsUnauthorised"),
     ("SessionsUnauthorised",)),
    ("year data without a year", remove(f"{YEAR}/Year"), ("Year",)),
    ("a year like 2025/26", set_text(f"{YEAR}/Year", "2025/26"), ("'Year'", "pattern")),
    ("LEA of two digits", set_text(f"{YEAR}/LEA", "89"), ("'LEA'", "pattern")),
    ("Estab of seven digits", set_text("Header/SourceSchool/Estab", "8934001"),
     ("'Estab'", "pattern")),
    ("destination that is not a school or a placeholder",
     add_after("Header/SourceSchool", "DestSchool"), ("DestSchool", "LEA")),
    ("academic year not four digits", set_text("Header/SourceSchool/AcademicYear", "25"),
     ("'AcademicYear'", "pattern")),
    ("a document that is not a CTF", set_text("Header/DocumentName", "Census"),
     ("'DocumentName'", "fixed")),
    ("a version that is not n.n", set_text("Header/CTFversion", "25"),
     ("'CTFversion'", "pattern")),
    ("DateTime with an offset", set_text("Header/DateTime", "2026-01-05T17:30:00+00:00"),
     ("'DateTime'", "pattern")),
    ("DateTime that is not a date-time", set_text("Header/DateTime", "2026-01-05"),
     ("'DateTime'",)),
    ("qualifier not full or partial", set_text("Header/DocumentQualifier", "some"),
     ("'DocumentQualifier'", "enumeration")),
    ("date of birth not a date", set_text(f"{AVA}/DOB", "14/03/2017"), ("'DOB'",)),
    ("sex not M, F or U", set_text(f"{AVA}/Sex", "Female"), ("'Sex'", "enumeration")),
    ("blank forename", set_text(f"{AVA}/Forename", " "), ("'Forename'", "length")),
    ("pupil without attendance", remove(f"{AVA}/Attendance"), ("Attendance",)),
]


@pytest.mark.parametrize(("change", "expected"), [(c, e) for _, c, e in NEGATIVE_CASES],
                         ids=[name for name, _, _ in NEGATIVE_CASES])
def test_each_constraint_rejects_a_violation(rendered, change: Mutation,
                                             expected: tuple[str, ...]) -> None:
    assert_rejected(rendered, change, *expected)


@pytest.mark.parametrize("placeholder", ["MMMMMMM", "XXXXXXX", "8812001"])
def test_destination_placeholders_are_valid(tmp_path_factory: pytest.TempPathFactory,
                                            placeholder: str) -> None:
    store = open_store(tmp_path_factory.mktemp("dest") / "store.db")
    try:
        [result] = ctf.build(make_request(store, as_of=date(2026, 1, 5),
                                          options={"ctf_destination": placeholder}))
    finally:
        store.close()
    validate(result)


def test_a_destination_mixing_digits_and_placeholders_is_rejected(rendered) -> None:
    def mixed(root) -> None:
        add_after("Header/SourceSchool", "DestSchool")(root)
        dest = root.find("Header/DestSchool")
        for tag, text in (("LEA", "MMM"), ("Estab", "12X4")):
            child = dest.makeelement(tag, {})
            child.text = text
            dest.append(child)

    assert_rejected(rendered, mixed, "'Estab'", "pattern")
