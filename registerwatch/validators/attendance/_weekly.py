"""Weekly code tallies, folded night by night, for the rules over windows of school weeks, terms
and the school year (ATT004, ATT007).

Their windows start on a Monday (``rolling_weeks_start``), the first day of a term or 1 August,
and end on the last day of data, the Sunday before a window's Monday or the end of a term; so a
pupil's marks counted per *period* (a week, cut where a term or the school year starts inside it)
sum to exactly the window's statistics, as ``_common.statistics`` computes them (school sessions
while on roll only). School sessions lie only inside terms, so a period never holds a session
after the end of its term.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from registerwatch.calendar import school_year_bounds, school_year_of, week_start
from registerwatch.codes import session_statistics
from registerwatch.schema import Pupil
from registerwatch.validators.attendance._common import PupilStatistics, counts_as_possible
from registerwatch.validators.base import session_ref
from registerwatch.validators.context import ScanContext, SessionKey
from registerwatch.validators.folding import (
    NightMarks,
    PupilFold,
    advance,
    session_key_from,
    session_key_text,
)
from registerwatch.validators.lean_marks import SessionMark


@dataclass
class Tally:
    """One period's marks counted per code, with its first and last possible session."""

    counts: dict[str, int] = field(default_factory=dict)
    first: SessionKey | None = None
    last: SessionKey | None = None


@dataclass
class PeriodTallies:
    """A pupil's tallies per period (keyed by the period's first day), to the last day of data."""

    through: SessionKey | None = None
    periods: dict[date, Tally] = field(default_factory=dict)

    def statistics(self, ctx: ScanContext, start: date, end: date) -> PupilStatistics:
        """The statistics of [start, end], both ends on period boundaries (see the module)."""
        # summed in a plain dict: Counter.update's type checks cost more than the additions
        # (every EHC plan pupil's ~40 weeks, twice, every night)
        counts: dict[str, int] = {}
        first: SessionKey | None = None
        last: SessionKey | None = None
        for key in sorted(self.periods):
            if start <= key <= end:
                tally = self.periods[key]
                for code, n in tally.counts.items():
                    counts[code] = counts.get(code, 0) + n
                first = first or tally.first
                last = tally.last or last
        return PupilStatistics(
            stats=session_statistics(counts, ctx.as_of),
            first=session_ref(*first) if first else None,
            last=session_ref(*last) if last else None,
        )


def _period_start(ctx: ScanContext, day: date) -> date:
    """The first day of ``day``'s period: its week's Monday, or a later start of a term or of
    the school year within that week (cached per day: asked per mark)."""
    cache: dict[date, date] = ctx._cache.setdefault("period_start", {})
    start = cache.get(day)
    if start is None:
        starts = sorted(t.start for t in ctx.calendar.terms)
        term = bisect.bisect_right(starts, day) - 1
        term_start = starts[term] if term >= 0 else date.min
        year_start, _ = school_year_bounds(school_year_of(day))
        start = cache[day] = max(week_start(day), term_start, year_start)
    return start


class PeriodTalliesFold(PupilFold[PeriodTallies]):
    """Tallies for the pupils ``wanted`` (an EHC plan for ATT004, any when triggers are set for
    ATT007); every other pupil's state stays empty."""

    def wanted(self, ctx: ScanContext, pupil: Pupil) -> bool:
        raise NotImplementedError

    def initial(self, ctx: ScanContext, pupil: Pupil) -> PeriodTallies:
        return PeriodTallies()

    def fold(
        self, ctx: ScanContext, pupil: Pupil, state: PeriodTallies, marks: Sequence[SessionMark]
    ) -> PeriodTallies:
        if self.wanted(ctx, pupil):
            lo, hi = (
                pupil.starting_day or date.min,
                min(ctx.data_end, pupil.leaving_date or date.max),
            )
            school_sessions = ctx.session_index
            for mark in marks:
                key = (mark.date, mark.session)
                if not lo <= mark.date <= hi or key not in school_sessions:
                    continue
                period = _period_start(ctx, mark.date)
                tally = state.periods.get(period)
                if tally is None:
                    tally = state.periods[period] = Tally()
                tally.counts[mark.code] = tally.counts.get(mark.code, 0) + 1
                if counts_as_possible(mark):
                    tally.first = tally.first or key
                    tally.last = key
        state.through = advance(state.through, ctx)
        return state

    def through(self, state: PeriodTallies) -> SessionKey | None:
        return state.through

    def blank(self, state: PeriodTallies) -> bool:
        return not state.periods

    def fold_dumped(
        self, ctx: ScanContext, pupil: Pupil, data: Any, marks: Sequence[SessionMark]
    ) -> Any | None:
        """``fold`` on the dumped tallies: the night's periods copied before they change."""
        through, periods = data
        if not periods:
            return None
        # a null through is the rule's, before and after the night (fold_runs)
        through = through and session_key_text(advance(session_key_from(through), ctx))
        if not self.wanted(ctx, pupil):
            return [through, periods]
        lo = pupil.starting_day or date.min
        hi = min(ctx.data_end, pupil.leaving_date or date.max)
        school_sessions = ctx.session_index
        periods = dict(periods)
        copied: set[str] = set()
        for mark in marks:
            key = (mark.date, mark.session)
            if not lo <= mark.date <= hi or key not in school_sessions:
                continue
            period = _period_start(ctx, mark.date).isoformat()
            if period not in copied:
                copied.add(period)
                tally = periods.get(period)
                periods[period] = (
                    [{}, None, None] if tally is None else [dict(tally[0]), *tally[1:]]
                )
            tally = periods[period]
            tally[0][mark.code] = tally[0].get(mark.code, 0) + 1
            if counts_as_possible(mark):
                tally[2] = session_key_text(key)
                tally[1] = tally[1] or tally[2]
        return [through, periods]

    def night_pupils(self, ctx: ScanContext, night: NightMarks) -> set[str] | None:
        """The pupils ``wanted`` with marks tonight: no one else's tallies change."""
        by_id = ctx.pupils_by_id
        return {
            pid
            for pid in night.by_pupil
            if (pupil := by_id.get(pid)) is not None and self.wanted(ctx, pupil)
        }

    def dump(self, state: PeriodTallies) -> Any:
        # [through, {period: [counts, first, last]}]: most pupils' periods are empty
        return [
            session_key_text(state.through),
            {
                key.isoformat(): [t.counts, session_key_text(t.first), session_key_text(t.last)]
                for key, t in sorted(state.periods.items())
            },
        ]

    def load(self, data: Any) -> PeriodTallies:
        through, periods = data
        return PeriodTallies(
            through=session_key_from(through),
            periods={
                date.fromisoformat(key): Tally(
                    dict(counts), session_key_from(first), session_key_from(last)
                )
                for key, (counts, first, last) in periods.items()
            },
        )
