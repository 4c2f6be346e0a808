"""Each Arbor stream's ``to_schema`` on hand-built records, with a dictionary for a client."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

import pytest

from registerwatch.adapters.arbor.client import ArborNotFoundError, resource_path
from registerwatch.adapters.arbor.streams import (
    AmendmentsStream,
    MarksStream,
    PupilsStream,
    RegistersStream,
    StudentRelations,
    TermsStream,
)
from registerwatch.adapters.base import Quarantined
from registerwatch.schema import Session

SCHOOL = "oakfield"
OBJECTS: dict[str, dict[str, Any]] = {
    "attendance-marks/LEAVE_REGULATED_PERFORMANCE": {"code": "1"},
    "attendance-marks/LATE": {"code": "L"},
    "attendance-marks/PRESENT_PM": {"code": "\\"},
    "attendance-marks/SCHOOL_DEFINED": {"code": "9"},
    "attendance-marks/BLANK": {"code": ""},
    "attendance-register-types/1": {
        "href": "/rest-v2/attendance-register-types/1",
        "isMorning": True,
        "isAfternoon": False,
    },
    "attendance-register-types/2": {
        "href": "/rest-v2/attendance-register-types/2",
        "isMorning": False,
        "isAfternoon": True,
    },
    "attendance-register-types/3": {
        "href": "/rest-v2/attendance-register-types/3",
        "isMorning": False,
        "isAfternoon": False,
    },
    "attendance-registers/77": {
        "attendanceRegisterType": {"href": "/rest-v2/attendance-register-types/1"}
    },
    "registration-forms/1": {"shortName": "7A", "code": "7A-2025"},
    "persons/50001": {
        "legalFirstName": "Ava",
        "legalMiddleNames": None,
        "legalLastName": "Smith",
        "preferredFirstName": "Ava",
        "preferredLastName": "Smith",
        "dateOfBirth": "2014-03-04",
        "gender": {"href": "/rest-v2/genders/FEMALE"},
    },
    "persons/50002": {"legalFirstName": "Ben", "dateOfBirth": "2014-02-31"},
    "persons/50003": {"legalFirstName": "Cy", "gender": {"href": "/rest-v2/genders/OTHER"}},
    "persons/50004": {},  # no permission: Arbor's silent empty object
    "genders/FEMALE": {"code": "F"},
    "genders/OTHER": {"code": "Q"},
    "academic-levels/1": {
        "code": "Y7",
        "curriculumGrade": {"href": "/rest-v2/curriculum-grades/1"},
    },
    "academic-levels/2": {
        "code": "Y8",
        "curriculumGrade": {"href": "/rest-v2/curriculum-grades/2"},
    },
    "curriculum-grades/1": {"code": "7"},
    "curriculum-grades/2": {"code": "8"},
    "sen-statuses/1": {"code": "E"},
}


def resolve(stub: Mapping[str, Any]) -> dict[str, Any]:
    key = resource_path(stub["href"])
    if key not in OBJECTS:
        raise ArborNotFoundError(f"{key} not found")
    return OBJECTS[key]


def ref(resource: str, ident: object) -> dict[str, str]:
    return {"entityType": "X", "href": f"/rest-v2/{resource}/{ident}"}


def record(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "entityType": "AttendanceRecord",
        "href": "/rest-v2/attendance-records/9001",
        "student": ref("students", 1001),
        "attendanceMark": ref("attendance-marks", "LEAVE_REGULATED_PERFORMANCE"),
        "attendanceRegister": ref("attendance-registers", 77),
        "startDatetime": "2025-09-08 08:45:00",
        "minutesLate": None,
        "recordNote": None,
        "modifiedDatetime": "2025-09-08 08:52:13",
        "revisionId": 1,
    }
    base.update(overrides)
    return base


def only_quarantine(entries: list[Quarantined]) -> Quarantined:
    assert len(entries) == 1, entries
    return entries[0]


# -- marks --------------------------------------------------------------------------------------


def test_a_record_maps_to_a_mark_with_its_code_normalised() -> None:
    batch = MarksStream(resolve, school_id=SCHOOL).map_records([record()])
    assert batch.quarantined == []
    [mark] = batch.records
    assert (mark.pupil_id, mark.date, mark.session) == (
        "oakfield:1001",
        date(2025, 9, 8),
        Session.AM,
    )
    assert (mark.code, mark.vendor_code) == ("C1", "1")
    # Arbor writes school-local time: 08:52:13 BST is 07:52:13 UTC.
    assert mark.recorded_at == datetime(2025, 9, 8, 7, 52, 13, tzinfo=UTC)
    assert mark.source_ref == "/rest-v2/attendance-records/9001"
    assert mark.recorded_by is None


def test_minutes_late_comment_and_the_dated_object_form() -> None:
    batch = MarksStream(resolve, school_id=SCHOOL).map_records(
        [
            record(
                attendanceMark=ref("attendance-marks", "LATE"),
                minutesLate=12,
                recordNote=" bus ",
                startDatetime={"entityType": "date", "date": "2025-09-08 08:45:00"},
            )
        ]
    )
    [mark] = batch.records
    assert (mark.code, mark.minutes_late, mark.comment) == ("L", 12, "bus")


@pytest.mark.parametrize(
    ("start", "session"), [("2025-09-08 11:59:59", Session.AM), ("2025-09-08 12:00:00", Session.PM)]
)
def test_a_record_without_a_register_takes_its_session_from_the_clock(
    start: str, session: Session
) -> None:
    batch = MarksStream(resolve, school_id=SCHOOL).map_records(
        [
            record(
                attendanceRegister=None,
                startDatetime=start,
                attendanceMark=ref("attendance-marks", "PRESENT_PM"),
            )
        ]
    )
    assert batch.records[0].session is session


@pytest.mark.parametrize(
    ("overrides", "field", "reason"),
    [
        ({"startDatetime": "2024-02-30 08:45:00"}, "startDatetime", "is not a valid date-time"),
        ({"startDatetime": None}, "startDatetime", "required field 'startDatetime' is missing"),
        (
            {"attendanceMark": ref("attendance-marks", "SCHOOL_DEFINED")},
            "attendanceMark",
            "unknown attendance code '9'",
        ),
        (
            {"attendanceMark": ref("attendance-marks", "BLANK")},
            "attendanceMark",
            "attendance code is missing",
        ),
        (
            {"attendanceMark": ref("attendance-marks", "GONE")},
            "attendanceMark",
            "which Arbor says does not exist",
        ),
        ({"student": None}, "student", "required field 'student' is missing"),
        ({"student": "1001"}, "student", "is not an Arbor reference"),
        ({"minutesLate": -3}, "minutesLate", "is not a whole number of minutes"),
        ({"minutesLate": "12.5"}, "minutesLate", "is not a whole number of minutes"),
        (
            {"attendanceRegister": ref("attendance-registers", 78)},
            "attendanceRegister",
            "which Arbor says does not exist",
        ),
    ],
)
def test_a_record_that_will_not_map_is_quarantined_and_the_rest_arrive(
    overrides: dict[str, Any], field: str, reason: str
) -> None:
    good = record(href="/rest-v2/attendance-records/9002")
    batch = MarksStream(resolve, school_id=SCHOOL).map_records([record(**overrides), good])
    assert [m.source_ref for m in batch.records] == ["/rest-v2/attendance-records/9002"]
    entry = only_quarantine(batch.quarantined)
    assert (entry.resource, entry.record_ref, entry.field) == (
        "attendance-records",
        "/rest-v2/attendance-records/9001",
        field,
    )
    assert reason in entry.reason


@pytest.mark.parametrize(
    "stub",
    [
        {"attendanceMark": ref("attendance-marks", "GONE")},
        {"attendanceMark": ref("attendance-marks", "SCHOOL_DEFINED")},
        {"attendanceRegister": ref("attendance-registers", 78)},
    ],
)
def test_every_record_naming_a_bad_stub_is_quarantined_under_its_own_reference(
    stub: dict[str, Any],
) -> None:
    """A stream remembers what each stub resolved to, but never a failure: the second, third
    record naming a bad stub is refused as the first was, each with its own reference."""
    hrefs = [f"/rest-v2/attendance-records/{n}" for n in (9101, 9102, 9103)]
    records = [record(href=href, **stub) for href in hrefs]
    batch = MarksStream(resolve, school_id=SCHOOL).map_records(
        [record(href="/rest-v2/attendance-records/9100"), *records]
    )
    assert [m.source_ref for m in batch.records] == ["/rest-v2/attendance-records/9100"]
    assert [q.record_ref for q in batch.quarantined] == hrefs
    assert len({(q.field, q.reason) for q in batch.quarantined}) == 1


def test_records_sharing_stubs_map_as_each_would_alone() -> None:
    records = [
        record(
            href=f"/rest-v2/attendance-records/{9200 + n}",
            student=ref("students", 1001 + n % 2),
            attendanceMark=ref(
                "attendance-marks", ("LEAVE_REGULATED_PERFORMANCE", "PRESENT_PM")[n % 2]
            ),
            attendanceRegister=None if n == 3 else ref("attendance-registers", 77),
            startDatetime=f"2025-09-08 {('08:45:00', '13:30:00')[n % 2]}",
        )
        for n in range(6)
    ]
    together = MarksStream(resolve, school_id=SCHOOL).map_records(records).records
    alone = [MarksStream(resolve, school_id=SCHOOL).map_records([r]).records[0] for r in records]
    assert together == alone


def test_a_record_that_is_not_an_object_is_quarantined_by_position() -> None:
    batch = MarksStream(resolve, school_id=SCHOOL).map_records(["oops", record()])
    entry = only_quarantine(batch.quarantined)
    assert (entry.record_ref, entry.reason) == (
        "attendance-records item 1",
        "record is not a JSON object",
    )
    assert len(batch.records) == 1


# -- registers ------------------------------------------------------------------------------------


def register(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "href": "/rest-v2/attendance-registers/77",
        "attendanceRegisterType": ref("attendance-register-types", 2),
        "registrationForm": ref("registration-forms", 1),
        "startDatetime": "2025-09-08 13:15:00",
        "openedDatetime": "2025-09-08 13:14:00",
        "completedDatetime": None,
    }
    base.update(overrides)
    return base


def test_a_register_maps_with_null_completed_meaning_unsaved() -> None:
    [reg] = RegistersStream(resolve, school_id=SCHOOL).map_records([register()]).records
    assert (reg.group, reg.date, reg.session) == ("7A", date(2025, 9, 8), Session.PM)
    assert reg.opened_at == datetime(2025, 9, 8, 12, 14, tzinfo=UTC)
    assert reg.completed_at is None and reg.taken_by is None


def test_a_register_type_that_is_neither_am_nor_pm_is_quarantined() -> None:
    batch = RegistersStream(resolve, school_id=SCHOOL).map_records(
        [register(attendanceRegisterType=ref("attendance-register-types", 3))]
    )
    entry = only_quarantine(batch.quarantined)
    assert entry.field == "attendanceRegisterType"
    assert "neither morning nor afternoon" in entry.reason


# -- pupils ---------------------------------------------------------------------------------------


def student(n: int, person: int, **overrides: Any) -> dict[str, Any]:
    return {
        "href": f"/rest-v2/students/{n}",
        "person": ref("persons", person),
        "mostRecentEntryDate": "2021-09-01",
        "leavingDate": None,
        **overrides,
    }


def relations() -> StudentRelations:
    rel = StudentRelations()
    s1 = ref("students", 1001)
    rel.add(
        "upns",
        "upn-assignments",
        [
            {
                "href": "/rest-v2/upn-assignments/1",
                "student": s1,
                "upn": "OLD000000001",
                "endDatetime": "2021-09-01 00:00:00",
            },
            {
                "href": "/rest-v2/upn-assignments/2",
                "student": s1,
                "upn": "TEMP0000001A",
                "endDatetime": None,
                "isTemporary": True,
                "startDatetime": "2022-01-01 00:00:00",
            },
            {
                "href": "/rest-v2/upn-assignments/3",
                "student": s1,
                "upn": "PERM00000001",
                "endDatetime": None,
                "isTemporary": False,
                "startDatetime": "2021-09-01 00:00:00",
            },
            {"href": "/rest-v2/upn-assignments/4", "upn": "ORPHAN"},  # no student: quarantined
        ],
    )
    rel.add(
        "levels",
        "academic-level-memberships",
        [
            {
                "href": "/rest-v2/academic-level-memberships/1",
                "student": s1,
                "academicLevel": ref("academic-levels", 1),
                "startDate": "2024-09-01",
                "endDate": "2025-07-22",
            },
            {
                "href": "/rest-v2/academic-level-memberships/2",
                "student": s1,
                "academicLevel": ref("academic-levels", 2),
                "startDate": "2025-09-01",
                "endDate": None,
            },
        ],
    )
    rel.add(
        "forms",
        "registration-form-memberships",
        [
            {
                "href": "/rest-v2/registration-form-memberships/1",
                "student": s1,
                "registrationForm": ref("registration-forms", 1),
                "startDate": "2021-09-01",
                "endDate": "2025-07-22",
            },  # ended: still the last group the pupil had
        ],
    )
    rel.add(
        "sen",
        "sen-status-assignments",
        [
            {
                "href": "/rest-v2/sen-status-assignments/1",
                "student": s1,
                "senStatus": ref("sen-statuses", 1),
                "endDate": None,
            }
        ],
    )
    rel.add(
        "in_care",
        "in-care-status-assignments",
        [{"href": "/rest-v2/in-care-status-assignments/1", "student": s1, "endDate": "2024-01-01"}],
    )  # ended: no longer looked after
    return rel


def test_a_student_joins_its_person_and_related_rows() -> None:
    rel = relations()
    batch = PupilsStream(resolve, school_id=SCHOOL, relations=rel).map_records(
        [student(1001, 50001)]
    )
    [pupil] = batch.records
    assert (pupil.id, pupil.mis_id) == ("oakfield:1001", "1001")
    assert (pupil.legal_forename, pupil.legal_surname, pupil.dob, pupil.sex) == (
        "Ava",
        "Smith",
        date(2014, 3, 4),
        "F",
    )
    # the open permanent assignment wins over the open temporary one
    assert (pupil.upn, pupil.former_upn) == ("PERM00000001", "OLD000000001")
    assert (pupil.nc_year, pupil.reg_group) == ("8", "7A")
    assert (pupil.ehcp, pupil.sen_support, pupil.looked_after) == (True, False, False)
    assert pupil.starting_day == date(2021, 9, 1) and pupil.leaving_date is None
    entry = only_quarantine(rel.quarantined)
    assert (entry.resource, entry.field) == ("upn-assignments", "student")


def test_a_bad_date_of_birth_is_quarantined_without_echoing_it() -> None:
    batch = PupilsStream(resolve, school_id=SCHOOL, relations=StudentRelations()).map_records(
        [student(1002, 50002)]
    )
    entry = only_quarantine(batch.quarantined)
    assert (entry.record_ref, entry.field) == ("/rest-v2/students/1002", "dateOfBirth")
    assert "2014-02-31" not in entry.reason and "not a valid date" in entry.reason


@pytest.mark.parametrize(
    ("row", "field", "reason"),
    [
        (student(1003, 50003), "gender", "gender code 'Q' is not recognised"),
        (student(1004, 50004), "person", "came back empty"),
        (student(1005, 59999), "person", "which Arbor says does not exist"),
        (student(1006, 50001, leavingDate="2020-01-01"), "leavingDate", "before starting_day"),
        (
            student(1007, 50001, mostRecentEntryDate="01/09/2021"),
            "mostRecentEntryDate",
            "'01/09/2021' is not a valid date",
        ),
    ],
)
def test_a_student_that_will_not_map_is_quarantined(
    row: dict[str, Any], field: str, reason: str
) -> None:
    batch = PupilsStream(resolve, school_id=SCHOOL, relations=StudentRelations()).map_records([row])
    entry = only_quarantine(batch.quarantined)
    assert (entry.resource, entry.field) == ("students", field)
    assert reason in entry.reason


# -- amendments and terms --------------------------------------------------------------------


def test_an_amendment_keeps_missing_fields_as_none() -> None:
    batch = AmendmentsStream(resolve, school_id=SCHOOL).map_records(
        [
            {
                "href": "/rest-v2/attendance-record-amendments/1",
                "student": ref("students", 1001),
                "startDatetime": "2025-09-08 13:15:00",
                "attendanceRegisterType": ref("attendance-register-types", 2),
                "originalAttendanceMark": None,
                "amendedAttendanceMark": ref("attendance-marks", "LATE"),
                "reason": None,
                "amendedDatetime": None,
                "amendedByName": None,
            }
        ]
    )
    [amendment] = batch.records
    assert (amendment.session, amendment.original_code, amendment.amended_code) == (
        Session.PM,
        None,
        "L",
    )
    assert amendment.reason is None and amendment.amended_by_name is None
    assert amendment.source.value == "mis"


def test_a_term_needs_both_dates() -> None:
    batch = TermsStream(resolve).map_records(
        [
            {"href": "/rest-v2/terms/1", "startDate": "2025-09-03", "endDate": "2025-10-24"},
            {"href": "/rest-v2/terms/2", "startDate": "2025-11-03"},
            {"href": "/rest-v2/terms/3", "startDate": "2025-12-19", "endDate": "2025-11-03"},
        ]
    )
    assert [(t.start, t.end) for t in batch.records] == [(date(2025, 9, 3), date(2025, 10, 24))]
    assert [(q.record_ref, q.field) for q in batch.quarantined] == [
        ("/rest-v2/terms/2", "endDate"),
        ("/rest-v2/terms/3", "endDate"),
    ]
