"""Attendance statistics per pupil, computed once per scan and shared by ATT002-ATT004."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date

from registerwatch.codes import (
    REGULATIONS_2024_IN_FORCE,
    SessionStatistics,
    lookup,
    session_statistics,
)
from registerwatch.schema import Finding, Pupil, SessionRef
from registerwatch.validators.base import Rule, session_ref
from registerwatch.validators.context import ScanContext
from registerwatch.validators.lean_marks import SessionMark


@dataclass(frozen=True)
class PupilStatistics:
    """A pupil's DfE session statistics over a period, and the first and last possible session."""

    stats: SessionStatistics
    first: SessionRef | None
    last: SessionRef | None


def statistics(ctx: ScanContext, pupil: Pupil, marks: Iterable[SessionMark]) -> PupilStatistics:
    """Statistics over ``marks`` on school sessions while the pupil was on roll, as DfE computes
    them (``codes.session_statistics``: possible = present + AEA + authorised + unauthorised). A
    mark on a session the school was closed is MRK005's error, not a possible session."""
    start, end = pupil.starting_day or date.min, pupil.leaving_date or date.max
    school_sessions = ctx.session_index
    counts: Counter[str] = Counter()
    first: SessionMark | None = None
    last: SessionMark | None = None
    possible: dict[tuple[str, bool], bool] = {}
    for mark in marks:
        if not start <= mark.date <= end or (mark.date, mark.session) not in school_sessions:
            continue
        counts[mark.code] += 1
        key = (mark.code, mark.date >= REGULATIONS_2024_IN_FORCE)
        is_possible = possible.get(key)
        if is_possible is None:
            is_possible = possible[key] = lookup(mark.code, mark.date).possible
        if is_possible:
            first = first or mark
            last = mark
    return PupilStatistics(
        stats=session_statistics(counts, ctx.as_of),
        first=session_ref(first.date, first.session) if first else None,
        last=session_ref(last.date, last.session) if last else None,
    )


def marks_between(ctx: ScanContext, pupil_id: str, start: date, end: date) -> list[SessionMark]:
    return [m for m in ctx.pupil_marks(pupil_id) if start <= m.date <= end]


def _whole_year_statistics(ctx: ScanContext, pupil: Pupil, start: date) -> PupilStatistics | None:
    """The fast path for the usual pupil, all of whose marks fall inside the period, on roll and
    on school sessions: counts straight from the marks grouped by code. None otherwise."""
    marks = ctx.pupil_marks(pupil.id)
    if not marks or pupil.id in ctx.pupils_with_off_session_marks:
        return None
    lo = max(start, pupil.starting_day or date.min)
    hi = min(ctx.data_end, pupil.leaving_date or date.max)
    if marks[0].date < lo or marks[-1].date > hi:
        return None
    counts = {code: len(ms) for code, ms in ctx.marks_by_code(pupil.id).items()}
    first = next((m for m in marks if lookup(m.code, m.date).possible), None)
    last = next((m for m in reversed(marks) if lookup(m.code, m.date).possible), None)
    return PupilStatistics(
        stats=session_statistics(counts, ctx.as_of),
        first=session_ref(first.date, first.session) if first else None,
        last=session_ref(last.date, last.session) if last else None,
    )


def year_statistics(ctx: ScanContext) -> dict[str, PupilStatistics]:
    """Each non-boarder's statistics for the school year up to the day before the scan
    (cached: ATT002 and ATT003 share them)."""
    cached = ctx._cache.get("year_statistics")
    if cached is None:
        start, _ = ctx.school_year
        cached = {}
        for pupil in ctx.pupils_this_year:
            if pupil.boarder:
                continue
            cached[pupil.id] = _whole_year_statistics(ctx, pupil, start) or statistics(
                ctx, pupil, marks_between(ctx, pupil.id, start, ctx.data_end)
            )
        ctx._cache["year_statistics"] = cached
    return cached


def absence_threshold_findings(rule: Rule, ctx: ScanContext, threshold: float) -> Iterator[Finding]:
    """ATT002/ATT003: one finding per pupil whose overall absence rate in the school year is at
    least ``threshold`` (a fraction), once they have ``absence_min_possible_sessions``."""
    year = ctx.school_year[0].year
    for pupil_id, ps in sorted(year_statistics(ctx).items()):
        measured = in_national_measure(ctx.pupils_by_id[pupil_id], year)
        if ctx.settings.absence_measures_csa_only and not measured:
            continue
        stats = ps.stats
        if stats.possible < ctx.settings.absence_min_possible_sessions:
            continue
        # compare in integers: absence / possible >= threshold, without float rounding at 10%
        if stats.overall_absence * 1_000_000 < round(threshold * 1_000_000) * stats.possible:
            continue
        yield rule.finding(
            ctx,
            pupil_id=pupil_id,
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
