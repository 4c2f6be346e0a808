"""The marks as the rules read them: compact, shared tuples, not one model object per mark.

A rule needs four things of a mark: the pupil, the date, the session and the code (MRK006 also
the minutes late of a late mark). A school year is ~570k marks but only ~20k distinct
(date, session, code) triples, so each pupil's marks are a sorted tuple of :class:`SessionMark`
instances shared between pupils (interned by :class:`MarkInterner`), keyed by pupil id: building
a pupil's marks is a dict lookup per mark, done in C.

The store hands marks over as *tokens* (``store.lean``: ``"2025-09-03AM/"``, ``"...L:12"`` for a
late mark with its minutes), one token list per pupil; the same tokens are the per-pupil
summary an incremental scan keeps (``store.summary``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import NamedTuple

from registerwatch.schema import Mark, Session

# The token of a mark: the ISO date (10 characters), the session (2) and the code, then
# ":<minutes>" when the mark records minutes late. Codes never contain ":" or ",".
DATE_END = 10
SESSION_END = 12
MINUTES_MARK = ":"


class SessionMark(NamedTuple):
    """One of a pupil's register entries: the pupil is the key it is filed under."""

    date: date
    session: Session
    code: str
    minutes_late: int | None = None


class PupilMark(NamedTuple):
    """A register entry with its pupil, for the rules that look across pupils per session."""

    pupil_id: str
    date: date
    session: Session
    code: str
    minutes_late: int | None = None


def mark_token(day: date, session: str, code: str, minutes_late: int | None = None) -> str:
    """The token of one mark (the store builds the same text in SQL)."""
    token = f"{day.isoformat()}{session}{code}"
    return token if minutes_late is None else f"{token}{MINUTES_MARK}{minutes_late}"


class MarkInterner(dict[str, SessionMark]):
    """Token -> its shared SessionMark, parsed on first sight only."""

    def __missing__(self, token: str) -> SessionMark:
        head, _, minutes = token.partition(MINUTES_MARK)
        mark = SessionMark(
            date.fromisoformat(head[:DATE_END]),
            Session(head[DATE_END:SESSION_END]),
            head[SESSION_END:],
            int(minutes) if minutes else None,
        )
        self[token] = mark
        return mark

    def decode(self, tokens: Iterable[str]) -> tuple[SessionMark, ...]:
        """A pupil's tokens, sorted by date and session (tokens sort that way as text: the
        date is ISO and "AM" < "PM"), as shared SessionMarks."""
        return tuple(map(self.__getitem__, sorted(tokens)))

    def decode_all(
        self, by_pupil: Mapping[str, Iterable[str]]
    ) -> dict[str, tuple[SessionMark, ...]]:
        return {pupil_id: self.decode(tokens) for pupil_id, tokens in by_pupil.items()}


def rows_from_marks(marks: Iterable[Mark]) -> dict[str, tuple[SessionMark, ...]]:
    """Mark objects (a test's, or a caller's with Marks in hand) grouped as the rules read them:
    per pupil, sorted by date and session, the later mark of a duplicated key winning."""
    interner = MarkInterner()
    tokens: dict[str, dict[tuple[date, Session], str]] = {}
    for mark in marks:
        session = Session(mark.session)
        tokens.setdefault(mark.pupil_id, {})[(mark.date, session)] = mark_token(
            mark.date, session.value, mark.code, mark.minutes_late
        )
    return {pid: interner.decode(by_key.values()) for pid, by_key in tokens.items()}


def with_pupil(pupil_id: str, marks: Sequence[SessionMark]) -> list[PupilMark]:
    return [PupilMark(pupil_id, *mark) for mark in marks]
