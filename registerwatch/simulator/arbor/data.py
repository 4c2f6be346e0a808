"""A generated school as Arbor records: the resources that stay put while the app runs, and
how one mark renders as an AttendanceRecord. ``ArborApp`` adds the HTTP face and the changes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, time, timedelta
from typing import Any

from registerwatch.calendar import LONDON
from registerwatch.codes import ALL_CODES, lookup
from registerwatch.schema import Amendment, Mark, Pupil, Register, Session
from registerwatch.simulator.arbor.protocol import (
    AMENDMENTS,
    ARBOR_DATETIME,
    ATTENDANCE_MARKS,
    BASELINE_REVISION,
    GENDERS,
    KINDS,
    SCHOOL_DEFINED_MARK,
    SEN_STATUSES,
    arbor_date,
    arbor_datetime,
    stub,
)
from registerwatch.simulator.common import register_opens
from registerwatch.simulator.server import VendorApp

MarkKey = tuple[str, date, Session]


class RecordBook:
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

    def copy(self) -> RecordBook:
        other = RecordBook(())
        other.ids = dict(self.ids)
        other.revisions = dict(self.revisions)
        other.next_id = self.next_id
        return other


class ArborData(VendorApp):
    """The school rendered as Arbor resources (no HTTP: ``ArborApp`` serves them)."""

    def prepare(self) -> None:
        self._book = RecordBook(self.school.marks)
        self._pupils = {p.id: p for p in self.school.pupils}
        self._times_by_session: dict[tuple[date, Session], tuple[str | None, str | None]] = {}
        self._static = self._build_static()

    # -- ids shared by several resources ----------------------------------------------------

    def record_id(self, pupil_id: str, day: date, session: Session) -> int | None:
        """The AttendanceRecord id currently serving a mark (tests map hrefs back to keys)."""
        return self._book.ids.get((pupil_id, day, Session(session)))

    def _student_id(self, pupil_id: str) -> str:
        pupil = self._pupils.get(pupil_id)
        return pupil.mis_id if pupil is not None else pupil_id.split(":", 1)[-1]

    def _session_start(self, day: date, session: Session) -> datetime:
        return register_opens(self.school.calendar, day, session).replace(tzinfo=LONDON)

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

    def _record(self, mark: Mark, book: RecordBook) -> dict[str, Any]:
        key = (mark.pupil_id, mark.date, mark.session)
        pupil = self._pupils.get(mark.pupil_id)
        register = None
        if pupil is not None and pupil.reg_group is not None:
            register = self._register_ids.get((pupil.reg_group, mark.date, mark.session))
        start, end = self._session_times(mark.date, mark.session)
        return {
            **stub("attendance-records", book.ids[key]),
            "student": stub("students", self._student_id(mark.pupil_id)),
            "attendanceMark": stub("attendance-marks", ATTENDANCE_MARKS[mark.code][0]),
            "attendanceRegister": stub("attendance-registers", register) if register else None,
            "startDatetime": start,
            "endDatetime": end,
            "minutesLate": mark.minutes_late,
            "recordNote": mark.comment,
            "source": "REGISTER",
            "isRedundant": False,
            "sourceAttendanceRecord": None,
            "modifiedDatetime": arbor_datetime(mark.recorded_at),
            "revisionId": book.revisions[key],
        }

    def _session_times(self, day: date, session: Session) -> tuple[str | None, str | None]:
        """A session's start and register-close times as Arbor writes them. Every record of
        a session carries the same two, so each is formatted once (a school year renders
        tens of thousands of records and only a few hundred sessions)."""
        known = self._times_by_session.get((day, session))
        if known is None:
            start = self._session_start(day, session)
            close = timedelta(minutes=self.school.calendar.register_times.close_after_minutes)
            known = (arbor_datetime(start), arbor_datetime(start + close))
            self._times_by_session[(day, session)] = known
        return known
