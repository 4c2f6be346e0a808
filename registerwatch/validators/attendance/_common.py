"""Attendance statistics per pupil: the school year's, folded night by night for ATT002 and
ATT003 (``YearStatisticsFold``); ATT004 and ATT007 sum weekly tallies (``_weekly``). Both count
as DfE does (``codes.session_statistics``: possible = present + AEA + authorised +
unauthorised), over school sessions while the pupil was on roll: a mark on a session the school
was closed is MRK005's error, not a possible session."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from typing import Any

from registerwatch.codes import (
    REGULATIONS_2024_IN_FORCE,
    SessionStatistics,
    lookup,
    session_statistics,
)
from registerwatch.schema import Finding, Pupil, SessionRef
from registerwatch.validators.base import Rule, session_ref
from registerwatch.validators.context import ScanContext, SessionKey
from registerwatch.validators.folding import (
    PupilFold,
    advance,
    context_memo,
    session_key_from,
    session_key_text,
)
from registerwatch.validators.lean_marks import SessionMark


@dataclass(frozen=True)
class PupilStatistics:
    """A pupil's DfE session statistics over a period, and the first and last possible session."""

    stats: SessionStatistics
    first: SessionRef | None
    last: SessionRef | None


# (code, under the 2024 regulations) -> counts as a possible session: the answer depends only on
# the code and on which regulations were in force
_POSSIBLE: dict[tuple[str, bool], bool] = {}


def counts_as_possible(mark: SessionMark) -> bool:
    key = (mark.code, mark.date >= REGULATIONS_2024_IN_FORCE)
    answer = _POSSIBLE.get(key)
    if answer is None:
        answer = _POSSIBLE[key] = lookup(mark.code, mark.date).possible
    return answer


@dataclass
class YearCounts:
    """A pupil's marks of the school year ``year`` (its first calendar year) counted per code,
    on school sessions while on roll, with the first and last possible session."""

    through: SessionKey | None = None
    year: int | None = None
    counts: dict[str, int] = field(default_factory=dict)
    first: SessionKey | None = None
    last: SessionKey | None = None


class YearStatisticsFold(PupilFold[YearCounts]):
    """ATT002 and ATT003: the school year's statistics are sums of code counts, so a night's
    marks add to them; the state restarts with the school year (1 August). ``threshold_setting``
    names the RuleSettings field with the absence rate (a fraction) that gives a finding."""

    share_key = "year-counts"

    def __init__(self, threshold_setting: str) -> None:
        self.threshold_setting = threshold_setting

    def initial(self, ctx: ScanContext, pupil: Pupil) -> YearCounts:
        return YearCounts()

    def fold(
        self, ctx: ScanContext, pupil: Pupil, state: YearCounts, marks: Sequence[SessionMark]
    ) -> YearCounts:
        year_start, _ = ctx.school_year
        if state.year != year_start.year:
            state.year, state.counts, state.first, state.last = year_start.year, {}, None, None
        lo = max(year_start, pupil.starting_day or date.min)
        hi = min(ctx.data_end, pupil.leaving_date or date.max)
        if not self._count_whole(ctx, pupil, state, marks, lo, hi):
            self._count_each(ctx, state, marks, lo, hi)
        state.through = advance(state.through, ctx)
        return state

    @staticmethod
    def _count_whole(
        ctx: ScanContext,
        pupil: Pupil,
        state: YearCounts,
        marks: Sequence[SessionMark],
        lo: date,
        hi: date,
    ) -> bool:
        """The fast path of a full scan's usual pupil, all of whose marks fall inside the period,
        on roll and on school sessions: counts straight from the context's marks grouped by code
        (cached on the context: ATT002 and ATT003 fold the same counts). False (nothing done)
        otherwise."""
        if (
            state.counts
            or not marks
            or marks is not ctx.marks_by_pupil.get(pupil.id)
            or pupil.id in ctx.pupils_with_off_session_marks
            or marks[0].date < lo
            or marks[-1].date > hi
        ):
            return False
        cache: dict[str, tuple[dict[str, int], SessionKey | None, SessionKey | None]]
        cache = ctx._cache.setdefault("year_counts", {})
        found = cache.get(pupil.id)
        if found is None:
            counts = {code: len(ms) for code, ms in ctx.marks_by_code(pupil.id).items()}
            first = next((m for m in marks if counts_as_possible(m)), None)
            last = next((m for m in reversed(marks) if counts_as_possible(m)), None)
            found = cache[pupil.id] = (
                counts,
                (first.date, first.session) if first else None,
                (last.date, last.session) if last else None,
            )
        # a copy: a later fold adds to the state's counts
        state.counts, state.first, state.last = dict(found[0]), found[1], found[2]
        return True

    @staticmethod
    def _count_each(
        ctx: ScanContext, state: YearCounts, marks: Sequence[SessionMark], lo: date, hi: date
    ) -> None:
        school_sessions = ctx.session_index
        counts = state.counts
        for mark in marks:
            if not lo <= mark.date <= hi or (mark.date, mark.session) not in school_sessions:
                continue
            counts[mark.code] = counts.get(mark.code, 0) + 1
            if counts_as_possible(mark):
                state.first = state.first or (mark.date, mark.session)
                state.last = (mark.date, mark.session)

    def through(self, state: YearCounts) -> SessionKey | None:
        return state.through

    def fold_dumped(
        self, ctx: ScanContext, pupil: Pupil, data: Any, marks: Sequence[SessionMark]
    ) -> Any | None:
        """``_count_each`` on the dumped state, within its school year (a new year: None)."""
        through, year, counts, first, last = data
        year_start, _ = ctx.school_year
        if year != year_start.year:
            return None
        lo = max(year_start, pupil.starting_day or date.min)
        hi = min(ctx.data_end, pupil.leaving_date or date.max)
        # what each distinct mark of the night adds: every pupil's night is made of the same
        # few dozen marks
        counted = context_memo(ctx, "year_counts:night", partial(_counted_step, ctx))
        counts = dict(counts)
        for mark in marks:
            on_school_session, possible_text = counted(mark)
            if not on_school_session or not lo <= mark.date <= hi:
                continue
            counts[mark.code] = counts.get(mark.code, 0) + 1
            if possible_text is not None:
                last = possible_text
                first = first or last
        # a null through is the rule's, before and after the night (fold_runs)
        through = through and session_key_text(advance(session_key_from(through), ctx))
        return [through, year, counts, first, last]

    def quiet(self, ctx: ScanContext, pupil: Pupil, data: Any) -> bool:
        current = data[1] == ctx.school_year[0].year
        return not _may_reach(ctx, data[2] if current else {}, self.threshold(ctx))

    def findings(self, ctx: ScanContext, pupil: Pupil, state: YearCounts) -> Iterator[Finding]:
        year_start, _ = ctx.school_year
        if pupil.boarder or not ctx.on_roll_in(pupil, year_start, ctx.as_of):
            return
        current = state.year == year_start.year
        if current and not _may_reach(ctx, state.counts, self.threshold(ctx)):
            return  # the arithmetic first: most pupils are under the threshold
        ps = PupilStatistics(
            stats=session_statistics(state.counts if current else {}, ctx.as_of),
            first=session_ref(*state.first) if current and state.first else None,
            last=session_ref(*state.last) if current and state.last else None,
        )
        yield from absence_threshold_finding(self.rule, ctx, pupil, ps, self.threshold(ctx))

    def threshold(self, ctx: ScanContext) -> float:
        threshold: float = getattr(ctx.settings, self.threshold_setting)
        return threshold

    def dump(self, state: YearCounts) -> Any:
        # a flat list: 1,500 pupils' states are read and written every night
        return [
            session_key_text(state.through),
            state.year,
            state.counts,
            session_key_text(state.first),
            session_key_text(state.last),
        ]

    def load(self, data: Any) -> YearCounts:
        through, year, counts, first, last = data
        return YearCounts(
            through=session_key_from(through),
            year=year,
            counts=dict(counts),
            first=session_key_from(first),
            last=session_key_from(last),
        )


def _counted_step(ctx: ScanContext, mark: SessionMark) -> tuple[bool, str | None]:
    """What a mark of the night adds to ``YearStatisticsFold.fold_dumped``'s counts: whether
    it is on a school session, and the text of its session when it counts as possible."""
    key = (mark.date, mark.session)
    if key not in ctx.session_index:
        return False, None
    return True, session_key_text(key) if counts_as_possible(mark) else None


def _may_reach(ctx: ScanContext, counts: dict[str, int], threshold: float) -> bool:
    """Whether ``absence_threshold_finding`` can fire for these counts: the possible and
    absent sessions (``_absence_totals``) against the minimum and the threshold."""
    possible, absent = _absence_totals(ctx, counts)
    if possible < ctx.settings.absence_min_possible_sessions:
        return False
    return absent * 1_000_000 >= round(threshold * 1_000_000) * possible


def _absence_totals(ctx: ScanContext, counts: dict[str, int]) -> tuple[int, int]:
    """The possible and absent sessions of the counts, as ``session_statistics`` counts them.
    Kept per counts dict for the scan: ATT002 and ATT003 ask for the same stored counts of
    every pupil every night."""
    return context_memo(ctx, "absence_totals", partial(_summed_totals, ctx))(counts)


def _summed_totals(ctx: ScanContext, counts: dict[str, int]) -> tuple[int, int]:
    """The totals summed from per-code weights (cached per code)."""
    weights: dict[str, tuple[int, int]] = ctx._cache.setdefault("absence_weights", {})
    possible = absent = 0
    for code, n in counts.items():
        weight = weights.get(code)
        if weight is None:
            row = lookup(code, ctx.as_of)
            weight = weights[code] = (
                (1, int(row.authorised) + int(row.unauthorised)) if row.possible else (0, 0)
            )
        possible += weight[0] * n
        absent += weight[1] * n
    return possible, absent


def absence_threshold_finding(
    rule: Rule, ctx: ScanContext, pupil: Pupil, ps: PupilStatistics, threshold: float
) -> Iterator[Finding]:
    """ATT002/ATT003: a finding when the pupil's overall absence rate in the school year is at
    least ``threshold`` (a fraction), once they have ``absence_min_possible_sessions``."""
    year = ctx.school_year[0].year
    measured = in_national_measure(pupil, year)
    if ctx.settings.absence_measures_csa_only and not measured:
        return
    stats = ps.stats
    if stats.possible < ctx.settings.absence_min_possible_sessions:
        return
    # compare in integers: absence / possible >= threshold, without float rounding at 10%
    if stats.overall_absence * 1_000_000 < round(threshold * 1_000_000) * stats.possible:
        return
    yield rule.finding(
        ctx,
        pupil_id=pupil.id,
        first=ps.first,
        last=ps.last,
        episode=None,
        discriminator=f"year:{year}",
        rate=f"{stats.overall_absence_rate:.1f}",
        absent=stats.overall_absence,
        possible=stats.possible,
        measure="" if measured else " (school measure: not of compulsory school age)",
        evidence={
            "national_measure": measured,
            "possible": stats.possible,
            "authorised": stats.authorised,
            "unauthorised": stats.unauthorised,
            "overall_absence_rate": round(stats.overall_absence_rate, 2),
            "school_year": year,
        },
    )


def in_national_measure(pupil: Pupil, school_year: int) -> bool:
    """The DfE measure covers pupils aged 5 to 15 at 31 August before the school year; a pupil without a date of birth counts."""
    if pupil.dob is None:
        return True
    aug31 = date(school_year, 8, 31)
    age = (
        aug31.year - pupil.dob.year - ((aug31.month, aug31.day) < (pupil.dob.month, pupil.dob.day))
    )
    return 5 <= age <= 15
