"""What the three marks-based returns share: the register as a return sees it, and its checks.

``dfe-daily``, ``census-attendance`` and ``ctf`` are all made from the same three things: the
school's identity (from the config), its calendar (``SchoolCalendar`` from the config, as sync
uses it) and the pupils and marks in the store. ``load_register`` reads them once; the checks here
are the ones every such return makes before it renders anything:

- every pupil on roll has a mark for every school session counted (``unmarked_sessions``);
- every mark is a 2024 national code valid on its date (``invalid_marks``): the XSDs enumerate
  the 2024 table, and a legacy 2006 code after 18 August 2024 is itself a breach (rule MRK002);
- every pupil has the data items the return needs (``pupil_data_problems``).

Problems are reported by pupil MIS id, date and session, never by name, UPN or date of birth,
because the messages reach the terminal and nightly job logs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from registerwatch.calendar import SchoolCalendar, calendar_for
from registerwatch.codes import CODES_2024, valid_on
from registerwatch.errors import ExportValidationError, RegisterwatchError
from registerwatch.schema import Mark, Pupil, Session
from registerwatch.school_age import date_attaining_age
from registerwatch.upn import ALPHABET, normalise_upn

if TYPE_CHECKING:
    from registerwatch.config import SchoolSettings
    from registerwatch.exports.registry import ExportRequest

SessionKey = tuple[str, date, Session]  # (pupil id, date, session)

# The 2024 national codes (SI 2024/208 reg 10; codes.CODES_2024): the only codes the returns'
# XSDs accept, in table order (the order SessionDetail elements are written in).
CODES_2024_ORDER: tuple[str, ...] = tuple(c.code for c in CODES_2024)
_CODES_2024 = frozenset(CODES_2024_ORDER)

# The UPN's shape (VERIFIED: python-stdnum, MTC, dfeqa): a check letter from the 23-letter alphabet,
# 11 digits (LA, establishment, year, serial), then a digit or a letter (temporary UPN). The check
# letter itself is rule UPN001's business, not the return's.
UPN_FORMAT = re.compile(rf"[{ALPHABET}][0-9]{{11}}[0-9{ALPHABET}]")

# MEMORY/INFERRED (CBDS "NC year actual" code set, not in the reference): nursery 1 and 2,
# reception, years 1-14, and X for a pupil not following the National Curriculum.
NC_YEARS: tuple[str, ...] = ("N1", "N2", "R", *(str(n) for n in range(1, 15)), "X")


class ExportRequestError(RegisterwatchError):
    """The return cannot be made for what was asked (a day that is not a school day, a term
    that is not over): change --date, --term or --as-of."""


class IncompleteRegisterError(ExportValidationError):
    """Pupils on roll have no mark for sessions the return covers: take or complete those
    registers in the MIS and sync again, or pass --allow-incomplete to send them as unmarked."""


class ReturnDataError(ExportValidationError):
    """The store holds marks or pupil details the return cannot carry (a code that is not a
    2024 national code on its date, a missing or malformed UPN): correct them in the MIS and
    sync again. Nothing was written."""


@dataclass(frozen=True)
class SchoolIdentity:
    """The school as the returns name it (from the config, which sync also trusts)."""

    id: str
    urn: str
    laestab: str
    la_code: str
    name: str

    @property
    def estab(self) -> str:
        """The 4-digit DfE establishment number: LAESTAB without its 3-digit LA code."""
        return self.laestab[3:]

    @classmethod
    def from_settings(cls, school: SchoolSettings) -> SchoolIdentity:
        return cls(
            id=school.id,
            urn=school.urn,
            laestab=school.laestab,
            la_code=school.la_code,
            name=school.name,
        )


@dataclass(frozen=True)
class RegisterData:
    """Everything a marks-based return is rendered from; render functions read nothing else."""

    school: SchoolIdentity
    calendar: SchoolCalendar
    pupils: tuple[Pupil, ...]  # sorted by MIS id
    marks: Mapping[SessionKey, Mark]
    by_pupil: Mapping[str, tuple[Mark, ...]]  # pupil id -> marks by date, then session

    def mark(self, pupil: Pupil, day: date, session: Session) -> Mark | None:
        return self.marks.get((pupil.id, day, session))

    def marks_of(self, pupil: Pupil, start: date, end: date) -> list[Mark]:
        """The pupil's marks from ``start`` to ``end`` inclusive on days they were on roll,
        ordered by date then session (a mark for a day off roll belongs to no return)."""
        return [
            m
            for m in self.by_pupil.get(pupil.id, ())
            if start <= m.date <= end and pupil.on_roll(m.date)
        ]


_SESSION_RANK = {Session.AM: 0, Session.PM: 1}


def pupil_sort_key(pupil: Pupil) -> tuple[str, str]:
    return (pupil.mis_id, pupil.id)


def make_register(
    school: SchoolIdentity, calendar: SchoolCalendar, pupils: Iterable[Pupil], marks: Iterable[Mark]
) -> RegisterData:
    """A RegisterData from plain records (what ``load_register`` and the tests both use)."""
    index: dict[SessionKey, Mark] = {}
    for mark in marks:
        index[(mark.pupil_id, mark.date, Session(mark.session))] = mark
    by_pupil: dict[str, list[Mark]] = {}
    for (pupil_id, _, _), mark in sorted(
        index.items(), key=lambda item: (item[0][0], item[0][1], _SESSION_RANK[item[0][2]])
    ):
        by_pupil.setdefault(pupil_id, []).append(mark)
    return RegisterData(
        school=school,
        calendar=calendar,
        pupils=tuple(sorted(pupils, key=pupil_sort_key)),
        marks=index,
        by_pupil={k: tuple(v) for k, v in by_pupil.items()},
    )


def school_calendar(request: ExportRequest) -> SchoolCalendar:
    """The school's calendar from the config: the one sync and the rules use."""
    return calendar_for(request.school)


def load_register(
    request: ExportRequest, start: date, end: date, calendar: SchoolCalendar | None = None
) -> RegisterData:
    """The school's pupils, and its live marks from ``start`` to ``end`` inclusive."""
    school = request.school
    return make_register(
        SchoolIdentity.from_settings(school),
        calendar or school_calendar(request),
        request.store.pupils(school.id),
        request.store.marks(school.id, start, end),
    )


# -- checks --------------------------------------------------------------------------------------


def registered(pupil: Pupil) -> bool:
    """Does the school keep an attendance register for this pupil?

    SI 2024/208 reg 10(1) (VERIFIED): attendance is recorded for each registered pupil "who is
    not a boarder", so boarders have no marks and are left out of every marks-based return.
    """
    return not pupil.boarder


def on_roll_between(pupil: Pupil, start: date, end: date) -> bool:
    """Was the pupil on roll on at least one day from ``start`` to ``end`` inclusive?"""
    if pupil.starting_day is not None and pupil.starting_day > end:
        return False
    return not (pupil.leaving_date is not None and pupil.leaving_date < start)


def expected_sessions(
    data: RegisterData, pupil: Pupil, start: date, end: date
) -> list[tuple[date, Session]]:
    """School sessions from ``start`` to ``end`` on which the pupil was on roll (and so must
    have a mark)."""
    return [
        (day, session)
        for day, session in data.calendar.school_sessions(start, end)
        if pupil.on_roll(day)
    ]


def unmarked_sessions(
    data: RegisterData, pupil: Pupil, start: date, end: date
) -> list[tuple[date, Session]]:
    return [
        (day, session)
        for day, session in expected_sessions(data, pupil, start, end)
        if data.mark(pupil, day, session) is None
    ]


def invalid_marks(marks: Iterable[Mark]) -> list[Mark]:
    """Marks a 2024-code return cannot carry: a code outside the 2024 table (a legacy 2006 code
    such as H, which stopped being valid on 19 August 2024), or a 2024 code on a
    date before it was valid (C1 in July 2024). Codes common to both tables (/, I, ...) are fine
    on either side of the change."""
    return [m for m in marks if m.code not in _CODES_2024 or not valid_on(m.code, m.date)]


def describe_session(day: date, session: Session) -> str:
    return f"{day.isoformat()} {Session(session).value}"


def unmarked_problems(
    pupil: Pupil, sessions: Sequence[tuple[date, Session]], *, itemise: bool
) -> list[str]:
    """Lines naming a pupil's unmarked sessions: each one, or (over a term) a summary."""
    if not sessions:
        return []
    if itemise:
        return [f"pupil {pupil.mis_id}: {describe_session(*s)} has no mark" for s in sessions]
    first, last = sessions[0], sessions[-1]
    span = (
        describe_session(*first)
        if len(sessions) == 1
        else f"{describe_session(*first)} to {describe_session(*last)}"
    )
    plural = "s" if len(sessions) != 1 else ""
    return [
        (f"pupil {pupil.mis_id}: {len(sessions)} school session{plural} without a mark ({span})")
    ]


def invalid_mark_problems(pupil: Pupil, marks: Iterable[Mark]) -> list[str]:
    # The code is named: a national code says nothing about who the pupil is.
    return [
        f"pupil {pupil.mis_id}: {describe_session(m.date, m.session)} is marked "
        f"{m.code!r}, which is not a 2024 national code on that date (SI 2024/208 reg 10)"
        for m in invalid_marks(marks)
    ]


def pupil_data_problems(pupil: Pupil, *, upn_required: bool) -> list[str]:
    """What the pupil lacks for a return: one line per item, naming the item, never its value."""
    problems: list[str] = []
    where = f"pupil {pupil.mis_id}"
    if pupil.upn is None or not pupil.upn.strip():
        if upn_required:
            problems.append(
                f"{where}: has no UPN (census rule 1500); give the pupil a UPN "
                "(a temporary one if none has been issued) in the MIS"
            )
    elif not UPN_FORMAT.fullmatch(normalise_upn(pupil.upn)):
        problems.append(
            f"{where}: UPN is not 13 characters in the DfE form (a check letter, "
            "11 digits, then a digit or letter; census rules 1510-1550)"
        )
    if not (pupil.legal_forename or "").strip():
        problems.append(f"{where}: has no legal forename")
    if not (pupil.legal_surname or "").strip():
        problems.append(f"{where}: has no legal surname")
    if pupil.dob is None:
        problems.append(f"{where}: has no date of birth")
    if pupil.nc_year is not None and normalise_nc_year(pupil.nc_year) is None:
        problems.append(f"{where}: NC year is not one of {', '.join(NC_YEARS)}")
    return problems


def normalise_nc_year(value: str | None) -> str | None:
    """The CBDS NC year code for an MIS value ("07" -> "7", "r" -> "R"); None if unrecognised."""
    if value is None:
        return None
    text = value.strip().upper()
    if text.isdigit():
        text = str(int(text))
    return text if text in NC_YEARS else None


def upn_text(pupil: Pupil) -> str | None:
    return normalise_upn(pupil.upn) if pupil.upn and pupil.upn.strip() else None


def age_on(dob: date, day: date) -> int:
    """Whole years completed on ``day`` (29 February birthdays as ``school_age`` counts them)."""
    years = day.year - dob.year
    return years - 1 if date_attaining_age(dob, years) > day else years


def utc_timestamp(generated_at: datetime) -> str:
    """``generated_at`` as an ISO-8601 UTC instant to the second (the returns' GeneratedAt)."""
    if generated_at.tzinfo is None or generated_at.utcoffset() is None:
        raise ExportRequestError(
            "generated_at must be timezone-aware (the clock is passed in; "
            "rendering never reads 'now')"
        )
    return generated_at.astimezone(UTC).isoformat(timespec="seconds")


def refuse_if(problems: Sequence[str], error: type[ExportValidationError], message: str) -> None:
    if problems:
        raise error(message, errors=list(problems))
