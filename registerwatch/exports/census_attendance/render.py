"""Render the school census attendance items for one school and one census term.

Structure (VERIFIED from code, Follett SchoolCensusExport):
``Pupil/Attendance/TermlyAttendance/{SessionsPossible, SessionsAuthorised, SessionsUnauthorised,
SessionDetails/SessionDetail/{AttendanceReason, AbsenceSessions}}``, and for the summer term also
``SummerHalfTerm2Attendance`` of the same shape. Follett drops the authorised and unauthorised
totals when it gives the detail by reason; this return keeps both (SI 2020/965: "the number of
sessions recorded in each of the ways specified", and the 2013 Regulations' totals).

Counts follow the one code table (``registerwatch.codes``): possible, authorised and unauthorised
sessions as DfE statistics count them; one SessionDetail per absence code (authorised or
unauthorised) with at least one session, in code-table order (census rule 2480: a reason is given
only with a count above zero).

Who is included:
- pupils on roll on at least one day of the term (each block only if on roll in its half);
- not boarders (census rule 2470; boarders have no attendance register, reg 10(1));
- aged ``age_window`` at 31 August before the school year (census rule 2470: "not required for
  pupils aged less than 4 or over 15"; reference conflict 4 notes a code comment saying "<5" and
  statistics using 5-15, hence the setting ``census_age_window``, default 4-15).

A school session a pupil on roll has no mark for refuses the return (IncompleteRegisterError)
unless ``allow_incomplete``, when such sessions are not counted at all (their code is unknown, so
they cannot be called possible). Pure: everything comes in through the arguments.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from lxml import etree

from registerwatch.codes import CODES_2024, session_statistics
from registerwatch.exports.base import RenderedReturn, ReturnRecordKey, sub, xml_bytes
from registerwatch.exports.census_attendance.terms import CensusTerm, Period
from registerwatch.exports.registers import (
    ExportRequestError,
    IncompleteRegisterError,
    RegisterData,
    ReturnDataError,
    age_on,
    invalid_mark_problems,
    normalise_nc_year,
    on_roll_between,
    pupil_data_problems,
    refuse_if,
    registered,
    unmarked_problems,
    unmarked_sessions,
    upn_text,
    utc_timestamp,
)
from registerwatch.schema import Mark, Pupil

KIND = "census-attendance"
SCHEMA_NAME = "census-attendance-1.xsd"
SCHEMA_VERSION = "1"
ROOT = "CensusAttendance"

# The codes a SessionDetail may carry: every 2024 absence code (authorised or unauthorised), in
# code-table order. Present, approved-activity and not-possible codes are not absence reasons.
ABSENCE_CODES: tuple[str, ...] = tuple(c.code for c in CODES_2024 if c.is_absence)

DEFAULT_AGE_WINDOW = (4, 15)
AGE_WINDOW_OPTION = "census_age_window"

CSV_HEADER = (
    "upn",
    "surname",
    "forename",
    "dob",
    "sex",
    "nc_year",
    "block",
    "period_start",
    "period_end",
    "sessions_possible",
    "sessions_authorised",
    "sessions_unauthorised",
    *(f"absence_{code}" for code in ABSENCE_CODES),
)


@dataclass(frozen=True)
class BlockCounts:
    period: Period  # clipped to the days counted
    possible: int
    authorised: int
    unauthorised: int
    by_reason: tuple[tuple[str, int], ...]  # absence code -> sessions (> 0), table order


def parse_age_window(value: object) -> tuple[int, int]:
    """``"4-15"`` (or a pair of ints) to (youngest, oldest), both inclusive."""
    if isinstance(value, tuple | list) and len(value) == 2:
        low, high = int(value[0]), int(value[1])
    else:
        text = str(value).strip()
        parts = text.split("-")
        if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
            raise ExportRequestError(
                f"{AGE_WINDOW_OPTION} {text!r} must be two ages like 4-15 (youngest-oldest, "
                "inclusive, at 31 August)"
            )
        low, high = int(parts[0]), int(parts[1])
    if low > high:
        raise ExportRequestError(f"{AGE_WINDOW_OPTION}: youngest age {low} is above oldest {high}")
    return low, high


def counted_periods(
    term: CensusTerm, as_of: date, *, allow_incomplete: bool, school_id: str
) -> tuple[Period, ...]:
    """The term's periods clipped to the day before ``as_of`` (as-of is "today, before
    registration"); refuses a term not yet over unless ``allow_incomplete``."""
    last_day = as_of - timedelta(days=1)
    if term.start > last_day:
        raise ExportRequestError(
            f"school {school_id!r}: census term {term.label} starts {term.start.isoformat()}, "
            f"after the last day with registers ({last_day.isoformat()}); choose an earlier "
            "--term or a later --as-of"
        )
    if term.end > last_day and not allow_incomplete:
        raise ExportRequestError(
            f"school {school_id!r}: census term {term.label} runs to {term.end.isoformat()}, "
            f"after the last day with registers ({last_day.isoformat()}); a census return counts "
            f"a whole term: choose a later --as-of, or pass --allow-incomplete to count up to "
            f"{last_day.isoformat()}"
        )
    return tuple(
        Period(p.element, p.start, min(p.end, last_day))
        for p in term.periods
        if p.start <= last_day
    )


def count_block(period: Period, marks: list[Mark]) -> BlockCounts:
    codes = Counter(m.code for m in marks)
    stats = session_statistics(codes)
    reasons = tuple((code, codes[code]) for code in ABSENCE_CODES if codes[code] > 0)
    return BlockCounts(
        period=period,
        possible=stats.possible,
        authorised=stats.authorised,
        unauthorised=stats.unauthorised,
        by_reason=reasons,
    )


def render(
    data: RegisterData,
    term: CensusTerm,
    *,
    as_of: date,
    generated_at: datetime,
    allow_incomplete: bool = False,
    age_window: tuple[int, int] = DEFAULT_AGE_WINDOW,
) -> RenderedReturn:
    school = data.school
    periods = counted_periods(term, as_of, allow_incomplete=allow_incomplete, school_id=school.id)
    first, last = periods[0].start, periods[-1].end
    youngest, oldest = age_window

    candidates = [p for p in data.pupils if registered(p) and on_roll_between(p, first, last)]
    # The age window needs a date of birth; every other item is checked only for the pupils
    # the return includes.
    problems = [
        f"pupil {p.mis_id}: has no date of birth, so the census age window cannot be applied"
        for p in candidates
        if p.dob is None
    ]
    pupils = [
        p
        for p in candidates
        if p.dob is not None and youngest <= age_on(p.dob, term.age_date) <= oldest
    ]
    unmarked: list[str] = []
    for pupil in pupils:
        problems += pupil_data_problems(pupil, upn_required=True)
        problems += invalid_mark_problems(pupil, data.marks_of(pupil, first, last))
        unmarked += unmarked_problems(
            pupil, unmarked_sessions(data, pupil, first, last), itemise=False
        )
    refuse_if(
        problems,
        ReturnDataError,
        f"school {school.id!r}: the census attendance return for {term.label} cannot be "
        "made from what the store holds; correct these in the MIS and sync again",
    )
    if not allow_incomplete:
        refuse_if(
            unmarked,
            IncompleteRegisterError,
            f"school {school.id!r}: {len(unmarked)} pupil(s) on roll have school sessions "
            f"without a mark in census term {term.label}; complete the registers in the "
            "MIS and sync, or pass --allow-incomplete to leave those sessions uncounted",
        )

    root = etree.Element(ROOT, version=SCHEMA_VERSION)
    _header(root, data, term, periods, generated_at, age_window)
    pupils_element = sub(root, "Pupils")
    rows: list[list[object]] = []
    keys: list[ReturnRecordKey] = []
    for pupil in pupils:
        blocks = [
            count_block(period, data.marks_of(pupil, period.start, period.end))
            for period in periods
            if on_roll_between(pupil, period.start, period.end)
        ]
        if not blocks:
            continue
        _pupil(pupils_element, pupil, blocks)
        rows += [_row(pupil, block) for block in blocks]
        keys.append(ReturnRecordKey(pupil.id, term.label))

    return RenderedReturn(
        kind=KIND,
        school_id=school.id,
        schema_name=SCHEMA_NAME,
        xml=xml_bytes(root),
        csv_header=CSV_HEADER,
        csv_rows=rows,
        file_stem=f"{KIND}_{school.id}_{term.label}",
        records=keys,
        period=term.label,
    )


def _header(
    root: etree._Element,
    data: RegisterData,
    term: CensusTerm,
    periods: tuple[Period, ...],
    generated_at: datetime,
    age_window: tuple[int, int],
) -> None:
    school = data.school
    header = sub(root, "Header")
    sub(header, "Return", KIND)
    sub(header, "GeneratedAt", utc_timestamp(generated_at))
    school_element = sub(header, "School")
    sub(school_element, "URN", school.urn)
    sub(school_element, "LACode", school.la_code)
    sub(school_element, "LAEstab", school.laestab)
    sub(school_element, "SchoolName", school.name)
    census = sub(header, "Term")
    sub(census, "Season", term.season.value)
    sub(census, "Year", term.year)
    sub(census, "TermStart", term.start)
    sub(census, "TermEnd", term.end)
    for period in periods:
        block = sub(census, "CountedPeriod")
        sub(block, "Block", period.element)
        sub(block, "Start", period.start)
        sub(block, "End", period.end)
    ages = sub(header, "AgeWindow")
    sub(ages, "AgeAt", term.age_date)
    sub(ages, "YoungestAge", age_window[0])
    sub(ages, "OldestAge", age_window[1])


def _pupil(parent: etree._Element, pupil: Pupil, blocks: list[BlockCounts]) -> None:
    element = sub(parent, "Pupil")
    sub(element, "UPN", upn_text(pupil))
    sub(element, "Surname", pupil.legal_surname)
    sub(element, "Forename", pupil.legal_forename)
    sub(element, "DOB", pupil.dob)
    if pupil.sex is not None:
        sub(element, "Sex", pupil.sex)
    nc_year = normalise_nc_year(pupil.nc_year)
    if nc_year is not None:
        sub(element, "NCyearActual", nc_year)
    attendance = sub(element, "Attendance")
    for block in blocks:
        counts = sub(attendance, block.period.element)
        sub(counts, "SessionsPossible", block.possible)
        sub(counts, "SessionsAuthorised", block.authorised)
        sub(counts, "SessionsUnauthorised", block.unauthorised)
        if block.by_reason:
            details = sub(counts, "SessionDetails")
            for code, sessions in block.by_reason:
                detail = sub(details, "SessionDetail")
                sub(detail, "AttendanceReason", code)
                sub(detail, "AbsenceSessions", sessions)


def _row(pupil: Pupil, block: BlockCounts) -> list[object]:
    reasons = dict(block.by_reason)
    return [
        upn_text(pupil),
        pupil.legal_surname,
        pupil.legal_forename,
        pupil.dob.isoformat() if pupil.dob else "",
        pupil.sex or "",
        normalise_nc_year(pupil.nc_year) or "",
        block.period.element,
        block.period.start.isoformat(),
        block.period.end.isoformat(),
        block.possible,
        block.authorised,
        block.unauthorised,
        *(reasons.get(code, 0) for code in ABSENCE_CODES),
    ]
