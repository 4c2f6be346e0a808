"""What Arbor's REST v2 wire looks like: resource names, codes, date formats, the error body.

OBSERVED and INFERRED as the package docstring says.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

from registerwatch.simulator.common import london_wall_clock
from registerwatch.simulator.server import Response

API_ROOT = "rest-v2"
AMENDMENTS = "attendance-record-amendments"  # INFERRED resource: no vendor documents one

DEFAULT_PAGE_SIZE = 100  # INFERRED
MAX_PAGE_SIZE = 1000  # INFERRED: a larger page-size is clamped to this
ARBOR_DATETIME = "%Y-%m-%d %H:%M:%S"  # OBSERVED (SDK Query formats DateTime values this way)
BASELINE_REVISION = 1  # INFERRED: the revision every record the school started with carries

# national code -> (AttendanceMark id, Arbor code). INFERRED: the SDK example retrieves marks
# ``PRESENT`` and ``LATE`` by symbolic id; the other ids are invented in the same style. The
# 2024 two-character codes C1 C2 J1 are stored as single characters, as some MIS products do
# , so the adapter's alias table is exercised. Legacy-only codes keep their letter.
ATTENDANCE_MARKS: dict[str, tuple[str, str]] = {
    "/": ("PRESENT", "/"),
    "\\": ("PRESENT_PM", "\\"),
    "L": ("LATE", "L"),
    "K": ("LA_ARRANGED_PROVISION", "K"),
    "V": ("EDUCATIONAL_VISIT", "V"),
    "P": ("SPORTING_ACTIVITY", "P"),
    "W": ("WORK_EXPERIENCE", "W"),
    "B": ("OTHER_APPROVED_ACTIVITY", "B"),
    "D": ("DUAL_REGISTERED", "D"),
    "C1": ("LEAVE_REGULATED_PERFORMANCE", "1"),
    "M": ("MEDICAL_APPOINTMENT", "M"),
    "J1": ("LEAVE_INTERVIEW", "3"),
    "S": ("STUDY_LEAVE", "S"),
    "X": ("NOT_REQUIRED_TO_ATTEND", "X"),
    "C2": ("PART_TIME_TIMETABLE", "2"),
    "C": ("LEAVE_EXCEPTIONAL", "C"),
    "T": ("TRAVELLING", "T"),
    "R": ("RELIGIOUS_OBSERVANCE", "R"),
    "I": ("ILLNESS", "I"),
    "E": ("SUSPENDED_OR_EXCLUDED", "E"),
    "Q": ("NO_ACCESS_ARRANGEMENTS", "Q"),
    "Y1": ("TRANSPORT_NOT_AVAILABLE", "Y1"),
    "Y2": ("TRAVEL_DISRUPTION", "Y2"),
    "Y3": ("PART_SITE_CLOSED", "Y3"),
    "Y4": ("SITE_CLOSED", "Y4"),
    "Y5": ("CRIMINAL_JUSTICE_DETENTION", "Y5"),
    "Y6": ("PUBLIC_HEALTH", "Y6"),
    "Y7": ("OTHER_UNAVOIDABLE", "Y7"),
    "G": ("HOLIDAY_NOT_AUTHORISED", "G"),
    "N": ("NO_REASON_YET", "N"),
    "O": ("UNAUTHORISED_OTHER", "O"),
    "U": ("LATE_AFTER_REGISTER_CLOSED", "U"),
    "Z": ("NOT_ON_ROLL", "Z"),
    "#": ("SCHOOL_CLOSED", "#"),
    # 2006 codes with no 2024 row of the same letter (valid up to 18 August 2024)
    "H": ("HOLIDAY_AUTHORISED", "H"),
    "F": ("EXTENDED_HOLIDAY", "F"),
    "J": ("INTERVIEW", "J"),
    "Y": ("ENFORCED_CLOSURE", "Y"),
}
# A school-defined mark with no national meaning; only the MALFORMED fault uses it.
SCHOOL_DEFINED_MARK = ("SCHOOL_DEFINED", "9")

GENDERS = {"M": ("MALE", "Male"), "F": ("FEMALE", "Female"), "U": ("UNKNOWN", "Unknown")}
SEN_STATUSES = {"E": "Education, health and care plan", "K": "SEN support"}  # DfE codes

# What MALFORMED does, in order, to the first records of the page it hits.
MALFORMATIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "attendance-records": (
        ("startDatetime", "bad date"),
        ("attendanceMark", "unknown code"),
        ("student", "missing key"),
    ),
    "students": (("mostRecentEntryDate", "bad date"), ("person", "missing key")),
}


@dataclass(frozen=True)
class Kind:
    """One REST resource: its entity type, root keys, and the properties it can filter on."""

    entity: str
    single: str
    plural: str
    filterable: frozenset[str] = frozenset()


def _kind(entity: str, single: str, plural: str, *filterable: str) -> Kind:
    return Kind(entity, single, plural, frozenset(filterable))


KINDS: dict[str, Kind] = {
    "students": _kind("Student", "student", "students", "person"),
    "persons": _kind("Person", "person", "persons"),
    "genders": _kind("Gender", "gender", "genders", "code"),
    "upn-assignments": _kind(
        "UkDfe_UpnAssignment", "upnAssignment", "upnAssignments", "student", "upn"
    ),
    "academic-levels": _kind("AcademicLevel", "academicLevel", "academicLevels", "code"),
    "curriculum-grades": _kind("CurriculumGrade", "curriculumGrade", "curriculumGrades", "code"),
    "academic-level-memberships": _kind(
        "AcademicLevelMembership",
        "academicLevelMembership",
        "academicLevelMemberships",
        "student",
        "academicLevel",
    ),
    "registration-forms": _kind(
        "RegistrationForm", "registrationForm", "registrationForms", "code"
    ),
    "registration-form-memberships": _kind(
        "RegistrationFormMembership",
        "registrationFormMembership",
        "registrationFormMemberships",
        "student",
        "registrationForm",
    ),
    "sen-statuses": _kind("UkDfe_SenStatus", "senStatus", "senStatuses", "code"),
    "sen-status-assignments": _kind(
        "UkDfe_SenStatusAssignment", "senStatusAssignment", "senStatusAssignments", "student"
    ),
    "in-care-status-assignments": _kind(
        "UkDfe_InCareStatusAssignment",
        "inCareStatusAssignment",
        "inCareStatusAssignments",
        "student",
    ),
    "attendance-marks": _kind("AttendanceMark", "attendanceMark", "attendanceMarks", "code"),
    "attendance-register-types": _kind(
        "AttendanceRegisterType", "attendanceRegisterType", "attendanceRegisterTypes", "code"
    ),
    "sessions": _kind("Session", "session", "sessions", "startDatetime"),
    "attendance-registers": _kind(
        "AttendanceRegister",
        "attendanceRegister",
        "attendanceRegisters",
        "startDatetime",
        "registrationForm",
        "attendanceRegisterType",
        "completedDatetime",
    ),
    "attendance-records": _kind(
        "AttendanceRecord",
        "attendanceRecord",
        "attendanceRecords",
        "startDatetime",
        "student",
        "attendanceRegister",
        "attendanceMark",
    ),
    "terms": _kind("Term", "term", "terms", "startDate", "endDate"),
    AMENDMENTS: _kind(
        "AttendanceRecordAmendment",
        "attendanceRecordAmendment",
        "attendanceRecordAmendments",
        "startDatetime",
        "student",
        "amendedDatetime",
    ),
}
RESOURCE_ALIASES = {"uk-dfe-upn-assignments": "upn-assignments"}
CHANGELOG_RESOURCES = frozenset({"attendance-records"})  # INFERRED: the one resource that has one
FILTER_OPERATORS = frozenset({"equals", "from", "to", "after", "before", "in"})

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def dashed(name: str) -> str:
    """``AttendanceRecords`` (the SDK's spelling) or ``attendance-records`` -> the latter."""
    return _CAMEL_BOUNDARY.sub("-", name).lower()


def arbor_datetime(value: datetime | None) -> str | None:
    """An aware instant as Arbor writes it: school-local (Europe/London), no offset."""
    if value is None:
        return None
    return london_wall_clock(value).strftime(ARBOR_DATETIME)


def arbor_date(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def href(resource: str, ident: object) -> str:
    return f"/{API_ROOT}/{resource}/{ident}"


def stub(resource: str, ident: object) -> dict[str, str]:
    return {"entityType": KINDS[resource].entity, "href": href(resource, ident)}


def error_envelope(
    status: int, reason: str, exception: str, message: str, **headers: str
) -> Response:
    """Arbor's error body (OBSERVED, HttpClient::executeRequest)."""
    return Response.json(
        {
            "response": {
                "code": status,
                "reason": reason,
                "errors": [{"exception": exception, "message": message, "trace": ""}],
            }
        },
        status=status,
        **headers,
    )
