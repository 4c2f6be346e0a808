"""The marks as the rules read them: compact, shared tuples, not one model object per mark.

A rule needs four things of a mark: the pupil, the date, the session and the code (MRK006 also
the minutes late of a late mark). A school year is ~570k marks but only ~20k distinct
(date, session, code) triples, so each pupil's marks are a sorted tuple of :class:`SessionMark`
instances shared between pupils (interned by :class:`MarkInterner`), keyed by pupil id: building
a pupil's marks is a dict lookup per mark, done in C.

The store hands marks over as *tokens* (``store.lean``: ``"2025-09-03AM/"``, ``"...L:12"`` for a
late mark with its minutes), one token list per pupil; the same tokens are the per-pupil
summary an incremental scan keeps (``store.summary``). :class:`LazyMarks` keeps them as the
store gave them and decodes a pupil's marks only when a rule asks: a nightly fold asks only for
the marks after its folded point (``LazyMarks.after``), so it decodes a month or two, not the
year.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date
from operator import itemgetter
from typing import NamedTuple

from registerwatch.schema import Mark, Session

# The token of a mark: the ISO date (10 characters), the session (2) and the code, then
# ":<minutes>" when the mark records minutes late. Codes never contain ":" or ",".
DATE_END = 10
SESSION_END = 12
MINUTES_MARK = ":"
# Between tokens, and between the months of a pupil's summary text: the store joins with the same
# (``store.lean.TOKEN_SEPARATOR``, ``store.summary.MONTH_SEPARATOR``). Neither is in any
# attendance code, and a month's text starts with its "YYYY-MM" (PERIOD_END).
TOKEN_SEPARATOR = ","
MONTH_SEPARATOR = ";"
PERIOD_END = 7


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


_session_of = itemgetter(0, 1)  # SessionMark -> (date, session)

# What the store gives per pupil: the text of its summary months (tokens joined with
# TOKEN_SEPARATOR, months with MONTH_SEPARATOR, in any order, each month once) or a list of
# tokens (unsorted).
RawMarks = str | list[str]


class LazyMarks(Mapping[str, tuple[SessionMark, ...]]):
    """Each pupil's marks (sorted, shared SessionMarks), decoded from the store's tokens on first
    ask and kept. ``after`` answers the marks after a session from the months from that
    session's month on, without decoding the rest of the year."""

    def __init__(self, raw: Mapping[str, RawMarks], interner: MarkInterner | None = None) -> None:
        self._raw = {pid: value for pid, value in raw.items() if value}
        self._interner = interner if interner is not None else MarkInterner()
        self._decoded: dict[str, tuple[SessionMark, ...]] = {}
        # pupil -> (the first month decoded, the marks from that month on)
        self._tails: dict[str, tuple[str, tuple[SessionMark, ...]]] = {}

    def __getitem__(self, pupil_id: str) -> tuple[SessionMark, ...]:
        marks = self._decoded.get(pupil_id)
        if marks is None:
            raw = self._raw[pupil_id]  # KeyError: a pupil without marks, as a dict would
            tokens = _tokens(raw) if isinstance(raw, str) else raw
            marks = self._decoded[pupil_id] = self._interner.decode(tokens)
        return marks

    # Mapping.get goes through __getitem__ and a KeyError for every pupil without marks; the
    # rules ask per pupil, many times a scan. (Typed loosely: Mapping.get's overloads.)
    def get(self, pupil_id: str, default: object = None) -> tuple[SessionMark, ...] | object:  # type: ignore[override]
        if pupil_id in self._decoded:
            return self._decoded[pupil_id]
        if pupil_id not in self._raw:
            return default
        return self[pupil_id]

    def __contains__(self, pupil_id: object) -> bool:
        return pupil_id in self._raw

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)

    def count(self) -> int:
        """How many marks in all, counted on the text (nothing decoded)."""
        total = 0
        for raw in self._raw.values():
            if isinstance(raw, str):
                total += raw.count(TOKEN_SEPARATOR) + raw.count(MONTH_SEPARATOR) + 1
            else:
                total += len(raw)
        return total

    def after(self, pupil_id: str, after: tuple[date, str]) -> Sequence[SessionMark]:
        """The pupil's marks strictly after the ``after`` (date, session), in order."""
        marks = self._decoded.get(pupil_id)
        if marks is None:
            if pupil_id not in self._raw:
                return ()
            month = after[0].isoformat()[:PERIOD_END]
            tail = self._tails.get(pupil_id)
            if tail is None or tail[0] > month:
                tokens = _tokens_from(self._raw[pupil_id], month)
                tail = self._tails[pupil_id] = (month, self._interner.decode(tokens))
            marks = tail[1]
        return marks[bisect.bisect_right(marks, after, key=_session_of) :]

    def marked_on(
        self, sessions: Iterable[tuple[date, Session]]
    ) -> dict[tuple[date, Session], frozenset[str]]:
        """Per session, the pupils with a mark on it, found in the text of that month (a
        session's "YYYY-MM-DDAM" occurs in a month's text only at the start of its token)."""
        keys: dict[str, list[tuple[str, tuple[date, Session]]]] = {}
        for day, session in sessions:
            key = f"{day.isoformat()}{session.value}"
            keys.setdefault(key[:PERIOD_END], []).append((key, (day, session)))
        marked: dict[tuple[date, Session], list[str]] = {
            wanted: [] for of_month in keys.values() for _, wanted in of_month
        }
        for month, of_month in keys.items():
            for pid, raw in self._raw.items():
                # only the month's own text is searched, found without splitting the year's
                text = _month_text(raw, month)
                if text:
                    for key, wanted in of_month:
                        if key in text:
                            marked[wanted].append(pid)
        return {wanted: frozenset(pids) for wanted, pids in marked.items()}


def _month_text(raw: RawMarks, month: str) -> str:
    """The tokens of ``month`` (``YYYY-MM``) in a pupil's raw marks, as text. In a summary
    text, "YYYY-MM-" occurs only where a token of that month starts, and the month's tokens
    lie together between MONTH_SEPARATORs (``RawMarks``), so one find lands inside them.
    Searched from the end: the months a nightly asks for are the ones the summary patched,
    which ``store.summary_texts`` puts last."""
    if not isinstance(raw, str):
        return TOKEN_SEPARATOR.join(token for token in raw if token.startswith(month))
    found = raw.rfind(month + "-")
    if found < 0:
        return ""
    start = raw.rfind(MONTH_SEPARATOR, 0, found) + 1
    end = raw.find(MONTH_SEPARATOR, found)
    return raw[start:] if end < 0 else raw[start:end]


def _tokens_from(raw: RawMarks, month: str) -> list[str]:
    """The tokens of a pupil's raw marks from ``month`` (``YYYY-MM``) on, unsorted."""
    if not isinstance(raw, str):
        return [token for token in raw if token[:PERIOD_END] >= month]
    tokens: list[str] = []
    for text in raw.split(MONTH_SEPARATOR):
        if text[:PERIOD_END] >= month:
            tokens += text.split(TOKEN_SEPARATOR)
    return tokens


def _tokens(text: str) -> list[str]:
    if not text:
        return []
    return text.replace(MONTH_SEPARATOR, TOKEN_SEPARATOR).split(TOKEN_SEPARATOR)


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
