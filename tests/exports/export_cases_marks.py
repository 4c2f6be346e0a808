"""The XSD negative cases of the marks-based returns (dfe-daily, census-attendance, ctf).

Each case is (name, mutation, expected): the mutation breaks exactly one constraint of a valid
rendered document (ElementPath from the root), and a validation error line names every expected
part. Run by tests/exports/test_export_returns.py.
"""

from __future__ import annotations

from test_export_cli_fixtures import (
    Mutation,
    add_after,
    duplicate,
    remove,
    set_attribute,
    set_text,
)

# dfe-daily-1.xsd
FIRST = "Records/Record[1]"
BEN_AM = "Records/Record[3]"  # U with MinutesLate 40

DFE_DAILY: list[tuple[str, Mutation, tuple[str, ...]]] = [
    (
        "UPN check letter outside the alphabet",
        set_text(f"{FIRST}/UPN", "I893400125001"),
        ("'UPN'", "pattern"),
    ),
    ("UPN too short", set_text(f"{FIRST}/UPN", "D89340012500"), ("'UPN'", "pattern")),
    (
        "UPN last character lower case",
        set_text(f"{FIRST}/UPN", "D89340012500a"),
        ("'UPN'", "pattern"),
    ),
    (
        "code not in the 2024 table (legacy H)",
        set_text(f"{FIRST}/AttendanceCode", "H"),
        ("'AttendanceCode'", "enumeration"),
    ),
    (
        "code not a code at all",
        set_text(f"{FIRST}/AttendanceCode", "ZZ"),
        ("'AttendanceCode'", "enumeration"),
    ),
    ("session not AM or PM", set_text(f"{FIRST}/Session", "EV"), ("'Session'", "enumeration")),
    (
        "header session not AM or PM",
        set_text("Header/Sessions/Session", "am"),
        ("'Session'", "enumeration"),
    ),
    (
        "header session listed twice",
        set_text("Header/Sessions/Session[2]", "AM"),
        ("each-session-once",),
    ),
    ("negative minutes late", set_text(f"{BEN_AM}/MinutesLate", "-5"), ("'MinutesLate'",)),
    ("negative unmarked count", set_text("Header/UnmarkedSessions", "-1"), ("'UnmarkedSessions'",)),
    ("missing forename", remove(f"{FIRST}/Forename"), ("Forename",)),
    ("missing date of birth", remove(f"{FIRST}/DOB"), ("DOB",)),
    ("missing session", remove(f"{FIRST}/Session"), ("Session",)),
    ("missing header GeneratedAt", remove("Header/GeneratedAt"), ("GeneratedAt",)),
    (
        "neither a code nor unmarked",
        remove(f"{FIRST}/AttendanceCode"),
        ("AttendanceCode", "Unmarked"),
    ),
    (
        "both a code and unmarked",
        add_after(f"{FIRST}/AttendanceCode", "Unmarked"),
        ("'Unmarked'", "not expected"),
    ),
    (
        "unmarked with content",
        lambda root: (
            root.find(FIRST).remove(root.find(f"{FIRST}/AttendanceCode")),
            add_after(f"{FIRST}/Session", "Unmarked", "late")(root),
        ),
        ("'Unmarked'",),
    ),
    (
        "an element that could carry an MIS comment",
        add_after(f"{FIRST}/AttendanceCode", "Comment", "dentist"),
        ("'Comment'", "not expected"),
    ),
    ("impossible date of birth", set_text(f"{FIRST}/DOB", "2017-02-30"), ("'DOB'", "date")),
    (
        "attendance date not ISO",
        set_text("Header/AttendanceDate", "09/09/2025"),
        ("'AttendanceDate'",),
    ),
    (
        "admission date not a date",
        set_text(f"{FIRST}/AdmissionDate", "2024-13-01"),
        ("'AdmissionDate'",),
    ),
    ("URN of five digits", set_text(f"{FIRST}/URN", "12345"), ("'URN'", "pattern")),
    ("school URN with a letter", set_text("Header/School/URN", "12345A"), ("'URN'", "pattern")),
    ("LA code of two digits", set_text(f"{FIRST}/LACode", "89"), ("'LACode'", "pattern")),
    (
        "LAESTAB of six digits",
        set_text("Header/School/LAEstab", "893400"),
        ("'LAEstab'", "pattern"),
    ),
    ("sex not M, F or U", set_text(f"{FIRST}/Sex", "X"), ("'Sex'", "enumeration")),
    ("flag not Y or N", set_text(f"{FIRST}/FSM", "yes"), ("'FSM'", "enumeration")),
    (
        "NC year not a CBDS code",
        set_text(f"{FIRST}/NCyearActual", "Y4"),
        ("'NCyearActual'", "enumeration"),
    ),
    ("blank forename", set_text(f"{FIRST}/Forename", "   "), ("'Forename'", "length")),
    (
        "GeneratedAt without an offset",
        set_text("Header/GeneratedAt", "2026-01-05T17:30:00"),
        ("'GeneratedAt'", "pattern"),
    ),
    (
        "the same pupil twice in a session",
        duplicate(FIRST),
        ("one-record-per-pupil-session", "Duplicate"),
    ),
    ("blank pupil reference", set_text(f"{FIRST}/PupilRef", ""), ("'PupilRef'", "length")),
    (
        "pupil reference with surrounding spaces",
        set_text(f"{FIRST}/PupilRef", " 1001 "),
        ("'PupilRef'", "pattern"),
    ),
    (
        "another return's name",
        set_text("Header/Return", "census-attendance"),
        ("'Return'", "fixed"),
    ),
    ("another schema version", set_attribute("version", "2"), ("version",)),
]


# census-attendance-1.xsd
AVA = "Pupils/Pupil[1]"
TERMLY = f"{AVA}/Attendance/TermlyAttendance"
DETAIL = f"{TERMLY}/SessionDetails/SessionDetail[1]"


def summer_half_term_2_only(root) -> None:
    """A pupil on roll only after the spring bank holiday has only the second summer block."""
    termly = root.find(TERMLY)
    termly.tag = "SummerHalfTerm2Attendance"


CENSUS_ATTENDANCE: list[tuple[str, Mutation, tuple[str, ...]]] = [
    ("UPN not in the DfE form", set_text(f"{AVA}/UPN", "D8934001250O1"), ("'UPN'", "pattern")),
    ("UPN missing (rule 1500)", remove(f"{AVA}/UPN"), ("UPN",)),
    ("the same UPN twice (rule 1520)", duplicate(AVA), ("one-pupil-per-upn", "Duplicate")),
    (
        "a present code as an absence reason (rule 2475)",
        set_text(f"{DETAIL}/AttendanceReason", "/"),
        ("'AttendanceReason'", "enumeration"),
    ),
    (
        "a not-possible code as an absence reason",
        set_text(f"{DETAIL}/AttendanceReason", "Y4"),
        ("'AttendanceReason'", "enumeration"),
    ),
    (
        "a legacy code as an absence reason",
        set_text(f"{DETAIL}/AttendanceReason", "H"),
        ("'AttendanceReason'", "enumeration"),
    ),
    (
        "a reason with zero sessions (rule 2480)",
        set_text(f"{DETAIL}/AbsenceSessions", "0"),
        ("'AbsenceSessions'",),
    ),
    (
        "a reason without its sessions (rule 2490)",
        remove(f"{DETAIL}/AbsenceSessions"),
        ("AbsenceSessions",),
    ),
    ("the same reason twice (rule 2505)", duplicate(DETAIL), ("each-reason-once", "Duplicate")),
    (
        "negative sessions possible (rule 2500)",
        set_text(f"{TERMLY}/SessionsPossible", "-1"),
        ("'SessionsPossible'",),
    ),
    (
        "sessions possible missing (rule 2500)",
        remove(f"{TERMLY}/SessionsPossible"),
        ("SessionsPossible",),
    ),
    (
        "negative authorised",
        set_text(f"{TERMLY}/SessionsAuthorised", "-4"),
        ("'SessionsAuthorised'",),
    ),
    (
        "unauthorised not a number",
        set_text(f"{TERMLY}/SessionsUnauthorised", "four"),
        ("'SessionsUnauthorised'",),
    ),
    (
        "no attendance block at all",
        lambda root: root.find(f"{AVA}/Attendance").remove(root.find(TERMLY)),
        ("'Attendance'", "Missing child"),
    ),
    (
        "an unknown block",
        lambda root: setattr(root.find(TERMLY), "tag", "AnnualAttendance"),
        ("'AnnualAttendance'", "not expected"),
    ),
    ("the first summer block twice", duplicate(TERMLY), ("'TermlyAttendance'", "not expected")),
    ("impossible date of birth", set_text(f"{AVA}/DOB", "2017-02-29"), ("'DOB'",)),
    ("term start not a date", set_text("Header/Term/TermStart", "autumn"), ("'TermStart'",)),
    (
        "counted period end not a date",
        set_text("Header/Term/CountedPeriod/End", "2025-12-32"),
        ("'End'",),
    ),
    ("URN with a letter", set_text("Header/School/URN", "12345X"), ("'URN'", "pattern")),
    ("LA code of four digits", set_text("Header/School/LACode", "8934"), ("'LACode'", "pattern")),
    (
        "LAESTAB with a space",
        set_text("Header/School/LAEstab", "893 4001"),
        ("'LAEstab'", "pattern"),
    ),
    (
        "a season that is not a census term",
        set_text("Header/Term/Season", "winter"),
        ("'Season'", "enumeration"),
    ),
    ("a two-digit year", set_text("Header/Term/Year", "25"), ("'Year'", "pattern")),
    (
        "a block name that is not one",
        set_text("Header/Term/CountedPeriod/Block", "Annual"),
        ("'Block'", "enumeration"),
    ),
    ("sex not M, F or U", set_text(f"{AVA}/Sex", "female"), ("'Sex'", "enumeration")),
    (
        "NC year not a CBDS code",
        set_text(f"{AVA}/NCyearActual", "Y4"),
        ("'NCyearActual'", "enumeration"),
    ),
    ("blank surname", set_text(f"{AVA}/Surname", ""), ("'Surname'", "length")),
    ("negative age", set_text("Header/AgeWindow/YoungestAge", "-4"), ("'YoungestAge'",)),
    (
        "GeneratedAt without an offset",
        set_text("Header/GeneratedAt", "2026-01-05T17:30:00"),
        ("'GeneratedAt'", "pattern"),
    ),
    ("header missing its term", remove("Header/Term"), ("Term",)),
    (
        "an element the census does not define",
        add_after(f"{AVA}/DOB", "HomeAddress", "1 Any Street"),
        ("'HomeAddress'", "not expected"),
    ),
    ("another return's name", set_text("Header/Return", "ctf"), ("'Return'", "fixed")),
    ("another schema version", set_attribute("version", "0"), ("version",)),
]


# ctf-attendance-1.xsd
CTF_AVA = "CTFpupilData/Pupil[1]"
YEAR = f"{CTF_AVA}/Attendance/YearData"
MARKS = f"{YEAR}/AttendSessions/AttendanceMarks"

CTF: list[tuple[str, Mutation, tuple[str, ...]]] = [
    ("UPN not in the DfE form", set_text(f"{CTF_AVA}/UPN", "893400125001D"), ("'UPN'", "pattern")),
    ("UPN missing", remove(f"{CTF_AVA}/UPN"), ("UPN",)),
    ("the same UPN twice", duplicate(CTF_AVA), ("one-pupil-per-upn", "Duplicate")),
    ("a legacy code in the marks", set_text(MARKS, "/H"), ("'AttendanceMarks'", "pattern")),
    (
        "a two-character code written inline",
        set_text(MARKS, "/C1\\"),
        ("'AttendanceMarks'", "pattern"),
    ),
    ("an odd number of characters", set_text(MARKS, "/\\/"), ("'AttendanceMarks'", "pattern")),
    ("an empty marks string", set_text(MARKS, ""), ("'AttendanceMarks'",)),
    (
        "marks without a start date",
        remove(f"{YEAR}/AttendSessions/AttendanceStartDate"),
        ("AttendanceStartDate",),
    ),
    (
        "a start date that is not a date",
        set_text(f"{YEAR}/AttendSessions/AttendanceStartDate", "2025-09-31"),
        ("'AttendanceStartDate'",),
    ),
    (
        "negative sessions possible",
        set_text(f"{YEAR}/SessionsPossible", "-1"),
        ("'SessionsPossible'",),
    ),
    (
        "sessions attended not a number",
        set_text(f"{YEAR}/SessionsAttended", "many"),
        ("'SessionsAttended'",),
    ),
    (
        "sessions unauthorised missing",
        remove(f"{YEAR}/SessionsUnauthorised"),
        ("SessionsUnauthorised",),
    ),
    ("year data without a year", remove(f"{YEAR}/Year"), ("Year",)),
    ("a year like 2025/26", set_text(f"{YEAR}/Year", "2025/26"), ("'Year'", "pattern")),
    ("LEA of two digits", set_text(f"{YEAR}/LEA", "89"), ("'LEA'", "pattern")),
    (
        "Estab of seven digits",
        set_text("Header/SourceSchool/Estab", "8934001"),
        ("'Estab'", "pattern"),
    ),
    (
        "destination that is not a school or a placeholder",
        add_after("Header/SourceSchool", "DestSchool"),
        ("DestSchool", "LEA"),
    ),
    (
        "academic year not four digits",
        set_text("Header/SourceSchool/AcademicYear", "25"),
        ("'AcademicYear'", "pattern"),
    ),
    (
        "a document that is not a CTF",
        set_text("Header/DocumentName", "Census"),
        ("'DocumentName'", "fixed"),
    ),
    ("a version that is not n.n", set_text("Header/CTFversion", "25"), ("'CTFversion'", "pattern")),
    (
        "DateTime with an offset",
        set_text("Header/DateTime", "2026-01-05T17:30:00+00:00"),
        ("'DateTime'", "pattern"),
    ),
    (
        "DateTime that is not a date-time",
        set_text("Header/DateTime", "2026-01-05"),
        ("'DateTime'",),
    ),
    (
        "qualifier not full or partial",
        set_text("Header/DocumentQualifier", "some"),
        ("'DocumentQualifier'", "enumeration"),
    ),
    ("date of birth not a date", set_text(f"{CTF_AVA}/DOB", "14/03/2017"), ("'DOB'",)),
    ("sex not M, F or U", set_text(f"{CTF_AVA}/Sex", "Female"), ("'Sex'", "enumeration")),
    ("blank forename", set_text(f"{CTF_AVA}/Forename", " "), ("'Forename'", "length")),
    ("pupil without attendance", remove(f"{CTF_AVA}/Attendance"), ("Attendance",)),
]
