"""Render the DfE daily attendance return for one school and one school day.

What is collected (VERIFIED from the gov.uk guidance "Share
your daily school attendance data", 2023 and 2024 versions): forename, surname, date of birth,
UPN, sex, child looked after, SEN support, EHC plan, free school meals, NC year group, school URN,
LA code, admission date and actual leaving date. **MIS comments fields are not collected**, so a
mark's ``comment`` is never read here.

MEMORY/INFERRED: the per-session payload. The guidance names the pupil items but the DfE's
mandatory data-sharing guide (the CBDS identifiers) was not retrievable, so each record's session
part (date, AM/PM, the 2024 national code, minutes late) and this file's layout are ours, checked
by ``schemas/dfe-daily-1.xsd``. Items the guidance lists that the store does not hold (ethnicity,
previously looked after, expected leaving date, child in need, child protection plan) are left
out, not guessed.

One ``<Record>`` per pupil on roll per session the school was open that day (planned closures
remove a session; an unexpected closure, Y4, does not), ordered by pupil MIS id then session.
A session with no mark refuses the return (IncompleteRegisterError) unless ``allow_incomplete``,
when the record carries ``<Unmarked/>`` instead of a code and the CSV says ``unmarked``.

Pure: everything comes in through the arguments, the clock included.
"""

from __future__ import annotations

from datetime import date, datetime

from lxml import etree

from registerwatch.exports.base import (
    RenderedReturn,
    ReturnRecordKey,
    sub,
    xml_bytes,
    yes_no,
)
from registerwatch.exports.registers import (
    ExportRequestError,
    IncompleteRegisterError,
    RegisterData,
    ReturnDataError,
    invalid_mark_problems,
    normalise_nc_year,
    pupil_data_problems,
    refuse_if,
    registered,
    unmarked_problems,
    upn_text,
    utc_timestamp,
)
from registerwatch.schema import Mark, Pupil, Session

KIND = "dfe-daily"
SCHEMA_NAME = "dfe-daily-1.xsd"
SCHEMA_VERSION = "1"
ROOT = "DailyAttendance"

CSV_HEADER = (
    "pupil_ref",
    "upn",
    "forename",
    "surname",
    "dob",
    "sex",
    "nc_year",
    "urn",
    "la_code",
    "admission_date",
    "leaving_date",
    "sen_support",
    "ehc_plan",
    "fsm",
    "looked_after",
    "date",
    "session",
    "status",
    "attendance_code",
    "minutes_late",
)
MARKED, UNMARKED = "marked", "unmarked"


def not_a_school_day_reason(data: RegisterData, day: date) -> str:
    calendar = data.calendar
    if not calendar.in_term(day):
        return f"is outside the configured terms ({calendar.first_day} to {calendar.last_day})"
    if day.weekday() >= 5:
        return f"is a {day.strftime('%A')}"
    if day in calendar.bank_holidays:
        return "is an England bank holiday"
    return "is closed for both sessions (a planned closure)"


def render(
    data: RegisterData, day: date, generated_at: datetime, *, allow_incomplete: bool = False
) -> RenderedReturn:
    """The return for ``day``; raises ExportRequestError on a non-school day,
    ReturnDataError for marks or pupils the return cannot carry, and IncompleteRegisterError
    for unmarked sessions unless ``allow_incomplete``."""
    school = data.school
    sessions = data.calendar.sessions_on(day)
    if not sessions:
        raise ExportRequestError(
            f"school {school.id!r}: {day.isoformat()} {not_a_school_day_reason(data, day)}, "
            "not a school day: the DfE daily return covers school days only; choose another "
            "--date"
        )
    pupils = [p for p in data.pupils if p.on_roll(day) and registered(p)]

    problems: list[str] = []
    for pupil in pupils:
        problems += pupil_data_problems(pupil, upn_required=False)
        problems += invalid_mark_problems(pupil, data.marks_of(pupil, day, day))
    refuse_if(
        problems,
        ReturnDataError,
        f"school {school.id!r}: the DfE daily return for {day.isoformat()} cannot be made "
        "from what the store holds; correct these in the MIS and sync again",
    )

    unmarked = [(p, s) for p in pupils for s in sessions if data.mark(p, day, s) is None]
    if not allow_incomplete:
        refuse_if(
            [line for p, s in unmarked for line in unmarked_problems(p, [(day, s)], itemise=True)],
            IncompleteRegisterError,
            f"school {school.id!r}: {len(unmarked)} session(s) on {day.isoformat()} have "
            "pupils on roll without a mark; complete the registers in the MIS and sync, "
            "or pass --allow-incomplete to send them as unmarked",
        )

    root = etree.Element(ROOT, version=SCHEMA_VERSION)
    header = sub(root, "Header")
    sub(header, "Return", KIND)
    sub(header, "GeneratedAt", utc_timestamp(generated_at))
    school_element = sub(header, "School")
    sub(school_element, "URN", school.urn)
    sub(school_element, "LACode", school.la_code)
    sub(school_element, "LAEstab", school.laestab)
    sub(school_element, "SchoolName", school.name)
    sub(header, "AttendanceDate", day)
    open_sessions = sub(header, "Sessions")
    for session in sessions:
        sub(open_sessions, "Session", session.value)
    sub(header, "UnmarkedSessions", len(unmarked))

    records = sub(root, "Records")
    rows: list[list[object]] = []
    keys: list[ReturnRecordKey] = []
    for pupil in pupils:
        for session in sessions:
            mark = data.mark(pupil, day, session)
            _record(records, pupil, session, mark, school.urn, school.la_code)
            rows.append(_row(pupil, day, session, mark, school.urn, school.la_code))
            keys.append(ReturnRecordKey(pupil.id, f"{day.isoformat()}/{session.value}"))

    return RenderedReturn(
        kind=KIND,
        school_id=school.id,
        schema_name=SCHEMA_NAME,
        xml=xml_bytes(root),
        csv_header=CSV_HEADER,
        csv_rows=rows,
        file_stem=f"{KIND}_{school.id}_{day.isoformat()}",
        records=keys,
        period=day.isoformat(),
    )


def _pupil_items(pupil: Pupil, urn: str, la_code: str) -> list[tuple[str, object | None]]:
    """The DfE's pupil data items in file order; None leaves an optional element out."""
    return [
        # The MIS's own id for the record: unique where UPNs are not (a duplicated UPN is a
        # UPN002 finding to fix, and must not stop the day's return).
        ("PupilRef", pupil.mis_id),
        ("UPN", upn_text(pupil)),
        ("Forename", pupil.legal_forename),
        ("Surname", pupil.legal_surname),
        ("DOB", pupil.dob),
        ("Sex", pupil.sex),
        ("NCyearActual", normalise_nc_year(pupil.nc_year)),
        ("URN", urn),
        ("LACode", la_code),
        # SI 2024/209 defines "date of admission" as the day the name is added to the admission
        # register; the store holds the reg 8 starting day. INFERRED: the MIS admission date is
        # that starting day (what every adapter maps), so it is sent as the admission date.
        ("AdmissionDate", pupil.starting_day),
        ("LeavingDate", pupil.leaving_date),
        ("SENSupport", yes_no(pupil.sen_support)),
        ("EHCPlan", yes_no(pupil.ehcp)),
        ("FSM", yes_no(pupil.fsm)),
        ("LookedAfter", yes_no(pupil.looked_after)),
    ]


def _record(
    parent: etree._Element,
    pupil: Pupil,
    session: Session,
    mark: Mark | None,
    urn: str,
    la_code: str,
) -> None:
    record = sub(parent, "Record")
    for tag, value in _pupil_items(pupil, urn, la_code):
        if value is not None:
            sub(record, tag, value)
    sub(record, "Session", session.value)
    if mark is None:
        sub(record, "Unmarked")
        return
    sub(record, "AttendanceCode", mark.code)
    if mark.minutes_late is not None:
        sub(record, "MinutesLate", mark.minutes_late)


def _row(
    pupil: Pupil, day: date, session: Session, mark: Mark | None, urn: str, la_code: str
) -> list[object]:
    items = [value for _, value in _pupil_items(pupil, urn, la_code)]
    cells = ["" if v is None else v.isoformat() if isinstance(v, date) else v for v in items]
    return [
        *cells,
        day.isoformat(),
        session.value,
        UNMARKED if mark is None else MARKED,
        "" if mark is None else mark.code,
        "" if mark is None or mark.minutes_late is None else mark.minutes_late,
    ]
