"""Reading a CTF pupil's attendance: the yearly session counts and the marks string."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

from lxml import etree

from registerwatch.adapters.base import Quarantined
from registerwatch.adapters.ctf.document import (
    ATTEND_SESSIONS_ELEMENTS,
    ATTENDANCE_START_ELEMENTS,
    CtfDocument,
    CtfYearData,
    child_text,
    children,
)
from registerwatch.adapters.ctf.marks import MisalignedMarksError, decode_attendance_marks
from registerwatch.schema import Mark


def _count(
    year: etree._Element, name: str, year_index: int, document: CtfDocument, record_ref: str
) -> int | None:
    value = child_text(year, name)
    if value is None:
        return None
    if value.isdigit():
        return int(value)
    document.marks.quarantined.append(
        Quarantined(
            "marks",
            record_ref,
            name,
            f"{value!r} is not a whole number of sessions (YearData {year_index})",
            value,
        )
    )
    return None


def read_attendance(
    attendance: etree._Element | None,
    document: CtfDocument,
    *,
    pupil_id: str,
    record_ref: str,
    target_laestab: str | None,
) -> None:
    for year_index, year in enumerate(children(attendance, "YearData"), start=1):
        lea, estab = child_text(year, "LEA"), child_text(year, "Estab")
        # INFERRED: a YearData block names the school whose register it summarises; one that
        # names another school (attendance carried from a previous school) is not this
        # school's register. A block that names no school is taken as the target's.
        ours = target_laestab is None or not (lea and estab) or f"{lea}{estab}" == target_laestab
        year_ref = f"{record_ref}/YearData[{year_index}]"
        counted = (year_index, document, record_ref)
        document.attendance_years.append(
            CtfYearData(
                pupil_id=pupil_id,
                record_ref=year_ref,
                year=child_text(year, "Year"),
                lea=lea,
                estab=estab,
                school_name=child_text(year, "SchoolName"),
                sessions_possible=_count(year, "SessionsPossible", *counted),
                sessions_authorised=_count(year, "SessionsAuthorised", *counted),
                sessions_attended=_count(year, "SessionsAttended", *counted),
                sessions_unauthorised=_count(year, "SessionsUnauthorised", *counted),
                marks_imported=ours,
            )
        )
        if not ours:
            continue
        for sessions in _attend_sessions(year):
            _read_marks(
                sessions,
                year_index,
                document,
                pupil_id=pupil_id,
                record_ref=record_ref,
                year_ref=year_ref,
            )


def _attend_sessions(year: etree._Element) -> Iterator[etree._Element]:
    for name in ATTEND_SESSIONS_ELEMENTS:
        yield from year.iterfind(name)


def _read_marks(
    sessions: etree._Element,
    year_index: int,
    document: CtfDocument,
    *,
    pupil_id: str,
    record_ref: str,
    year_ref: str,
) -> None:
    marks_element = sessions.find("AttendanceMarks")
    # Raw text, not child_text(): the decoder decides what surrounding whitespace means.
    marks = marks_element.text if marks_element is not None and marks_element.text else ""
    if not marks.strip():
        return
    start_text = child_text(sessions, *ATTENDANCE_START_ELEMENTS)
    start: date | None = None
    if start_text is not None:
        try:
            start = date.fromisoformat(start_text[:10])
        except ValueError:
            start = None
    if start is None:
        document.marks.quarantined.append(
            Quarantined(
                "marks",
                record_ref,
                ATTENDANCE_START_ELEMENTS[0],
                f"YearData {year_index}: AttendanceMarks without a valid start date (yyyy-mm-dd), "
                "so no mark can be dated",
                start_text or "",
            )
        )
        return
    try:
        decoded = decode_attendance_marks(start, marks)
    except MisalignedMarksError as error:
        document.marks.quarantined.append(
            Quarantined(
                "marks",
                record_ref,
                "AttendanceMarks",
                f"YearData {year_index}: AttendanceMarks {error}; none of them were imported",
            )
        )
        return
    for bad in decoded.undecodable:
        document.marks.quarantined.append(
            Quarantined(
                "marks",
                record_ref,
                f"AttendanceMarks[{bad.offset}]",
                f"{bad.reason} for {bad.date.isoformat()} {bad.session.value} "
                f"(YearData {year_index})",
                bad.character,
            )
        )
    for entry in decoded.sessions:
        document.marks.records.append(
            Mark(
                pupil_id=pupil_id,
                date=entry.date,
                session=entry.session,
                code=entry.code,
                vendor_code=entry.vendor_code,
                source_ref=f"{year_ref}/AttendanceMarks[{entry.offset}]",
            )
        )
