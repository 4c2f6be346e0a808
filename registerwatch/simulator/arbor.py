"""An Arbor-style REST v2 API over a generated school, with vendor-shaped faults.

What is OBSERVED (in public sources) and what is INFERRED:

OBSERVED (official PHP SDK ``arbor-education/sis-sdk-php``, integrator code):
  - ``/rest-v2/`` paths with dashed lower-case plurals (the SDK's CamelCase ``/rest-v2/Students``
    is accepted too); HTTP Basic auth with per-application credentials;
  - list responses ``{"<lcfirst plural>": [...]}``, single items ``{"<lcfirst type>": {...}}``;
    objects carry ``entityType`` and a relative ``href``; related objects are
    ``{"entityType", "href"}`` stubs the client resolves; ``revisionId`` is read-only;
  - ``page-number`` / ``page-size`` with no total and no next link (a short page ends the list);
    filters ``filters.<property>.<operator>=`` (``equals from to after before in``), date-times
    ``Y-m-d H:i:s``, ``NULL`` for null;
  - the error envelope ``{"response": {"code", "reason", "errors": [{"exception", "message",
    "trace"}]}}``; a missing permission answered with an empty 200, not an error;
  - ``{resource}/changelog?from-revision=&to-revision=`` giving ``{"changes": [{"changedObject",
    "changeType", "fromRevision", "toRevision"}]}``;
  - property names of Student, Person, AttendanceRecord, AttendanceMark, AttendanceRegister,
    AttendanceRegisterType, Session, Term, AcademicLevel(+Membership),
    RegistrationForm(+Membership), UkDfe_UpnAssignment.

INFERRED (design choices for this simulator, never facts about the vendor):
  - the REST paths of the UkDfe module resources (``upn-assignments``, alias
    ``uk-dfe-upn-assignments``; ``sen-status-assignments``; ``in-care-status-assignments``),
    the ``genders``, ``sen-statuses`` and ``curriculum-grades`` code tables and their codes;
  - ``mostRecentEntryDate`` / ``leavingDate`` on the REST Student (seen on the GraphQL Student);
  - ``startDatetime`` and a ``registrationForm`` stub on AttendanceRegister (Arbor hangs a
    register off an ``event``; copying the event's start and group onto the register lets a
    list be filtered by date), and ``modifiedDatetime`` on AttendanceRecord (seen in GraphQL);
  - the AttendanceMark ids and the single-character codes ``1`` ``2`` ``3`` for C1 C2 J1
    (``ATTENDANCE_MARKS``); the default page size and the 1000-row clamp; the list order
    (``attendance-records``: most recently changed first); that the changelog is paged;
  - changelog ``changeType`` values beyond ``update`` (``create``, ``delete``), and that a
    baseline revision 1 covers the data the school started with;
  - the whole amendment history resource (``AMENDMENTS``): no vendor publishes one.

Vendor-shaped faults (``faults``, shared ``FaultInjector``):
  EMPTY_PERMISSION  200 with an empty list (or ``{}`` for one item): the silent "no access"
  STALE_CACHE       ``attendance-records`` as they were when the app started (before any
                    ``set_mark`` / ``delete_mark``): an old cached snapshot
  CHANGING_PAGES    after page 1 of ``attendance-records`` is served, the last record in the
                    list is saved again, which moves it to the front: every later page shifts
                    by one, so page 2 repeats page 1's last record and one record is never
                    served unless the client re-pulls
  MALFORMED         in one page of ``attendance-records`` or ``students``: a bad date, an
                    unknown code, a missing key (``MALFORMATIONS``); corrupted hrefs are kept
                    in ``corrupted``
"""

from __future__ import annotations

import base64
import binascii
import copy
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from registerwatch.calendar import LONDON
from registerwatch.codes import ALL_CODES, lookup
from registerwatch.schema import Amendment, Mark, Pupil, Register, Session
from registerwatch.simulator.model import GeneratedSchool
from registerwatch.simulator.server import FaultInjector, FaultKind, Request, Response, VendorApp

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

MarkKey = tuple[str, date, Session]


@dataclass(frozen=True)
class _Kind:
    """One REST resource: its entity type, root keys, and the properties it can filter on."""

    entity: str
    single: str
    plural: str
    filterable: frozenset[str] = frozenset()


def _kind(entity: str, single: str, plural: str, *filterable: str) -> _Kind:
    return _Kind(entity, single, plural, frozenset(filterable))


KINDS: dict[str, _Kind] = {
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
    return value.astimezone(LONDON).strftime(ARBOR_DATETIME)


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


def _filter_instant(value: str) -> datetime:
    """A filter value: ``Y-m-d`` (midnight) or ``Y-m-d H:i:s``; ValueError otherwise."""
    text = value.strip()
    if len(text) == 10:
        return datetime.combine(date.fromisoformat(text), time())
    return datetime.strptime(text.replace("T", " "), ARBOR_DATETIME)


def _matches(actual: Any, operator: str, wanted: str) -> bool:
    if isinstance(actual, dict):  # a stub: filters on related objects take the href
        actual = actual.get("href")
    if operator in ("equals", "in"):
        options = wanted.split(",") if operator == "in" else [wanted]
        text = "NULL" if actual is None else str(actual)
        return text in options
    if actual is None:
        return False
    bound = _filter_instant(wanted)
    value = _filter_instant(str(actual))
    return {
        "from": value >= bound,
        "to": value <= bound,
        "after": value > bound,
        "before": value < bound,
    }[operator]


class _RecordBook:
    """Stable AttendanceRecord ids and revisions per (pupil, date, session) key."""

    def __init__(self, marks: Iterable[Mark]) -> None:
        self.ids: dict[MarkKey, int] = {}
        self.revisions: dict[MarkKey, int] = {}
        self.next_id = 9001  # INFERRED: integer ids, like the SDK examples (students/16)
        for mark in marks:
            self.assign((mark.pupil_id, mark.date, mark.session), BASELINE_REVISION)

    def assign(self, key: MarkKey, revision: int) -> int:
        if key not in self.ids:
            self.ids[key] = self.next_id
            self.next_id += 1
        self.revisions[key] = revision
        return self.ids[key]

    def copy(self) -> _RecordBook:
        other = _RecordBook(())
        other.ids = dict(self.ids)
        other.revisions = dict(self.revisions)
        other.next_id = self.next_id
        return other


class ArborApp(VendorApp):
    """Serves ``school`` under ``/rest-v2/`` (or ``/{anything}/rest-v2/``) in Arbor's style."""

    vendor = "arbor"

    def __init__(
        self,
        school: GeneratedSchool,
        faults: FaultInjector | None = None,
        *,
        serve_amendments: bool = True,
        username: str = "registerwatch",
        password: str = "simulator",
    ) -> None:
        super().__init__(school, faults, serve_amendments=serve_amendments)
        self._credentials = (username, password)
        self.revision = BASELINE_REVISION
        self._book = _RecordBook(school.marks)
        # The snapshot STALE_CACHE serves: the marks, ids and revisions the school started with.
        self._initial_marks: list[Mark] = list(school.marks)
        self._initial_book = self._book.copy()
        self._changes: list[dict[str, Any]] = []  # changelog entries after the baseline
        self.corrupted: list[str] = []  # hrefs MALFORMED damaged, for tests to check against
        self._pupils = {p.id: p for p in school.pupils}
        self._static = self._build_static()
        self._views: dict[tuple[Any, ...], list[dict[str, Any]]] = {}

    # -- ids shared by several resources ----------------------------------------------------

    def record_id(self, pupil_id: str, day: date, session: Session) -> int | None:
        """The AttendanceRecord id currently serving a mark (tests map hrefs back to keys)."""
        return self._book.ids.get((pupil_id, day, Session(session)))

    def _student_id(self, pupil_id: str) -> str:
        pupil = self._pupils.get(pupil_id)
        return pupil.mis_id if pupil is not None else pupil_id.split(":", 1)[-1]

    def _session_start(self, day: date, session: Session) -> datetime:
        times = self.school.calendar.register_times
        opens = times.am_open if session is Session.AM else times.pm_open
        return datetime.combine(day, opens, tzinfo=LONDON)

    # -- the resources that do not change while the app runs --------------------------------

    def _build_static(self) -> dict[str, list[dict[str, Any]]]:
        school = self.school
        pupils = school.pupils
        static: dict[str, list[dict[str, Any]]] = {name: [] for name in KINDS}

        for code_key, (ident, label) in GENDERS.items():
            static["genders"].append(
                {**stub("genders", ident), "code": code_key, "genderName": label}
            )
        for index, (code_key, label) in enumerate(SEN_STATUSES.items(), start=1):
            static["sen-statuses"].append(
                {**stub("sen-statuses", index), "code": code_key, "description": label}
            )

        years = sorted({p.nc_year for p in pupils if p.nc_year is not None})
        level_ids = {year: index for index, year in enumerate(years, start=1)}
        for year, index in level_ids.items():
            static["curriculum-grades"].append(
                {**stub("curriculum-grades", index), "code": year, "displayName": f"Year {year}"}
            )
            static["academic-levels"].append(
                {
                    **stub("academic-levels", index),
                    "code": f"Y{year}",
                    "academicLevelName": f"Year {year}",
                    "shortName": f"Y{year}",
                    "curriculumGrade": stub("curriculum-grades", index),
                    "displayOrder": index,
                }
            )

        groups = sorted(
            {p.reg_group for p in pupils if p.reg_group is not None}
            | {r.group for r in school.registers}
        )
        self._form_ids = {group: index for index, group in enumerate(groups, start=1)}
        for group, index in self._form_ids.items():
            static["registration-forms"].append(
                {
                    **stub("registration-forms", index),
                    "code": group,
                    "shortName": group,
                    "registrationFormName": f"Registration group {group}",
                }
            )

        for index, pupil in enumerate(pupils):
            student = pupil.mis_id
            person_id = 50001 + index  # persons have their own numbering, unlike students
            static["students"].append(
                {
                    **stub("students", student),
                    "displayName": " ".join(
                        n
                        for n in (
                            pupil.preferred_forename or pupil.legal_forename,
                            pupil.preferred_surname or pupil.legal_surname,
                        )
                        if n
                    ),
                    "person": stub("persons", person_id),
                    "studentNumber": student,
                    "legacySystemId": None,
                    "mostRecentEntryDate": arbor_date(pupil.starting_day),
                    "leavingDate": arbor_date(pupil.leaving_date),
                }
            )
            static["persons"].append(
                {
                    **stub("persons", person_id),
                    "legalFirstName": pupil.legal_forename,
                    "legalMiddleNames": pupil.middle_names,
                    "legalLastName": pupil.legal_surname,
                    "preferredFirstName": pupil.preferred_forename,
                    "preferredLastName": pupil.preferred_surname,
                    "dateOfBirth": arbor_date(pupil.dob),
                    "gender": stub("genders", GENDERS[pupil.sex][0]) if pupil.sex else None,
                }
            )
            self._student_relations(static, pupil, level_ids)

        self._register_ids: dict[tuple[str, date, Session], int] = {}
        for index, register in enumerate(school.registers, start=1):
            self._register_ids[(register.group, register.date, register.session)] = index
            static["sessions"].append(self._session(index, register))
            static["attendance-registers"].append(self._register(index, register))
        static["attendance-register-types"] = [
            {
                **stub("attendance-register-types", 1),
                "code": "AM",
                "attendanceRegisterTypeName": "Morning",
                "isMorning": True,
                "isAfternoon": False,
            },
            {
                **stub("attendance-register-types", 2),
                "code": "PM",
                "attendanceRegisterTypeName": "Afternoon",
                "isMorning": False,
                "isAfternoon": True,
            },
        ]
        static["attendance-marks"] = self._mark_table()
        static["terms"] = [
            {
                **stub("terms", index),
                "termName": f"Term {index}",
                "shortTermName": f"T{index}",
                "startDate": arbor_date(term.start),
                "endDate": arbor_date(term.end),
            }
            for index, term in enumerate(school.calendar.terms, start=1)
        ]
        static[AMENDMENTS] = [
            self._amendment(index, amendment)
            for index, amendment in enumerate(school.amendments, start=1)
        ]
        return static

    def _student_relations(
        self, static: dict[str, list[dict[str, Any]]], pupil: Pupil, level_ids: Mapping[str, int]
    ) -> None:
        student = stub("students", pupil.mis_id)
        entry = datetime.combine(pupil.starting_day, time()) if pupil.starting_day else None

        def add(resource: str, **fields: Any) -> None:
            rows = static[resource]
            rows.append({**stub(resource, len(rows) + 1), "student": student, **fields})

        if pupil.former_upn:
            # An ended assignment: the UPN the pupil held before the current one.
            add(
                "upn-assignments",
                upn=pupil.former_upn,
                startDatetime=None,
                endDatetime=entry.strftime(ARBOR_DATETIME) if entry else "2000-01-01 00:00:00",
                isTemporary=pupil.former_upn[-1].isalpha(),
            )
        if pupil.upn:
            add(
                "upn-assignments",
                upn=pupil.upn,
                startDatetime=entry.strftime(ARBOR_DATETIME) if entry else None,
                endDatetime=None,
                isTemporary=pupil.upn[-1].isalpha(),
            )
        span = {
            "startDate": arbor_date(pupil.starting_day),
            "endDate": arbor_date(pupil.leaving_date),
        }
        if pupil.nc_year is not None:
            add(
                "academic-level-memberships",
                academicLevel=stub("academic-levels", level_ids[pupil.nc_year]),
                **span,
            )
        if pupil.reg_group is not None:
            add(
                "registration-form-memberships",
                registrationForm=stub("registration-forms", self._form_ids[pupil.reg_group]),
                **span,
            )
        open_span = {"startDate": arbor_date(pupil.starting_day), "endDate": None}
        for flag, code in ((pupil.ehcp, "E"), (pupil.sen_support, "K")):
            if flag:
                status_id = list(SEN_STATUSES).index(code) + 1
                add(
                    "sen-status-assignments", senStatus=stub("sen-statuses", status_id), **open_span
                )
        if pupil.looked_after:
            add("in-care-status-assignments", **open_span)

    def _session(self, index: int, register: Register) -> dict[str, Any]:
        start = self._session_start(register.date, register.session)
        close = timedelta(minutes=self.school.calendar.register_times.close_after_minutes)
        return {
            **stub("sessions", index),
            "sessionName": f"{register.group} {register.session}",
            "startDatetime": arbor_datetime(start),
            "endDatetime": arbor_datetime(start + close),
            "attendanceRegisterType": self._register_type(register.session),
        }

    def _register(self, index: int, register: Register) -> dict[str, Any]:
        start = self._session_start(register.date, register.session)
        return {
            **stub("attendance-registers", index),
            "event": stub("sessions", index),
            "attendanceRegisterType": self._register_type(register.session),
            "registrationForm": stub("registration-forms", self._form_ids[register.group]),
            "startDatetime": arbor_datetime(start),
            "openedDatetime": arbor_datetime(register.opened_at),
            "completedDatetime": arbor_datetime(register.completed_at),
            "validatedDatetime": None,
            "closedDatetime": None,
        }

    @staticmethod
    def _register_type(session: Session) -> dict[str, str]:
        return stub("attendance-register-types", 1 if session is Session.AM else 2)

    @staticmethod
    def _mark_table() -> list[dict[str, Any]]:
        rows = []
        national = {c.code for c in ALL_CODES}
        for order, (code, (ident, arbor_code)) in enumerate(ATTENDANCE_MARKS.items(), start=1):
            row = lookup(code)
            rows.append(
                {
                    **stub("attendance-marks", ident),
                    "code": arbor_code,
                    "active": True,
                    "dataOrder": order,
                    "markDescription": row.description,
                    "markShortDescription": row.description.split(":")[0],
                    "isStatisticalPresent": row.attendance and row.category.value == "present",
                    "isStatisticalApprovedEducationalActivity": row.category.value
                    == "approved_educational_activity",
                    "isStatisticalAuthorizedAbsent": row.authorised,
                    "isStatisticalUnauthorizedAbsent": row.unauthorised,
                    "isStatisticalPossibleAttendance": row.possible,
                    "isDefaultPresent": code == "/",
                    "isDefaultLate": code == "L",
                    "isDefaultLateAfterRegisterClosed": code == "U",
                }
            )
        assert national <= set(ATTENDANCE_MARKS), "every national code needs an Arbor mark"
        ident, arbor_code = SCHOOL_DEFINED_MARK
        rows.append(
            {
                **stub("attendance-marks", ident),
                "code": arbor_code,
                "active": True,
                "dataOrder": len(rows) + 1,
                "markDescription": "School-defined mark",
                "markShortDescription": "School-defined",
            }
        )
        return rows

    def _amendment(self, index: int, amendment: Amendment) -> dict[str, Any]:
        def mark_stub(code: str | None) -> dict[str, str] | None:
            return None if code is None else stub("attendance-marks", ATTENDANCE_MARKS[code][0])

        record = self._book.ids.get((amendment.pupil_id, amendment.date, amendment.session))
        return {
            **stub(AMENDMENTS, index),
            "attendanceRecord": stub("attendance-records", record) if record else None,
            "student": stub("students", self._student_id(amendment.pupil_id)),
            "startDatetime": arbor_datetime(self._session_start(amendment.date, amendment.session)),
            "attendanceRegisterType": self._register_type(amendment.session),
            "originalAttendanceMark": mark_stub(amendment.original_code),
            "amendedAttendanceMark": mark_stub(amendment.amended_code),
            "reason": amendment.reason,
            "amendedDatetime": arbor_datetime(amendment.amended_at),
            "amendedByName": amendment.amended_by_name,
            "amendedByPosition": amendment.amended_by_position,
        }

    # -- attendance records: the part that changes --------------------------------------------

    def _record(self, mark: Mark, book: _RecordBook) -> dict[str, Any]:
        key = (mark.pupil_id, mark.date, mark.session)
        pupil = self._pupils.get(mark.pupil_id)
        register = None
        if pupil is not None and pupil.reg_group is not None:
            register = self._register_ids.get((pupil.reg_group, mark.date, mark.session))
        start = self._session_start(mark.date, mark.session)
        close = timedelta(minutes=self.school.calendar.register_times.close_after_minutes)
        return {
            **stub("attendance-records", book.ids[key]),
            "student": stub("students", self._student_id(mark.pupil_id)),
            "attendanceMark": stub("attendance-marks", ATTENDANCE_MARKS[mark.code][0]),
            "attendanceRegister": stub("attendance-registers", register) if register else None,
            "startDatetime": arbor_datetime(start),
            "endDatetime": arbor_datetime(start + close),
            "minutesLate": mark.minutes_late,
            "recordNote": mark.comment,
            "source": "REGISTER",
            "isRedundant": False,
            "sourceAttendanceRecord": None,
            "modifiedDatetime": arbor_datetime(mark.recorded_at),
            "revisionId": book.revisions[key],
        }

    def _records(self, stale: bool) -> list[dict[str, Any]]:
        """Every record, most recently changed first (INFERRED order), cached per revision."""
        cache_key = ("records", "stale" if stale else self.revision)
        if cache_key not in self._views:
            marks, book = (
                (self._initial_marks, self._initial_book)
                if stale
                else (self.school.marks, self._book)
            )
            rendered = [self._record(mark, book) for mark in marks]
            rendered.sort(key=lambda r: (r["revisionId"], _id_of(r)), reverse=True)
            self._views[cache_key] = rendered
        return self._views[cache_key]

    def set_mark(self, pupil_id: str, day: date, session: Session, code: str) -> None:
        with self.lock:
            key = (pupil_id, day, Session(session))
            created = key not in self._book.ids
            super().set_mark(pupil_id, day, session, code)
            self._log_change("create" if created else "update", key)

    def delete_mark(self, pupil_id: str, day: date, session: Session) -> bool:
        with self.lock:
            key = (pupil_id, day, Session(session))
            before = self.school.marks_by_key().get(key)
            if before is None or not super().delete_mark(pupil_id, day, session):
                return False
            self.revision += 1
            self._book.revisions[key] = self.revision
            gone = self._record(before, self._book)
            del self._book.ids[key], self._book.revisions[key]
            self._append_change("delete", gone)
            return True

    def _log_change(self, change_type: str, key: MarkKey) -> None:
        self.revision += 1
        self._book.assign(key, self.revision)
        mark = self.school.marks_by_key()[key]
        self._append_change(change_type, self._record(mark, self._book))

    def _append_change(self, change_type: str, record: dict[str, Any]) -> None:
        self._changes.append(
            {
                "changedObject": record,
                "changeType": change_type,
                "fromRevision": self.revision - 1,
                "toRevision": self.revision,
            }
        )
        # Views keyed by an older revision can never be asked for again.
        self._views = {k: v for k, v in self._views.items() if k[1] in ("static", "stale")}

    def _changelog(self) -> list[dict[str, Any]]:
        baseline = [
            {
                "changedObject": record,
                "changeType": "create",
                "fromRevision": 0,
                "toRevision": BASELINE_REVISION,
            }
            for record in sorted(self._records(stale=True), key=_id_of)
        ]
        return baseline + self._changes

    # -- HTTP ---------------------------------------------------------------------------------

    def route(self, request: Request) -> Response:
        parts = _api_parts(request.path)
        if parts is None:
            return error_envelope(
                404, "Not Found", "ResourceNotFoundException", f"No API at {request.path}"
            )
        if not self._authorised(request):
            return error_envelope(
                401,
                "Unauthorized",
                "AuthenticationException",
                "Invalid application credentials",
                **{"WWW-Authenticate": 'Basic realm="Arbor"'},
            )
        if request.method != "GET":
            return error_envelope(
                405,
                "Method Not Allowed",
                "MethodNotAllowedException",
                "The simulator serves reads only",
            )
        resource = dashed(parts[0])
        resource = RESOURCE_ALIASES.get(resource, resource)
        if resource not in KINDS or (resource == AMENDMENTS and not self.serve_amendments):
            return error_envelope(
                404, "Not Found", "ResourceNotFoundException", f"Invalid resource name: {parts[0]}"
            )
        try:
            if len(parts) == 1:
                return self._list(request, resource)
            if len(parts) == 2 and parts[1] == "changelog" and resource in CHANGELOG_RESOURCES:
                return self._changelog_response(request)
            if len(parts) == 2:
                return self._item(request, resource, parts[1])
        except _BadQuery as exc:
            return error_envelope(400, "Bad Request", "InvalidQueryException", str(exc))
        return error_envelope(
            404, "Not Found", "ResourceNotFoundException", f"No such path: {request.path}"
        )

    def _authorised(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(token, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return hmac.compare_digest(user, self._credentials[0]) and hmac.compare_digest(
            password, self._credentials[1]
        )

    def _item(self, request: Request, resource: str, ident: str) -> Response:
        kind = KINDS[resource]
        if self.faults.take(FaultKind.EMPTY_PERMISSION, request.path):
            return Response.json({})  # no access: a silent empty object (OBSERVED in Arbor's SDK)
        items = (
            self._records(stale=False)
            if resource == "attendance-records"
            else self._static[resource]
        )
        wanted = href(resource, ident)
        for item in items:
            if item["href"] == wanted:
                return Response.json({kind.single: item})
        return error_envelope(
            404, "Not Found", "ResourceNotFoundException", f"{kind.entity} {ident} not found"
        )

    def _list(self, request: Request, resource: str) -> Response:
        kind = KINDS[resource]
        number, size = _paging(request)
        if self.faults.take(FaultKind.EMPTY_PERMISSION, request.path):
            return Response.json({kind.plural: []})
        stale = (
            resource == "attendance-records"
            and self.faults.take(FaultKind.STALE_CACHE, request.path) is not None
        )
        items = self._filtered(request, resource, stale)
        page = items[(number - 1) * size : number * size]
        if (
            resource in MALFORMATIONS
            and page
            and self.faults.take(FaultKind.MALFORMED, request.path)
        ):
            page = self._malform(resource, page)
        response = Response.json({kind.plural: page})
        if (
            resource == "attendance-records"
            and number == 1
            and items
            and self.faults.take(FaultKind.CHANGING_PAGES, request.path)
        ):
            self._resave_last(items)
        return response

    def _filtered(self, request: Request, resource: str, stale: bool) -> list[dict[str, Any]]:
        filters = _filters(request, KINDS[resource])
        version = (
            ("stale" if stale else self.revision) if resource == "attendance-records" else "static"
        )
        cache_key = (resource, version, tuple(filters))
        if cache_key not in self._views:
            items = (
                self._records(stale) if resource == "attendance-records" else self._static[resource]
            )
            for prop, operator, value in filters:
                try:
                    items = [i for i in items if _matches(i.get(prop), operator, value)]
                except ValueError:
                    raise _BadQuery(
                        f"filters.{prop}.{operator}: {value!r} is not a date (Y-m-d or Y-m-d H:i:s)"
                    ) from None
            self._views[cache_key] = items
        return self._views[cache_key]

    def _malform(self, resource: str, page: list[dict[str, Any]]) -> list[dict[str, Any]]:
        page = copy.deepcopy(page)
        for record, (field, damage) in zip(page, MALFORMATIONS[resource], strict=False):
            self.corrupted.append(record["href"])
            if damage == "bad date":
                record[field] = "2024-02-30 08:45:00" if "Datetime" in field else "2024-02-30"
            elif damage == "unknown code":
                record[field] = stub("attendance-marks", SCHOOL_DEFINED_MARK[0])
            else:
                record.pop(field, None)
        return page

    def _resave_last(self, items: list[dict[str, Any]]) -> None:
        """A teacher saves a record again mid-listing: it jumps to the front of the order."""
        ident = _id_of(items[-1])
        for key, record_id in self._book.ids.items():
            if record_id == ident:
                mark = self.school.marks_by_key()[key]
                self.set_mark(mark.pupil_id, mark.date, mark.session, mark.code)
                return

    def _changelog_response(self, request: Request) -> Response:
        number, size = _paging(request)
        try:
            low = int(request.arg("from-revision", "0") or 0)
            high = int(request.arg("to-revision", "0") or 0) or self.revision
        except ValueError:
            raise _BadQuery("from-revision and to-revision must be integers") from None
        changes = [c for c in self._changelog() if low < c["toRevision"] <= high]
        return Response.json({"changes": changes[(number - 1) * size : number * size]})


class _BadQuery(ValueError):
    """A query the API rejects with 400."""


def _id_of(record: Mapping[str, Any]) -> int:
    return int(str(record["href"]).rsplit("/", 1)[-1])


def _api_parts(path: str) -> list[str] | None:
    """Path segments after ``rest-v2``; None when the path is not under the API."""
    segments = [s for s in path.split("/") if s]
    if API_ROOT not in segments:
        return None
    rest = segments[segments.index(API_ROOT) + 1 :]
    return rest or None


def _paging(request: Request) -> tuple[int, int]:
    try:
        number = int(request.arg("page-number", "1") or 1)
        size = int(request.arg("page-size", str(DEFAULT_PAGE_SIZE)) or DEFAULT_PAGE_SIZE)
    except ValueError:
        raise _BadQuery("page-number and page-size must be integers") from None
    if number < 1 or size < 1:
        raise _BadQuery("page-number and page-size start at 1")
    return number, min(size, MAX_PAGE_SIZE)


def _filters(request: Request, kind: _Kind) -> list[tuple[str, str, str]]:
    filters: list[tuple[str, str, str]] = []
    for name, values in sorted(request.query.items()):
        if not name.startswith("filters."):
            continue
        _, prop, operator = [*name.split(".", 2), "", ""][:3]
        if operator not in FILTER_OPERATORS:
            raise _BadQuery(f"{name}: unknown operator {operator!r}")
        if prop not in kind.filterable:
            raise _BadQuery(f"{name}: {kind.entity} cannot be filtered on {prop!r}")
        filters.extend((prop, operator, value) for value in values)
    return filters


__all__ = [
    "AMENDMENTS",
    "ATTENDANCE_MARKS",
    "KINDS",
    "MALFORMATIONS",
    "SCHOOL_DEFINED_MARK",
    "ArborApp",
    "error_envelope",
]
