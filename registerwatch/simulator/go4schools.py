"""A GO 4 Schools-style API ("customer v1") over a generated school, with vendor-shaped faults.

What is OBSERVED (in public sources) and what is INFERRED:

OBSERVED (official doc excerpt, ArchwayTrust/Education-G4S-APISync, afsarchowdhury/g4sr):
  - base path ``/customer/v1``, ``Authorization: Bearer {key}``, per-school key;
  - the academic year in the path is the year the academic year *ends* (2025/26 -> ``2026``);
  - ``has_more`` + integer ``cursor`` paging; the cursor is the last id returned;
  - ``students``, ``students/education-details``, ``attendance/codes`` (codes with ``aliases``),
    one ``attendance/student-session-marks/date/{yyyy-mm-dd}`` request per date, snake_case
    fields, ``timetables/calendar`` rows of ``timetable_id``/``week``/``date``/``day_type_code``,
    ``/school`` with ``academic_years`` and ``current_academic_year``;
  - error messages ("Invalid Cursor", "Invalid date.", the 401 and 403 texts).

INFERRED (a design choice for this simulator, never a fact about the vendor):
  - the error body ``{"error": message, "status": code}`` and collection-key casing;
  - the page size; the single-character encodings ``<`` ``>`` ``?`` for C1 C2 J1 (One/Capita's
    mapping) and the school aliases in ``ALIASES``;
  - ``day_type_code`` values (``DAY_TYPES``) and that the calendar lists term weekdays only;
  - the meaning of ``student_education_attributes`` codes (``ATTRIBUTES``);
  - the whole amendment history resource (``AMENDMENTS_PATH``): no vendor publishes one.
  - register-taking events are NOT served: GO 4 Schools exposes no register-taken time or taker
    (no public documentation describes one), so neither does this simulator.

Vendor-shaped faults, armed through ``faults`` (``FaultInjector``) like every simulator:
  EMPTY_PERMISSION  200 with an empty list (a module the key may not read)
  STALE_CACHE       marks/amendments/students from the snapshot taken at start (or at the last
                    ``refresh_cache()``), i.e. from before later edits
  CHANGING_PAGES    before a follow-on page (one with ``?cursor=``) of session marks, a mark on
                    an already-served pupil and one on a not-yet-served pupil are edited
  MALFORMED         the first records of the response get a bad date, an unknown code id, a
                    missing key... (``MALFORMATIONS``); each one is logged in ``corrupted``
A broken cursor is not a shared FaultKind, so it is a switch on this app: ``broken_cursor`` in
the constructor, ``set_broken_cursor(mode)``, or ``POST /_sim/go4schools/cursor {"mode": ...}``
(``DELETE`` clears). Modes: ``repeat`` (every page is the first page, with the same cursor),
``backwards`` (follow-on pages answer with a cursor lower than the one asked for), ``missing``
(``has_more: true`` with ``cursor: null``).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

from registerwatch.calendar import LONDON, england_bank_holidays, school_year_of
from registerwatch.codes import ALL_CODES
from registerwatch.schema import Amendment, ClosureKind, Mark, Pupil
from registerwatch.simulator.model import GeneratedSchool
from registerwatch.simulator.server import FaultInjector, FaultKind, Request, Response, VendorApp

PREFIX = "/customer/v1"
AMENDMENTS_PATH = "attendance/student-session-mark-amendments"  # INFERRED resource

CursorMode = Literal["repeat", "backwards", "missing"]
CURSOR_MODES: tuple[str, ...] = ("repeat", "backwards", "missing")

# -- the attendance code table (INFERRED layout; the codes themselves are national) -------------

# INFERRED for G4S, SECONDARY for MIS generally: vendors store the 2024 two-character codes as
# single characters; One/Capita uses these three.
VENDOR_ENCODINGS: dict[str, str] = {"C1": "<", "C2": ">", "J1": "?"}

# INFERRED: school-defined aliases hanging off a code (e.g. L -> "L1 Late - bus").
# Some are sub-reasons (L1), some lower-case variants (i, n, c1), and some are the 2024 codes
# recorded as an alias of an older code (C1 under C, J1 under legacy J) by schools that set them
# up before the vendor added its own encodings. national code -> [(alias_code, alias_label)]
ALIASES: dict[str, list[tuple[str, str]]] = {
    "L": [("L1", "Late - bus"), ("L2", "Late - medical appointment")],
    "I": [("i", "Illness (entered in lower case)")],
    "N": [("n", "No reason yet (entered in lower case)")],
    "C": [("C1", "Leave - regulated performance (school alias)")],
    "C1": [("c1", "Performance licence (entered in lower case)")],
    "J": [("J1", "Interview (school alias)")],
}

_CODE_LABELS: dict[str, str] = {}
for _row in ALL_CODES:  # 2024 rows first, so a code keeps its current meaning as its label
    _CODE_LABELS.setdefault(_row.code, _row.description)


@dataclass(frozen=True)
class CodeRow:
    id: int
    national: str
    code: str  # as the vendor shows it
    label: str
    aliases: tuple[tuple[int, str, str], ...]  # (alias_id, alias_code, alias_label)


def _build_code_table() -> list[CodeRow]:
    rows: list[CodeRow] = []
    alias_id = 100
    for index, national in enumerate(_CODE_LABELS, start=1):
        aliases = []
        for alias_code, alias_label in ALIASES.get(national, []):
            alias_id += 1
            aliases.append((alias_id, alias_code, alias_label))
        rows.append(
            CodeRow(
                id=index,
                national=national,
                code=VENDOR_ENCODINGS.get(national, national),
                label=_CODE_LABELS[national],
                aliases=tuple(aliases),
            )
        )
    return rows


CODE_TABLE: tuple[CodeRow, ...] = tuple(_build_code_table())
_ROW_BY_NATIONAL = {row.national: row for row in CODE_TABLE}
_ROW_BY_ID = {row.id: row for row in CODE_TABLE}
# INFERRED: which roles may enter a code, mirroring the observed protect_if_entered_by_* flags.
_OFFICER_ONLY = {"G", "E", "T", "Q", "Y4", "#"}

# -- calendar day types (INFERRED values; the field is OBSERVED) --------------------------------

DAY_TYPES: dict[str, tuple[Literal["AM", "PM", "both"], ClosureKind | None]] = {
    "S": ("both", None),  # school day
    "C": ("both", ClosureKind.PLANNED),  # planned closure (INSET...)
    "CA": ("AM", ClosureKind.PLANNED),
    "CP": ("PM", ClosureKind.PLANNED),
    "Y": ("both", ClosureKind.UNEXPECTED),  # unexpected closure (Y4)
    "YA": ("AM", ClosureKind.UNEXPECTED),
    "YP": ("PM", ClosureKind.UNEXPECTED),
}

# -- student education attributes (INFERRED codes and values; the shape is OBSERVED) -------------

# (attribute code, attribute name, what it holds); values are Y/N except SEN (E/K/N)
ATTRIBUTES: tuple[tuple[str, str, str], ...] = (
    ("SEN", "SEN status", "sen"),  # E = EHC plan, K = SEN support, N = none
    ("FSM", "Free school meals", "fsm"),
    ("LAC", "Looked after", "looked_after"),
    ("CSW", "Has a social worker", "has_social_worker"),
    ("BRD", "Boarder", "boarder"),
)

# -- MALFORMED: what goes wrong in which resource (field, bad value; ... = key removed) ----------

_DROP = object()
MALFORMATIONS: dict[str, tuple[tuple[str, Any], ...]] = {
    "students": (("date_of_birth", "2012-02-30"), ("id", _DROP), ("sex", "Q")),
    "education-details": (("admission_date", "31/02/2025"), ("student_id", _DROP)),
    "session-marks": (
        ("date", "2025-02-30T00:00:00"),
        ("session_mark_id", 9999),
        ("session", _DROP),
    ),
    "amendments": (("amended_at", "yesterday"), ("session", "XM")),
    "calendar": (("date", "not a date"),),
}


@dataclass(frozen=True)
class Corruption:
    """One record the MALFORMED fault spoiled: resource, the record's key, and the field."""

    resource: str
    student_id: int | None
    day: date | None
    session: str | None
    field: str


def _error(status: int, message: str) -> Response:
    # INFERRED body shape: the docs give the messages, not the envelope.
    return Response.json({"error": message, "status": status}, status=status)


def _g4s_date(day: date) -> str:
    return f"{day.isoformat()}T00:00:00"  # OBSERVED: dates come as naive midnight date-times


def _g4s_instant(moment: datetime | None) -> str | None:
    # G4S shows local (UK) wall-clock times without an offset (as its dates); INFERRED.
    if moment is None:
        return None
    return moment.astimezone(LONDON).replace(tzinfo=None).isoformat(timespec="seconds")


def academic_year_of(day: date) -> int:
    """The G4S academic year of a date: the year it ends (2025/26 -> 2026)."""
    return school_year_of(day) + 1


class Go4SchoolsApp(VendorApp):
    """GO 4 Schools "customer v1" over a ``GeneratedSchool`` (see the module docstring)."""

    vendor = "go4schools"
    records_edit_history = True

    def __init__(
        self,
        school: GeneratedSchool,
        faults: FaultInjector | None = None,
        *,
        serve_amendments: bool = True,
        api_key: str = "simulator-key",
        page_size: int = 100,
        broken_cursor: CursorMode | None = None,
    ) -> None:
        super().__init__(school, faults, serve_amendments=serve_amendments)
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        self.api_key = api_key
        self.page_size = page_size
        self.broken_cursor: CursorMode | None = None
        self.broken_cursor_path: str | None = None
        if broken_cursor is not None:
            self.set_broken_cursor(broken_cursor)
        self.corrupted: list[Corruption] = []
        self.student_ids: dict[str, int] = {}
        self._assign_student_ids()
        self._snapshot: tuple[list[Pupil], list[Mark], list[Amendment]] = ([], [], [])
        self.refresh_cache()

    # -- switches for tests --------------------------------------------------------------------

    def set_broken_cursor(self, mode: CursorMode | None, path: str | None = None) -> None:
        """Break paging on every paged response (whose path contains ``path``); None mends it."""
        if mode is not None and mode not in CURSOR_MODES:
            raise ValueError(f"broken_cursor must be one of {CURSOR_MODES}, not {mode!r}")
        self.broken_cursor = mode
        self.broken_cursor_path = path

    def refresh_cache(self) -> None:
        """Take the snapshot that STALE_CACHE serves (the vendor's cache filling up)."""
        with self.lock:
            self._snapshot = (
                list(self.school.pupils),
                list(self.school.marks),
                list(self.school.amendments),
            )

    def student_id(self, pupil_id: str) -> int:
        return self.student_ids[pupil_id]

    @staticmethod
    def encode(code: str, vendor_code: str | None = None) -> tuple[int, int | None]:
        """(session_mark_id, session_alias_id) for a national code as the school recorded it.

        The mark's ``vendor_code`` picks an alias when it names one under a row that means the
        same national code (``L1`` on an ``L`` mark); otherwise the code's own row is used.
        """
        if vendor_code:
            for row in CODE_TABLE:
                for alias_id, alias_code, _ in row.aliases:
                    if alias_code == vendor_code and _alias_national(row, alias_code) == code:
                        return row.id, alias_id
        return _ROW_BY_NATIONAL[code].id, None

    @staticmethod
    def vendor_code_for(code: str, vendor_code: str | None = None) -> str:
        """What GO 4 Schools shows for a mark: the alias code, else the code row's own code."""
        row_id, alias_id = Go4SchoolsApp.encode(code, vendor_code)
        row = _ROW_BY_ID[row_id]
        if alias_id is None:
            return row.code
        return next(a_code for a_id, a_code, _ in row.aliases if a_id == alias_id)

    # -- control endpoint for the broken cursor -------------------------------------------------

    def _control(self, request: Request) -> Response:
        if request.path != "/_sim/go4schools/cursor":
            return super()._control(request)
        if request.method == "DELETE":
            self.set_broken_cursor(None)
            return Response.json({"broken_cursor": None})
        payload = json.loads(request.body or b"{}")
        try:
            self.set_broken_cursor(payload.get("mode"), payload.get("path"))
        except ValueError as exc:
            return _error(400, str(exc))
        return Response.json({"broken_cursor": self.broken_cursor})

    # -- routing --------------------------------------------------------------------------------

    _YEAR_ROUTE = re.compile(r"^/academic-years/(?P<year>[^/]+)/(?P<rest>.+?)/?$")
    _DATE_ROUTE = re.compile(r"^(?P<resource>attendance/[a-z-]+)/date/(?P<day>[^/]+)$")

    def route(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return _error(401, "Unauthorised. Your API key is not valid for this request")
        self._assign_student_ids()
        if not request.path.startswith(PREFIX + "/"):
            return _error(404, "Not found")
        if request.method != "GET":
            return _error(405, "Method not allowed")
        path = request.path[len(PREFIX) :]
        if path.rstrip("/") == "/school":
            return self._school()
        match = self._YEAR_ROUTE.match(path)
        if match is None:
            return _error(404, "Not found")
        try:
            year = int(match["year"])
        except ValueError:
            return _error(400, "Invalid Academic Year")
        if year not in self.academic_years():
            return _error(400, "Invalid Academic Year")
        rest = match["rest"]
        cursor_arg = request.arg("cursor")
        cursor: int | None = None
        if cursor_arg is not None:
            try:
                cursor = int(cursor_arg)
            except ValueError:
                return _error(400, "Invalid Cursor")
            if cursor < 0:
                return _error(400, "Invalid Cursor")  # OBSERVED: "The cursor is less than 0"
        stale = self.faults.take(FaultKind.STALE_CACHE, request.path) is not None
        pupils, marks, amendments = (
            self._snapshot
            if stale
            else (self.school.pupils, self.school.marks, self.school.amendments)
        )

        if rest == "students":
            return self._paged(
                request, "students", "students", self._students(pupils, year), cursor, "id"
            )
        if rest == "students/education-details":
            return self._paged(
                request,
                "students",
                "education-details",
                self._education_details(pupils, year),
                cursor,
                "student_id",
            )
        if rest == "attendance/codes":
            return self._paged(request, "attendanceCodes", "codes", self._codes(), cursor, "id")
        if rest == "timetables/calendar":
            return self._paged(request, "calendar", "calendar", self._calendar(year), cursor, None)
        dated = self._DATE_ROUTE.match(rest)
        if dated is not None:
            resource = dated["resource"]
            try:
                day = date.fromisoformat(dated["day"])
            except ValueError:
                return _error(400, "Invalid date.")
            if academic_year_of(day) != year:
                return _error(400, "Invalid date.")
            if resource == "attendance/student-session-marks":
                if cursor is not None and self.faults.take(FaultKind.CHANGING_PAGES, request.path):
                    self._change_between_pages(day, cursor)
                    marks = self.school.marks
                return self._paged(
                    request,
                    "studentSessionMarks",
                    "session-marks",
                    self._session_marks(marks, day),
                    cursor,
                    "student_id",
                )
            if resource == AMENDMENTS_PATH and self.serve_amendments:
                return self._paged(
                    request,
                    "studentSessionMarkAmendments",
                    "amendments",
                    self._amendments(amendments, day),
                    cursor,
                    "id",
                )
        return _error(404, "Not found")

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
                "date_of_birth": _g4s_date(p.dob) if p.dob else None,
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
                "admission_date": _g4s_date(p.starting_day) if p.starting_day else None,
                "leaving_date": _g4s_date(p.leaving_date) if p.leaving_date else None,
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
                "attendance_officer_only": row.national in _OFFICER_ONLY,
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
                            "date": _g4s_date(day),
                            "day_type_code": _day_type(closures.get(day, {})),
                        }
                    )
                day += timedelta(days=1)
        for index, row in enumerate(rows, start=1):
            row["_position"] = index  # the calendar has no id: page by position (INFERRED)
        return rows

    def _session_marks(self, marks: list[Mark], day: date) -> list[dict[str, Any]]:
        rows = []
        for mark in marks:
            if mark.date != day or mark.pupil_id not in self.student_ids:
                continue
            mark_id, alias_id = self.encode(mark.code, mark.vendor_code)
            rows.append(
                {
                    "date": _g4s_date(mark.date),
                    "session": mark.session.value,
                    "student_id": self.student_ids[mark.pupil_id],
                    "class_id": None,
                    "session_mark_id": mark_id,
                    "session_alias_id": alias_id,
                    "session_minutes_late": mark.minutes_late,
                    "session_notes": mark.comment,
                }
            )
        rows.sort(key=lambda r: (r["student_id"], r["session"]))
        return rows

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
                    "date": _g4s_date(amendment.date),
                    "session": amendment.session.value,
                    "student_id": self.student_ids[amendment.pupil_id],
                    "original_session_mark_id": original[0],
                    "original_session_alias_id": original[1],
                    "amended_session_mark_id": amended[0],
                    "amended_session_alias_id": amended[1],
                    "reason": amendment.reason,
                    "amended_at": _g4s_instant(amendment.amended_at),
                    "amended_by_name": amendment.amended_by_name,
                    "amended_by_role": amendment.amended_by_position,
                }
            )
        return rows

    def _encode_or_none(self, code: str | None) -> tuple[int | None, int | None]:
        if code is None or code not in _ROW_BY_NATIONAL:
            return None, None
        return self.encode(code)

    # -- paging and the faults that shape a page ------------------------------------------------

    def _paged(
        self,
        request: Request,
        key: str,
        resource: str,
        rows: list[dict[str, Any]],
        cursor: int | None,
        id_field: str | None,
    ) -> Response:
        if self.faults.take(FaultKind.EMPTY_PERMISSION, request.path) is not None:
            return Response.json({key: [], "has_more": False, "cursor": None})

        def key_of(row: dict[str, Any]) -> int:
            return int(row[id_field] if id_field else row["_position"])

        rows = sorted(rows, key=key_of)
        broken = (
            self.broken_cursor
            if (self.broken_cursor_path is None or self.broken_cursor_path in request.path)
            else None
        )
        if broken == "repeat":
            cursor = None  # ignore where the client is: always answer with the first page
        remaining = [r for r in rows if cursor is None or key_of(r) > cursor]
        # A page holds whole students (both sessions of a day), so that the cursor, the last
        # student id, never splits a pupil's marks across pages.
        page: list[dict[str, Any]] = []
        taken: set[int] = set()
        for row in remaining:
            row_key = key_of(row)
            if row_key not in taken and len(taken) >= self.page_size:
                break
            taken.add(row_key)
            page.append(row)
        has_more = len(page) < len(remaining)
        next_cursor: int | None = key_of(page[-1]) if has_more else None
        if has_more and broken == "backwards" and cursor is not None:
            next_cursor = cursor - 1
        elif has_more and broken == "missing":
            next_cursor = None
        body = [{k: v for k, v in row.items() if not k.startswith("_")} for row in page]
        if self.faults.take(FaultKind.MALFORMED, request.path) is not None:
            body = self._spoil(resource, body)
        return Response.json({key: body, "has_more": has_more, "cursor": next_cursor})

    def _spoil(self, resource: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        rows = copy.deepcopy(rows)
        for row, (field, bad) in zip(rows, MALFORMATIONS.get(resource, ()), strict=False):
            student = row.get("id") if resource == "students" else row.get("student_id")
            day = _date_of(row.get("date"))
            self.corrupted.append(
                Corruption(
                    resource=resource,
                    student_id=student,
                    day=day,
                    session=row.get("session"),
                    field=field,
                )
            )
            if bad is _DROP:
                row.pop(field, None)
            else:
                row[field] = bad
        return rows

    def _change_between_pages(self, day: date, cursor: int) -> None:
        """Edit one mark already served (id <= cursor) and one not yet served (id > cursor)."""
        todays = [m for m in self.school.marks if m.date == day and m.pupil_id in self.student_ids]
        served = [m for m in todays if self.student_ids[m.pupil_id] <= cursor]
        unserved = [m for m in todays if self.student_ids[m.pupil_id] > cursor]
        for group in (served, unserved):
            if not group:
                continue
            mark = min(group, key=lambda m: (self.student_ids[m.pupil_id], m.session.value))
            self.set_mark(mark.pupil_id, day, mark.session, _changed_code(mark.code))


def _alias_national(row: CodeRow, alias_code: str) -> str:
    """The national code an alias stands for: itself when it names one, else its parent's."""
    for national, encoded in VENDOR_ENCODINGS.items():
        if alias_code == encoded:
            return national
    upper = alias_code.upper()
    if upper in _CODE_LABELS:
        return upper
    return row.national


def _day_type(sessions: dict[str, ClosureKind]) -> str:
    if not sessions:
        return "S"
    kinds = set(sessions.values())
    kind = ClosureKind.PLANNED if ClosureKind.PLANNED in kinds else ClosureKind.UNEXPECTED
    prefix = "C" if kind is ClosureKind.PLANNED else "Y"
    closed = {s for s, k in sessions.items() if k is kind}
    if closed == {"AM", "PM"}:
        return prefix
    return prefix + ("A" if "AM" in closed else "P")


def _changed_code(code: str) -> str:
    # The most common real edit: an unexplained absence (N) resolved as unauthorised (O).
    return "O" if code == "N" else "N"


def _date_of(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


__all__: list[str] = [
    "ALIASES",
    "AMENDMENTS_PATH",
    "ATTRIBUTES",
    "CODE_TABLE",
    "CURSOR_MODES",
    "DAY_TYPES",
    "MALFORMATIONS",
    "PREFIX",
    "VENDOR_ENCODINGS",
    "CodeRow",
    "Corruption",
    "Go4SchoolsApp",
    "academic_year_of",
]
