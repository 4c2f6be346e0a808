"""A generated school as GO 4 Schools records: students, education details, the code table,
the calendar, session marks and amendments. ``Go4SchoolsApp`` adds the HTTP face."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from functools import cache
from operator import itemgetter
from typing import Any

from registerwatch.calendar import england_bank_holidays
from registerwatch.schema import Amendment, ClosureKind, Mark, Pupil, Session
from registerwatch.simulator.go4schools.protocol import (
    ATTRIBUTES,
    CODE_TABLE,
    OFFICER_ONLY,
    ROW_BY_ID,
    ROW_BY_NATIONAL,
    academic_year_of,
    alias_national,
    day_type,
    g4s_date,
    g4s_instant,
)
from registerwatch.simulator.server import Response, VendorApp


class Go4SchoolsData(VendorApp):
    """The school rendered as GO 4 Schools records (no HTTP: ``Go4SchoolsApp`` serves them)."""

    def prepare(self) -> None:
        self.student_ids: dict[str, int] = {}
        # id(marks list) -> (a copy of that list, how many student ids there were, rows by day)
        self._day_rows: dict[int, tuple[list[Mark], int, dict[date, list[dict[str, Any]]]]] = {}
        self._assign_student_ids()

    def student_id(self, pupil_id: str) -> int:
        return self.student_ids[pupil_id]

    @staticmethod
    def encode(code: str, vendor_code: str | None = None) -> tuple[int, int | None]:
        """(session_mark_id, session_alias_id) for a national code as the school recorded it.

        The mark's ``vendor_code`` picks an alias when it names one under a row that means the
        same national code (``L1`` on an ``L`` mark); otherwise the code's own row is used.
        """
        return _encode(code, vendor_code)

    @staticmethod
    def vendor_code_for(code: str, vendor_code: str | None = None) -> str:
        """What GO 4 Schools shows for a mark: the alias code, else the code row's own code."""
        row_id, alias_id = Go4SchoolsData.encode(code, vendor_code)
        row = ROW_BY_ID[row_id]
        if alias_id is None:
            return row.code
        return next(a_code for a_id, a_code, _ in row.aliases if a_id == alias_id)

    # -- resources ------------------------------------------------------------------------------

    def academic_years(self) -> list[int]:
        years = {academic_year_of(t.start) for t in self.school.calendar.terms}
        years |= {academic_year_of(t.end) for t in self.school.calendar.terms}
        if self.school.as_of is not None:
            years.add(academic_year_of(self.school.as_of))
        return sorted(years)

    def current_academic_year(self) -> int:
        if self.school.as_of is not None:
            return academic_year_of(self.school.as_of)
        return max(self.academic_years())

    def _school(self) -> Response:
        school = self.school.school
        return Response.json(
            {
                "school": {
                    "code": school.laestab or school.id,
                    "name": school.name,
                    "academic_years": [str(y) for y in self.academic_years()],
                    "current_academic_year": str(self.current_academic_year()),
                }
            }
        )

    def _assign_student_ids(self) -> None:
        """Give every pupil a G4S student id, keeping the ids already given.

        G4S ids are integers and the cursor is the last id; numeric MIS ids are kept as they
        are, any others get stable integers after the largest one. Called on each request, so
        a pupil admitted between two syncs is served too.
        """
        ids = self.student_ids
        new = [p for p in self.school.pupils if p.id not in ids]
        if not new:
            return
        others: list[str] = []
        for pupil in sorted(new, key=lambda p: p.id):
            if pupil.mis_id.isdigit() and int(pupil.mis_id) not in ids.values():
                ids[pupil.id] = int(pupil.mis_id)
            else:
                others.append(pupil.id)
        next_id = max(ids.values(), default=100000) + 1
        for pupil_id in others:
            ids[pupil_id] = next_id
            next_id += 1

    def _on_roll_in(self, pupils: Iterable[Pupil], year: int) -> list[Pupil]:
        start, end = date(year - 1, 8, 1), date(year, 7, 31)
        return [
            p
            for p in pupils
            if p.id in self.student_ids
            and (p.starting_day is None or p.starting_day <= end)
            and (p.leaving_date is None or p.leaving_date >= start)
        ]

    def _students(self, pupils: list[Pupil], year: int) -> list[dict[str, Any]]:
        return [
            {
                "id": self.student_ids[p.id],
                "date_of_birth": g4s_date(p.dob) if p.dob else None,
                "sex": p.sex,
                "legal_first_name": p.legal_forename,
                "legal_last_name": p.legal_surname,
                "preferred_first_name": p.preferred_forename,
                "preferred_last_name": p.preferred_surname,
                "middle_names": p.middle_names,
            }
            for p in self._on_roll_in(pupils, year)
        ]

    def _education_details(self, pupils: list[Pupil], year: int) -> list[dict[str, Any]]:
        return [
            {
                "student_id": self.student_ids[p.id],
                "upn": p.upn,
                "former_upn": p.former_upn,
                "national_curriculum_year": p.nc_year,
                "registration_group": p.reg_group,
                "house": None,
                "admission_date": g4s_date(p.starting_day) if p.starting_day else None,
                "leaving_date": g4s_date(p.leaving_date) if p.leaving_date else None,
                "deleted_from_source": False,
                "student_education_attributes": self._attributes(p, year),
            }
            for p in self._on_roll_in(pupils, year)
        ]

    @staticmethod
    def _attributes(pupil: Pupil, year: int) -> list[dict[str, Any]]:
        values = {
            "sen": "E" if pupil.ehcp else "K" if pupil.sen_support else "N",
            "fsm": pupil.fsm,
            "looked_after": pupil.looked_after,
            "has_social_worker": pupil.has_social_worker,
            "boarder": pupil.boarder,
        }
        attributes = []
        for attribute_id, (code, name, key) in enumerate(ATTRIBUTES, start=1):
            value = values[key]
            attributes.append(
                {
                    "attribute_id": attribute_id,
                    "code": code,
                    "name": name,
                    "is_system": True,
                    "attribute_values": [
                        {
                            "value": value if isinstance(value, str) else ("Y" if value else "N"),
                            "academic_year": str(year),
                            "date": None,
                        }
                    ],
                }
            )
        return attributes

    @staticmethod
    def _codes() -> list[dict[str, Any]]:
        return [
            {
                "id": row.id,
                "code": row.code,
                "label": row.label,
                "attendance_officer_only": row.national in OFFICER_ONLY,
                "protect_if_entered_by_attendance_officer": row.national != "N",
                "protect_if_entered_by_school_manager": False,
                "protect_if_entered_by_behaviour_manager": False,
                "aliases": [
                    {"alias_id": a_id, "alias_code": a_code, "alias_label": a_label}
                    for a_id, a_code, a_label in row.aliases
                ],
            }
            for row in CODE_TABLE
        ]

    def _calendar(self, year: int) -> list[dict[str, Any]]:
        # OBSERVED shape, INFERRED content: one row per weekday in term that is not an England
        # bank holiday (the holidays package is the product's source for those), with the
        # closure kind folded into day_type_code.
        start, end = date(year - 1, 8, 1), date(year, 7, 31)
        calendar = self.school.calendar
        bank = england_bank_holidays(range(year - 1, year + 1))
        closures: dict[date, dict[str, ClosureKind]] = {}
        for closure in calendar.closures:
            sessions = ("AM", "PM") if closure.session == "both" else (closure.session,)
            for session in sessions:
                closures.setdefault(closure.date, {})[session] = closure.kind
        rows: list[dict[str, Any]] = []
        for term in sorted(calendar.terms, key=lambda t: t.start):
            day = max(term.start, start)
            while day <= min(term.end, end):
                if day.weekday() < 5 and day not in bank:
                    rows.append(
                        {
                            "timetable_id": 1,
                            "week": 1 + (day.isocalendar().week % 2),
                            "date": g4s_date(day),
                            "day_type_code": day_type(closures.get(day, {})),
                        }
                    )
                day += timedelta(days=1)
        for index, row in enumerate(rows, start=1):
            row["_position"] = index  # the calendar has no id: page by position (INFERRED)
        return rows

    def _session_marks(self, marks: list[Mark], day: date) -> list[dict[str, Any]]:
        """The day's rows (the caller copies what it changes: they are shared between requests)."""
        return self._marks_by_day(marks).get(day, [])

    def _marks_by_day(self, marks: list[Mark]) -> dict[date, list[dict[str, Any]]]:
        """Every day's session-mark rows, rendered once for this list of marks and reused
        while it holds the same marks and no pupil was given a new id.

        Rendering them anew for every request scanned the whole year's marks for each page of
        each day (a first sync's pages times its marks). Marks are immutable, so the list still
        holding the same marks (compared element by element: the same objects or equal ones)
        means the same rows; a test that edits the school's list directly is noticed as well.
        """
        cached = self._day_rows.get(id(marks))
        if cached is not None and cached[1] == len(self.student_ids) and cached[0] == marks:
            return cached[2]
        by_day: dict[date, list[dict[str, Any]]] = {}
        student_ids = self.student_ids
        # Per distinct value, not per mark: a year's marks share a few dozen (code, alias)
        # pairs and one date text per day.
        texts: dict[date, str | None] = {}
        encoded: dict[tuple[str, str | None], tuple[int, int | None]] = {}
        sessions = {session: session.value for session in Session}  # .value costs per call
        for mark in marks:
            student_id = student_ids.get(mark.pupil_id)
            if student_id is None:
                continue
            day = mark.date
            text = texts.get(day)
            if text is None:
                text = texts[day] = g4s_date(day)
                by_day[day] = []
            pair = (mark.code, mark.vendor_code)
            ids = encoded.get(pair)
            if ids is None:
                ids = encoded[pair] = self.encode(*pair)
            by_day[day].append(
                {
                    "date": text,
                    "session": sessions[mark.session],
                    "student_id": student_id,
                    "class_id": None,
                    "session_mark_id": ids[0],
                    "session_alias_id": ids[1],
                    "session_minutes_late": mark.minutes_late,
                    "session_notes": mark.comment,
                }
            )
        for rows in by_day.values():
            rows.sort(key=itemgetter("student_id", "session"))
        if len(self._day_rows) >= 4:  # the live list and the stale snapshot, mostly
            self._day_rows.clear()
        self._day_rows[id(marks)] = (list(marks), len(self.student_ids), by_day)
        return by_day

    def _amendments(self, amendments: list[Amendment], day: date) -> list[dict[str, Any]]:
        rows = []
        for index, amendment in enumerate(amendments, start=1):
            if amendment.date != day or amendment.pupil_id not in self.student_ids:
                continue
            original = self._encode_or_none(amendment.original_code)
            amended = self._encode_or_none(amendment.amended_code)
            rows.append(
                {
                    "id": index,
                    "date": g4s_date(amendment.date),
                    "session": amendment.session.value,
                    "student_id": self.student_ids[amendment.pupil_id],
                    "original_session_mark_id": original[0],
                    "original_session_alias_id": original[1],
                    "amended_session_mark_id": amended[0],
                    "amended_session_alias_id": amended[1],
                    "reason": amendment.reason,
                    "amended_at": g4s_instant(amendment.amended_at),
                    "amended_by_name": amendment.amended_by_name,
                    "amended_by_role": amendment.amended_by_position,
                }
            )
        return rows

    def _encode_or_none(self, code: str | None) -> tuple[int | None, int | None]:
        if code is None or code not in ROW_BY_NATIONAL:
            return None, None
        return self.encode(code)


@cache
def _encode(code: str, vendor_code: str | None) -> tuple[int, int | None]:
    # Cached: the code table is fixed and a year's marks use a few dozen (code, alias) pairs.
    if vendor_code:
        for row in CODE_TABLE:
            for alias_id, alias_code, _ in row.aliases:
                if alias_code == vendor_code and alias_national(row, alias_code) == code:
                    return row.id, alias_id
    return ROW_BY_NATIONAL[code].id, None
