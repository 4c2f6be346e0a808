"""Runs of consecutive school sessions and school days, shared by the rules that group findings.

"Consecutive" is always the calendar's: sessions and days are numbered by the context from
``SchoolCalendar`` (weekends, half-terms, bank holidays and whole-day planned closures have no
number), so two numbers that differ by one are neighbours in school time, whatever lies between
them in calendar time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from enum import Enum
from typing import TypeVar

from registerwatch.schema import Pupil, Session, SessionRef
from registerwatch.validators.base import session_ref
from registerwatch.validators.context import DayMarks, ScanContext, SessionKey
from registerwatch.validators.lean_marks import SessionMark

T = TypeVar("T")


def session_runs(
    ctx: ScanContext, items: Iterable[T], key: Callable[[T], SessionKey]
) -> list[list[T]]:
    """Split items (sorted by session) into runs of consecutive school sessions. An item on a
    session that is not a school session is a run of its own."""
    runs: list[list[T]] = []
    previous: int | None = None
    for item in items:
        index = ctx.session_index.get(key(item))
        if runs and index is not None and previous is not None and index == previous + 1:
            runs[-1].append(item)
        else:
            runs.append([item])
        previous = index
    return runs


def mark_runs(ctx: ScanContext, marks: Iterable[SessionMark]) -> list[list[SessionMark]]:
    return session_runs(ctx, marks, lambda m: (m.date, m.session))


def first_last(run: Sequence[SessionMark]) -> tuple[SessionRef, SessionRef]:
    return session_ref(run[0].date, run[0].session), session_ref(run[-1].date, run[-1].session)


class DayKind(Enum):
    COUNT = "count"  # the day counts towards the run
    SKIP = "skip"  # no possible session that day (an unexpected closure): neither counts nor breaks
    BREAK = "break"  # the run ends


Classifier = Callable[[DayMarks, tuple[Session, ...]], tuple[DayKind, tuple[Session, ...]]]


UNEXPECTED_CLOSURE = "Y4"


def classify_all_sessions(codes: frozenset[str]) -> Classifier:
    """A day counts when every open session is marked, every session has a code in ``codes``
    (or Y4) and at least one does; a day whose open sessions are all Y4 (the whole site closed
    unexpectedly: no session was held) is skipped; any other code breaks the run, the pupil's
    own not-possible codes included (D at another school, X, Q, Y1-Y3, Y5-Y7, a partial '#'):
    only whole-school non-school days are skipped (2006 reg 12(2)(a)).
    Returns the kind and the sessions that counted."""

    def classify(
        day: DayMarks, open_sessions: tuple[Session, ...]
    ) -> tuple[DayKind, tuple[Session, ...]]:
        counted: list[Session] = []
        for session in open_sessions:
            code = day.codes.get(session)
            if code is None:
                return DayKind.BREAK, ()  # an unmarked session: the run cannot be shown to go on
            if code in codes:
                counted.append(session)
            elif code != UNEXPECTED_CLOSURE:
                return DayKind.BREAK, ()
        return (DayKind.COUNT if counted else DayKind.SKIP), tuple(counted)

    return classify


@dataclass(frozen=True)
class DayRun:
    """Consecutive school days that count, in order (skipped days are not listed)."""

    days: tuple[DayMarks, ...]
    counted: tuple[tuple[Session, ...], ...]  # per day, the sessions that counted

    @property
    def first_session(self) -> SessionRef:
        return session_ref(self.days[0].date, self.counted[0][0])

    @property
    def last_session(self) -> SessionRef:
        return session_ref(self.days[-1].date, self.counted[-1][-1])

    def __len__(self) -> int:
        return len(self.days)


def day_runs(
    ctx: ScanContext, pupil: Pupil, classify: Classifier, until: date | None = None
) -> list[DayRun]:
    """The pupil's runs of consecutive counting school days up to ``until`` (default: the last
    day of data), while on roll. A school day with no mark at all, or off roll, breaks a run."""
    until = until or ctx.data_end
    runs: list[DayRun] = []
    days: list[DayMarks] = []
    sessions: list[tuple[Session, ...]] = []
    previous: int | None = None

    def close() -> None:
        if days:
            runs.append(DayRun(tuple(days), tuple(sessions)))
            days.clear()
            sessions.clear()

    for day in ctx.pupil_days(pupil.id):
        if day.date > until:
            break
        if ctx.calendar.unexpectedly_closed(day.date):
            continue  # a whole-school Y4 day held no session: neither counts nor breaks
        if not pupil.on_roll(day.date) or (
            previous is not None
            and day.index != previous + 1
            and not only_closed_between(ctx, previous, day)
        ):
            close()
        previous = day.index if pupil.on_roll(day.date) else None
        if previous is None:
            continue
        kind, counted = classify(day, ctx.open_sessions(day.date))
        if kind is DayKind.BREAK:
            close()
        elif kind is DayKind.COUNT:
            days.append(day)
            sessions.append(counted)
    close()
    return runs


def only_closed_between(ctx: ScanContext, previous: int, day: DayMarks) -> bool:
    """Whether every school day strictly between the day numbered ``previous`` and ``day`` was
    wholly closed unexpectedly (unmarked Y4 days do not break a run either)."""
    days = ctx.calendar.school_days(ctx.calendar.first_day, day.date)[previous + 1 : day.index]
    return bool(days) and all(ctx.calendar.unexpectedly_closed(d) for d in days)
