"""Decoding a CTF ``<AttendanceMarks>`` string into per-session codes.

The string holds **two characters per calendar date**, AM then PM, starting at
``<AttendanceStartDate>`` and running day by day (weekends and holidays included). This is how
Follett Aspen's ``DfEAttendance.getAttendanceMarks()`` builds it
(VERIFIED from code); the CTF 25 specification itself was not available.

One character per session cannot hold the multi-character 2024 codes (C1, C2, J1, Y1-Y7), so MIS
vendors write a single internal character for them. That table is
``codes.CTF_SINGLE_CHARACTER_CODES`` (shared with the CTF return, which encodes with it).

This module is pure (no XML, no schema): it turns (start date, string) into decoded sessions and
undecodable ones, so the parser and the property tests share exactly one decoder.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from registerwatch.adapters.base import normalise_code
from registerwatch.codes import CTF_NOT_IN_SESSION, CTF_SINGLE_CHARACTER_CODES
from registerwatch.errors import InvalidRecord
from registerwatch.schema import Session

# The vendor character table and the not-in-session character are shared with the CTF return.
VENDOR_SINGLE_CHARACTER_CODES = CTF_SINGLE_CHARACTER_CODES
NOT_IN_SESSION = CTF_NOT_IN_SESSION

SESSIONS_PER_DAY = 2
_SESSION_BY_POSITION = (Session.AM, Session.PM)


@dataclass(frozen=True, slots=True)
class DecodedSession:
    """One session's national code; ``offset`` is the character's 0-based index in the string."""

    offset: int
    date: date
    session: Session
    code: str
    vendor_code: str


@dataclass(frozen=True, slots=True)
class UndecodableSession:
    """A character that is neither a national code nor in the vendor table."""

    offset: int
    date: date
    session: Session
    character: str
    reason: str


@dataclass(frozen=True, slots=True)
class DecodedMarks:
    sessions: list[DecodedSession]
    undecodable: list[UndecodableSession]
    not_in_session: int  # characters that were "#" (no mark made)


class MisalignedMarksError(ValueError):
    """The string cannot be split into whole days, so no character's date can be trusted."""


def session_at(start: date, offset: int) -> tuple[date, Session]:
    """The date and session that character ``offset`` of a marks string stands for."""
    day, position = divmod(offset, SESSIONS_PER_DAY)
    return start + timedelta(days=day), _SESSION_BY_POSITION[position]


def decode_attendance_marks(
    start: date, marks: str, *, aliases: Mapping[str, str] = VENDOR_SINGLE_CHARACTER_CODES
) -> DecodedMarks:
    """Decode an AttendanceMarks string that begins on ``start``.

    Leading and trailing whitespace is taken as formatting (pretty-printed XML) and removed.
    Raises MisalignedMarksError when what is left has an odd length: a writer that put a
    two-character code inline would shift every later date, and a register entry on the wrong
    date is worse than none.
    """
    text = marks.strip()
    if len(text) % SESSIONS_PER_DAY:
        raise MisalignedMarksError(
            f"has {len(text)} characters, an odd number: two characters (AM, PM) per date are "
            "expected, so the dates of these marks cannot be trusted"
        )
    sessions: list[DecodedSession] = []
    undecodable: list[UndecodableSession] = []
    skipped = 0
    for offset, character in enumerate(text):
        day, session = session_at(start, offset)
        if character == NOT_IN_SESSION:
            skipped += 1
            continue
        try:
            # normalise_code applies the alias table, then checks the national (2024 and legacy
            # 2006) table; it keeps case, so a lower-case letter is not silently read as a code.
            code = normalise_code(
                character,
                aliases,
                resource="marks",
                record_ref="",
                field=f"AttendanceMarks[{offset}]",
            )
        except InvalidRecord as error:
            undecodable.append(
                UndecodableSession(
                    offset=offset,
                    date=day,
                    session=session,
                    character=character,
                    reason=error.reason,
                )
            )
            continue
        sessions.append(
            DecodedSession(
                offset=offset, date=day, session=session, code=code, vendor_code=character
            )
        )
    return DecodedMarks(sessions=sessions, undecodable=undecodable, not_in_session=skipped)
