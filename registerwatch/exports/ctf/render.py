"""Render the attendance block of a Common Transfer File (CTF) for one school.

No CTF 25 specification or XSD was publicly available; every element
name here is one the CTF importer (``registerwatch.adapters.ctf``) reads, taken from exporters'
code (VERIFIED from code: DfE GIAP for the header and pupil identity, Follett Aspen for the
attendance block)::

    CTfile/Header/{DocumentName, CTFversion, DateTime, DocumentQualifier, SupplierID,
                   SourceSchool/{LEA, Estab, SchoolName, AcademicYear}, DestSchool?}
    CTfile/CTFpupilData/Pupil/{UPN, Surname, Forename, DOB, Sex?,
        Attendance/YearData/{Year, LEA, Estab, SchoolName, SessionsPossible, SessionsAuthorised,
                             SessionsAttended, SessionsUnauthorised,
                             AttendSessions/{AttendanceStartDate, AttendanceMarks}?}}

``AttendanceMarks`` holds two characters per calendar date, AM then PM, from
``AttendanceStartDate`` (Follett's ``getAttendanceMarks()``, VERIFIED from code): a date or session
that is not a school session for the pupil (weekend, holiday, planned closure, before they joined
or after they left) is ``#``. The multi-character 2024 codes are written with the single
characters MIS vendors use (SECONDARY, One/Capita: C1 ``<``, C2 ``>``, J1 ``?``): the inverse of
``codes.CTF_SINGLE_CHARACTER_CODES`` (the table the CTF importer decodes with), so a file written
here imports back unchanged.

Y1-Y7 have no known single character (unresolved). They are not possible sessions,
so the session counts do not change whatever is written; ``unencodable="not-in-session"``
(the default) writes ``#`` for them, and ``"refuse"`` stops the return listing each one.

Unlike Follett, a school session with no mark is never filled with ``/\\`` (that would invent
presence): it refuses the return (IncompleteRegisterError) unless ``allow_incomplete``, when it is
written ``#`` and not counted.

Pure: everything comes in through the arguments, the clock included.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from lxml import etree

from registerwatch.calendar import school_year_bounds, school_year_of
from registerwatch.codes import (
    CTF_NOT_IN_SESSION,
    CTF_SINGLE_CHARACTER_CODES,
    session_statistics,
)
from registerwatch.exports.base import RenderedReturn, ReturnRecordKey, sub, xml_bytes
from registerwatch.exports.registers import (
    ExportRequestError,
    IncompleteRegisterError,
    RegisterData,
    ReturnDataError,
    describe_session,
    expected_sessions,
    invalid_mark_problems,
    pupil_data_problems,
    refuse_if,
    registered,
    unmarked_problems,
    upn_text,
)
from registerwatch.schema import Pupil, Session

KIND = "ctf"
SCHEMA_NAME = "ctf-attendance-1.xsd"
LONDON = ZoneInfo("Europe/London")

# VERIFIED from code (DfE GIAP).
DOCUMENT_NAME = "Common Transfer File"
CTF_VERSION = "25.0"
# A CTF that carries only part of the pupil record (GIAP writes "partial" for the same reason).
DOCUMENT_QUALIFIER = "partial"
SUPPLIER_ID = "registerwatch"

# The national code -> the one character written for it (the importer's table, inverted).
CHARACTER_FOR_CODE: Mapping[str, str] = {
    code: character for character, code in CTF_SINGLE_CHARACTER_CODES.items()
}

PUPILS_OPTION = "ctf_pupils"
UNENCODABLE_OPTION = "ctf_unencodable"
DESTINATION_OPTION = "ctf_destination"

CSV_HEADER = (
    "upn",
    "surname",
    "forename",
    "dob",
    "sex",
    "year",
    "lea",
    "estab",
    "sessions_possible",
    "sessions_authorised",
    "sessions_attended",
    "sessions_unauthorised",
    "attendance_start_date",
    "attendance_marks",
)


class PupilSelection(StrEnum):
    ON_ROLL = "on-roll"  # on roll on the as-of date (the default)
    LEAVERS = "leavers"  # left during the school year, on or before the as-of date
    ALL = "all"  # both


class Unencodable(StrEnum):
    NOT_IN_SESSION = "not-in-session"
    REFUSE = "refuse"


@dataclass(frozen=True)
class Destination:
    """``<DestSchool>``: a school's LEA and Estab, or the DfE's placeholders (MEMORY/INFERRED:
    ``MMM``/``MMMM`` for a pupil whose destination is unknown, sent to the lost pupils database;
    ``XXX``/``XXXX`` for a pupil leaving the maintained sector)."""

    lea: str
    estab: str

    @classmethod
    def parse(cls, text: str) -> Destination:
        value = text.strip().upper()
        if value in ("MMMMMMM", "XXXXXXX") or (len(value) == 7 and value.isdigit()):
            return cls(value[:3], value[3:])
        raise ExportRequestError(
            f"{DESTINATION_OPTION} {text!r} must be the destination's 7-digit LAESTAB, MMMMMMM "
            "(destination unknown) or XXXXXXX (leaving the maintained sector)"
        )


@dataclass(frozen=True)
class YearBlock:
    year: int
    possible: int
    authorised: int
    attended: int
    unauthorised: int
    start: date | None
    marks: str


def ctf_window(as_of: date) -> tuple[int, date, date]:
    """The school year (start year) and the dates the CTF covers: from 1 August of the school
    year that holds the day before ``as_of`` to that day (as-of is "today, before
    registration")."""
    last_day = as_of - timedelta(days=1)
    year = school_year_of(last_day)
    return year, school_year_bounds(year)[0], last_day


def select_pupils(
    pupils: Iterable[Pupil], selection: PupilSelection, as_of: date, year_start: date
) -> list[Pupil]:
    chosen = []
    for pupil in pupils:
        if not registered(pupil):
            continue
        on_roll = pupil.on_roll(as_of)
        left = (
            pupil.leaving_date is not None
            and year_start <= pupil.leaving_date <= as_of
            and not on_roll
        )
        if (
            (selection is PupilSelection.ON_ROLL and on_roll)
            or (selection is PupilSelection.LEAVERS and left)
            or (selection is PupilSelection.ALL and (on_roll or left))
        ):
            chosen.append(pupil)
    return chosen


def render(
    data: RegisterData,
    *,
    as_of: date,
    generated_at: datetime,
    selection: PupilSelection = PupilSelection.ON_ROLL,
    unencodable: Unencodable = Unencodable.NOT_IN_SESSION,
    destination: Destination | None = None,
    allow_incomplete: bool = False,
) -> RenderedReturn:
    school = data.school
    if generated_at.tzinfo is None or generated_at.utcoffset() is None:
        raise ExportRequestError("generated_at must be timezone-aware")
    year, year_start, last_day = ctf_window(as_of)
    pupils = select_pupils(data.pupils, selection, as_of, year_start)

    problems: list[str] = []
    unmarked: list[str] = []
    for pupil in pupils:
        marks = data.marks_of(pupil, year_start, last_day)
        problems += pupil_data_problems(pupil, upn_required=True)
        problems += invalid_mark_problems(pupil, marks)
        if unencodable is Unencodable.REFUSE:
            problems += [
                f"pupil {pupil.mis_id}: {describe_session(m.date, m.session)} is marked "
                f"{m.code!r}, which has no single-character CTF form"
                for m in marks
                if _character(m.code) is None
            ]
        unmarked += unmarked_problems(
            pupil,
            [
                s
                for s in expected_sessions(data, pupil, year_start, last_day)
                if data.mark(pupil, *s) is None
            ],
            itemise=False,
        )
    refuse_if(
        problems,
        ReturnDataError,
        f"school {school.id!r}: the CTF attendance block cannot be made from what the "
        "store holds; correct these in the MIS and sync again",
    )
    if not allow_incomplete:
        refuse_if(
            unmarked,
            IncompleteRegisterError,
            f"school {school.id!r}: {len(unmarked)} pupil(s) have school sessions without "
            "a mark this school year; complete the registers in the MIS and sync, or pass "
            "--allow-incomplete to write them as not in session",
        )

    root = etree.Element("CTfile")
    _header(root, data, year, generated_at, destination)
    pupil_data = sub(root, "CTFpupilData")
    rows: list[list[object]] = []
    keys: list[ReturnRecordKey] = []
    for pupil in pupils:
        block = year_block(data, pupil, year, year_start, last_day)
        _pupil(pupil_data, data, pupil, block)
        rows.append(_row(data, pupil, block))
        keys.append(ReturnRecordKey(pupil.id, str(year)))

    return RenderedReturn(
        kind=KIND,
        school_id=school.id,
        schema_name=SCHEMA_NAME,
        xml=xml_bytes(root),
        csv_header=CSV_HEADER,
        csv_rows=rows,
        file_stem=f"{KIND}_{school.id}_{as_of.isoformat()}",
        records=keys,
        period=as_of.isoformat(),
    )


def _character(code: str) -> str | None:
    """The CTF character for a national code; None when it has none (Y1-Y7)."""
    if code in CHARACTER_FOR_CODE:
        return CHARACTER_FOR_CODE[code]
    return code if len(code) == 1 else None


def year_block(
    data: RegisterData, pupil: Pupil, year: int, year_start: date, last_day: date
) -> YearBlock:
    """The pupil's YearData: counts from, and the marks string of, the same marks."""
    first = max(year_start, pupil.starting_day or year_start)
    last = min(last_day, pupil.leaving_date or last_day)
    school_days = [d for d, _ in expected_sessions(data, pupil, first, last)]
    marks = data.marks_of(pupil, first, last)
    if not school_days and not marks:
        return YearBlock(year, 0, 0, 0, 0, None, "")
    start = min([*school_days[:1], *(m.date for m in marks[:1])])
    end = max([*school_days[-1:], *(m.date for m in marks[-1:])])
    by_session = {(m.date, m.session): m for m in marks}
    characters: list[str] = []
    day = start
    while day <= end:
        for session in (Session.AM, Session.PM):
            mark = by_session.get((day, session))
            written = _character(mark.code) if mark is not None else None
            characters.append(written or CTF_NOT_IN_SESSION)
        day += timedelta(days=1)
    stats = session_statistics(Counter(m.code for m in marks))
    return YearBlock(
        year=year,
        possible=stats.possible,
        authorised=stats.authorised,
        attended=stats.attendance,
        unauthorised=stats.unauthorised,
        start=start,
        marks="".join(characters),
    )


def _header(
    root: etree._Element,
    data: RegisterData,
    year: int,
    generated_at: datetime,
    destination: Destination | None,
) -> None:
    school = data.school
    header = sub(root, "Header")
    sub(header, "DocumentName", DOCUMENT_NAME)
    sub(header, "CTFversion", CTF_VERSION)
    # Exporters write school-local time without an offset (GIAP: 2024-02-01T10:30:00).
    local = generated_at.astimezone(LONDON).replace(tzinfo=None)
    sub(header, "DateTime", local.isoformat(timespec="seconds"))
    sub(header, "DocumentQualifier", DOCUMENT_QUALIFIER)
    sub(header, "SupplierID", SUPPLIER_ID)
    source = sub(header, "SourceSchool")
    sub(source, "LEA", school.la_code)
    sub(source, "Estab", school.estab)
    sub(source, "SchoolName", school.name)
    # SECONDARY (One documentation): the academic year switches on 1 August; written as the
    # year it starts in, as the CTFs the importer is tested on do.
    sub(source, "AcademicYear", year)
    if destination is not None:
        dest = sub(header, "DestSchool")
        sub(dest, "LEA", destination.lea)
        sub(dest, "Estab", destination.estab)


def _pupil(parent: etree._Element, data: RegisterData, pupil: Pupil, block: YearBlock) -> None:
    school = data.school
    element = sub(parent, "Pupil")
    sub(element, "UPN", upn_text(pupil))
    sub(element, "Surname", pupil.legal_surname)
    sub(element, "Forename", pupil.legal_forename)
    sub(element, "DOB", pupil.dob)
    if pupil.sex is not None:
        sub(element, "Sex", pupil.sex)
    year_data = sub(sub(element, "Attendance"), "YearData")
    sub(year_data, "Year", block.year)
    sub(year_data, "LEA", school.la_code)
    sub(year_data, "Estab", school.estab)
    sub(year_data, "SchoolName", school.name)
    sub(year_data, "SessionsPossible", block.possible)
    sub(year_data, "SessionsAuthorised", block.authorised)
    # INFERRED: "attended" as DfE statistics count attendance (present, late and approved
    # educational activity).
    sub(year_data, "SessionsAttended", block.attended)
    sub(year_data, "SessionsUnauthorised", block.unauthorised)
    if block.start is not None:
        sessions = sub(year_data, "AttendSessions")
        sub(sessions, "AttendanceStartDate", block.start)
        sub(sessions, "AttendanceMarks", block.marks)


def _row(data: RegisterData, pupil: Pupil, block: YearBlock) -> list[object]:
    return [
        upn_text(pupil),
        pupil.legal_surname,
        pupil.legal_forename,
        pupil.dob.isoformat() if pupil.dob else "",
        pupil.sex or "",
        block.year,
        data.school.la_code,
        data.school.estab,
        block.possible,
        block.authorised,
        block.attended,
        block.unauthorised,
        block.start.isoformat() if block.start else "",
        block.marks,
    ]
