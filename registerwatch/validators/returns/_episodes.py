"""Runs of consecutive school days of absence, folded night by night (LAR002, LAR003).

``runs.day_runs`` walks a pupil's school days in order; the walk only ever needs the day before
(its calendar index) and the run still open, so a night's days continue it from a small state:
the open run, the index of the last day walked, and the closed runs long enough to report (a
shorter closed run can never be reported). The state also keeps the pupil's marks of the run
codes, which LAR002's irregular attendance counts per return period.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from typing import Any, Protocol, cast

from registerwatch.schema import Finding, Pupil, Session
from registerwatch.validators.context import DayMarks, ScanContext, SessionKey
from registerwatch.validators.folding import (
    PupilFold,
    advance,
    context_memo,
    load_mark,
    marks_of_codes,
    session_key_from,
    session_key_text,
    until,
)
from registerwatch.validators.lean_marks import SessionMark, mark_token

# only_closed_between is day_runs' own test of a gap in the calendar, so the fold's walk
# cannot drift from it
from registerwatch.validators.runs import (
    UNEXPECTED_CLOSURE,
    Classifier,
    DayKind,
    DayRun,
    classify_all_sessions,
    only_closed_between,
)

# What a mark of the night does to a usual pupil's walk (``AbsenceRunsFold.fold_dumped``);
# plain ints, compared once per mark of every pupil's night
_BEYOND = 0  # after the last day of data: this and later marks are left for a later night
_UNUSUAL = 1  # a mark of the codes, Y4 or an unexpected closure: the full fold
_NOT_SCHOOL_DAY = 2  # no school day: skipped
_DAY = 3  # a school day that breaks any run: ``previous`` moves to it while on roll


class RunsJudge(Protocol):
    """A rule that judges a pupil from the runs its ``AbsenceRunsFold`` kept."""

    def judge(self, ctx: ScanContext, pupil: Pupil, state: AbsenceRuns) -> Iterable[Finding]: ...


@dataclass
class AbsenceRuns:
    """A pupil's runs so far: see the module docstring."""

    through: SessionKey | None = None
    marks: list[SessionMark] = field(default_factory=list)  # the run codes, to the last day
    long_runs: list[DayRun] = field(default_factory=list)  # closed, at least ``days`` long
    open_days: list[DayMarks] = field(default_factory=list)
    open_counted: list[tuple[Session, ...]] = field(default_factory=list)
    previous: int | None = None  # calendar index of the last on-roll day walked

    def runs(self) -> list[DayRun]:
        """The closed long runs and the open one (a walk's end closes it)."""
        if not self.open_days:
            return self.long_runs
        return [*self.long_runs, DayRun(tuple(self.open_days), tuple(self.open_counted))]


class AbsenceRunsFold(PupilFold[AbsenceRuns]):
    """The runs of ``runs.classify_all_sessions(codes)`` days; ``codes`` and ``days`` name the
    RuleSettings fields of the codes and of the run length that is reported."""

    def __init__(
        self, codes_setting: str, days_setting: str, judged_from: tuple[str, ...] = ()
    ) -> None:
        self.codes_setting = codes_setting
        self.days_setting = days_setting
        #: the RuleSettings fields of the numbers of marks of the codes below which the rule
        #: judges nothing (a falsy setting is off): ``quiet``
        self.judged_from = judged_from

    def codes(self, ctx: ScanContext) -> frozenset[str]:
        codes: frozenset[str] = getattr(ctx.settings, self.codes_setting)
        return codes

    def days(self, ctx: ScanContext) -> int:
        days: int = getattr(ctx.settings, self.days_setting)
        return days

    def initial(self, ctx: ScanContext, pupil: Pupil) -> AbsenceRuns:
        return AbsenceRuns()

    def fold(
        self, ctx: ScanContext, pupil: Pupil, state: AbsenceRuns, marks: Sequence[SessionMark]
    ) -> AbsenceRuns:
        codes = self.codes(ctx)
        kept = until(marks_of_codes(ctx, pupil.id, marks, codes), ctx.data_end)
        state.marks.extend(kept)
        days = self._days_to_walk(ctx, pupil, state, marks, codes)
        self._walk(ctx, pupil, state, days, classify_all_sessions(codes))
        state.through = advance(state.through, ctx)
        return state

    def _days_to_walk(
        self,
        ctx: ScanContext,
        pupil: Pupil,
        state: AbsenceRuns,
        marks: Sequence[SessionMark],
        codes: frozenset[str],
    ) -> Sequence[DayMarks]:
        """The pupil's school days with marks, up to the last day of data. In a full scan (the
        context's own marks, from ``initial``) a pupil with too few marks of the codes for any
        long run is walked from their last day that breaks a run only: the walk resets there
        (no long run can have closed before it), and the usual pupil's last day is a present
        one."""
        fresh = state.previous is None and not state.open_days and not state.long_runs
        if (
            marks is not ctx.marks_by_pupil.get(pupil.id)
            or not fresh
            or ctx.code_count(pupil.id, codes) >= self.days(ctx)
        ):
            return _group_days(ctx, marks)
        # back from the last day of data to the last day that breaks a run, building only those
        # days (building every day of every pupil is what the full scan must not pay)
        classify = classify_all_sessions(codes)
        end = bisect.bisect_right(marks, (ctx.data_end, Session.PM, "\uffff"))
        tail: list[DayMarks] = []
        while end > 0:
            day = marks[end - 1].date
            start = end - 1
            while start > 0 and marks[start - 1].date == day:
                start -= 1
            index = ctx.day_index(day)
            if index is not None:
                day_marks = DayMarks(day, index, {m.session: m.code for m in marks[start:end]})
                tail.append(day_marks)
                if (
                    pupil.on_roll(day)
                    and not ctx.calendar.unexpectedly_closed(day)
                    and classify(day_marks, ctx.open_sessions(day))[0] is DayKind.BREAK
                ):
                    break
            end = start
        tail.reverse()
        return tail

    def _walk(
        self,
        ctx: ScanContext,
        pupil: Pupil,
        state: AbsenceRuns,
        days: Iterable[DayMarks],
        classify: Classifier,
    ) -> None:
        """``runs.day_runs``, continued from the state (keep the two in step)."""
        long_enough = self.days(ctx)

        def close() -> None:
            if len(state.open_days) >= long_enough:
                state.long_runs.append(DayRun(tuple(state.open_days), tuple(state.open_counted)))
            state.open_days, state.open_counted = [], []

        for day in days:
            if ctx.calendar.unexpectedly_closed(day.date):
                continue  # a whole-school Y4 day held no session: neither counts nor breaks
            on_roll = pupil.on_roll(day.date)
            if not on_roll or (
                state.previous is not None
                and day.index != state.previous + 1
                and not only_closed_between(ctx, state.previous, day)
            ):
                close()
            state.previous = day.index if on_roll else None
            if state.previous is None:
                continue
            kind, counted = classify(day, ctx.open_sessions(day.date))
            if kind is DayKind.BREAK:
                close()
            elif kind is DayKind.COUNT:
                state.open_days.append(day)
                state.open_counted.append(counted)

    def through(self, state: AbsenceRuns) -> SessionKey | None:
        return state.through

    def fold_dumped(
        self, ctx: ScanContext, pupil: Pupil, data: Any, marks: Sequence[SessionMark]
    ) -> Any | None:
        """The usual night: no run open and none of the night's marks of the codes (nor Y4),
        so each school day walked breaks and only ``previous`` moves on; else None."""
        if data[2]:
            return None
        # what each distinct mark of the night does to the walk: every pupil's night is made
        # of the same few dozen marks
        walk = context_memo(
            ctx, f"episodes:walk:{self.codes_setting}", partial(self._night_step, ctx)
        )
        previous = data[1]
        day = None
        for mark in marks:
            kind, index, mark_day = walk(mark)
            if kind == _BEYOND:
                break
            if kind == _UNUSUAL:
                return None
            if kind == _DAY and mark_day != day:
                day = mark_day
                if not pupil.on_roll(day):
                    return None
                previous = index
        # a null through is the rule's, before and after the night (fold_runs)
        through = data[0] and session_key_text(advance(session_key_from(data[0]), ctx))
        return [through, previous, [], data[3], *data[4:]]

    def _night_step(self, ctx: ScanContext, mark: SessionMark) -> tuple[int, int, date]:
        """What a mark of the night does to ``fold_dumped``'s walk: its kind, its school day's
        index (-1 unless ``_DAY``) and its date."""
        if mark.date > ctx.data_end:
            return _BEYOND, -1, mark.date
        if mark.code in self.codes(ctx) or mark.code == UNEXPECTED_CLOSURE:
            return _UNUSUAL, -1, mark.date
        index = ctx.day_index(mark.date)
        if index is None:
            return _NOT_SCHOOL_DAY, -1, mark.date
        if ctx.calendar.unexpectedly_closed(mark.date):
            return _UNUSUAL, -1, mark.date
        return _DAY, index, mark.date

    def quiet(self, ctx: ScanContext, pupil: Pupil, data: Any) -> bool:
        key = f"episodes:floor:{self.codes_setting}"
        floor: int | None = ctx._cache.get(key, 0)
        if floor == 0:
            floors = [n for name in self.judged_from if (n := getattr(ctx.settings, name))]
            floor = ctx._cache[key] = min(floors) if floors else None
        return floor is not None and len(data) - 4 < floor

    def findings(self, ctx: ScanContext, pupil: Pupil, state: AbsenceRuns) -> Iterable[Finding]:
        return cast(RunsJudge, self.rule).judge(ctx, pupil, state)

    def dump(self, state: AbsenceRuns) -> Any:
        # [through, previous, open run, long runs, mark tokens...]: a flat list, read and
        # written for every pupil every night
        return [
            session_key_text(state.through),
            state.previous,
            _dump_run(state.open_days, state.open_counted),
            [_dump_run(run.days, run.counted) for run in state.long_runs],
            *(mark_token(m.date, m.session.value, m.code, m.minutes_late) for m in state.marks),
        ]

    def load(self, data: Any) -> AbsenceRuns:
        through, previous, open_run, long_runs, *tokens = data
        open_days, open_counted = _load_run(open_run)
        return AbsenceRuns(
            through=session_key_from(through),
            marks=[load_mark(token) for token in tokens],
            long_runs=[_load_day_run(run) for run in long_runs],
            open_days=open_days,
            open_counted=open_counted,
            previous=previous,
        )


def _dump_run(days: Sequence[DayMarks], counted: Sequence[tuple[Session, ...]]) -> list[list[Any]]:
    return [
        [
            d.date.isoformat(),
            d.index,
            {s.value: c for s, c in d.codes.items()},
            [s.value for s in n],
        ]
        for d, n in zip(days, counted, strict=True)
    ]


def _load_run(rows: list[list[Any]]) -> tuple[list[DayMarks], list[tuple[Session, ...]]]:
    days = [
        DayMarks(date.fromisoformat(day), index, {Session(s): c for s, c in codes.items()})
        for day, index, codes, _ in rows
    ]
    return days, [tuple(Session(s) for s in counted) for *_, counted in rows]


def _load_day_run(rows: list[list[Any]]) -> DayRun:
    days, counted = _load_run(rows)
    return DayRun(tuple(days), tuple(counted))


def _group_days(ctx: ScanContext, marks: Sequence[SessionMark]) -> list[DayMarks]:
    """``ScanContext.pupil_days`` of a night's marks (to the last day of data)."""
    grouped: dict[date, dict[Session, str]] = {}
    for mark in marks:
        if mark.date <= ctx.data_end:
            grouped.setdefault(mark.date, {})[mark.session] = mark.code
    out: list[DayMarks] = []
    for day, codes in grouped.items():
        index = ctx.day_index(day)
        if index is not None:
            out.append(DayMarks(date=day, index=index, codes=codes))
    return out
