"""MRK008 reduced-timetable-code."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Sequence

from registerwatch.calendar import week_start
from registerwatch.schema import Finding, Pupil, Severity
from registerwatch.validators.base import Rule
from registerwatch.validators.context import ScanContext
from registerwatch.validators.folding import CodeMarksFold, check_by_folding
from registerwatch.validators.lean_marks import SessionMark
from registerwatch.validators.runs import first_last, mark_runs


class _C2Marks(CodeMarksFold):
    """The pupil's C2 marks up to the last day of data."""

    def codes(self, ctx: ScanContext) -> Iterable[str]:
        return ("C2",)


class ReducedTimetableCode(Rule):
    """C2 (part-time timetable) for a pupil not of compulsory school age, or running long.

    What it checks
    --------------
    Every C2 mark of the school year up to the day before the scan.

    - C2 on a session when the pupil is not of compulsory school age: the code is for pupils of
      compulsory school age; a pupil above or below it who is not required to attend is X. One
      **error** per run of consecutive school sessions.
    - C2 in every one of more than ``reduced_timetable_max_school_weeks`` (6) consecutive school
      weeks (holiday weeks are not school weeks, so a timetable running over half-term goes on):
      one **info** finding per such episode, from its first C2 to its last. No MIS here exposes
      a part-time timetable's review date, so the rule cannot tell a reviewed timetable from a
      forgotten one; the finding says so and asks the school to check.

    Why it matters
    --------------
    A part-time timetable is exceptional, temporary and time-limited, with regular review dates
    and a proposed end date; it must not become the pupil's normal education. C2 for a pupil
    who is not of compulsory school age makes their statistics show authorised absence where no
    attendance was required.

    Example
    -------
    Pupil `s1:4012` (17, Year 13) is C2 every Friday afternoon: one error per Friday afternoon,
    "should be X". Pupil `s1:4013` (Year 9) has been C2 every afternoon for 8 school weeks: one
    info finding to check that the timetable has been reviewed.

    How to fix
    ----------
    Amend C2 to X for pupils not of compulsory school age. For a long part-time timetable,
    review it with the pupil and parents, record the review and end date in the pupil's plan,
    and return the pupil to full-time education as soon as possible.

    References
    ----------
    - SI 2024/208 reg 10 (codes C2 and X, SECONDARY labels); Education Act 1996
      s.8 (compulsory school age, VERIFIED).
    - WTISA (Aug 2024) on part-time timetables, as quoted by Sevenoaks App 4: temporary,
      time-limited, "regular review dates", "a proposed end date" (SECONDARY).
    """

    code = "MRK008"
    name = "reduced-timetable-code"
    title = (
        "Pupil {pupil} is coded C2 but not of compulsory school age, from {first} to "
        "{last}: should be X"
    )
    severity = Severity.ERROR
    citation = "SI 2024/208 reg 10 (C2, X); WTISA part-time timetables (Sevenoaks App 4)"
    fix_hint = (
        "Amend C2 to X for a pupil not of compulsory school age; review a long part-time "
        "timetable and record its end date"
    )
    settings_used = ("reduced_timetable_max_school_weeks",)

    LONG = (
        "Pupil {pupil} has been on a part-time timetable (C2) for {weeks} school weeks, "
        "from {first} to {last}: the MIS gives no review date, so check it has been "
        "reviewed and has an end date"
    )

    fold = _C2Marks()

    def check(self, ctx: ScanContext) -> Iterator[Finding]:
        yield from check_by_folding(ctx, self.fold)

    def judge(
        self, ctx: ScanContext, pupil: Pupil, marks: Sequence[SessionMark]
    ) -> Iterator[Finding]:
        """The pupil's findings from their C2 marks up to the last day of data."""
        start, _ = ctx.school_year
        if not ctx.on_roll_in(pupil, start, ctx.as_of):
            return
        c2 = [m for m in marks if start <= m.date <= ctx.data_end and pupil.on_roll(m.date)]
        if not c2:
            return
        not_csa = [m for m in c2 if not ctx.is_csa(pupil, m.date)]
        for run in mark_runs(ctx, not_csa):
            first, last = first_last(run)
            yield self.finding(
                ctx,
                pupil_id=pupil.id,
                first=first,
                last=last,
                discriminator="not-csa",
                evidence={"sessions": len(run), "should_be": "X"},
            )
        yield from self._long(ctx, pupil, [m for m in c2 if ctx.is_csa(pupil, m.date)])

    def _long(self, ctx: ScanContext, pupil: Pupil, c2: list[SessionMark]) -> Iterator[Finding]:
        """Episodes of C2 in consecutive school weeks, reported once longer than the limit."""
        mondays = ctx.school_week_mondays
        limit = ctx.settings.reduced_timetable_max_school_weeks
        episodes: list[tuple[list[SessionMark], list[int]]] = []
        for mark in c2:
            week = bisect.bisect_right(mondays, week_start(mark.date)) - 1
            if episodes and week - episodes[-1][1][-1] in (0, 1):
                marks, weeks = episodes[-1]
                marks.append(mark)
                if week != weeks[-1]:
                    weeks.append(week)
            else:
                episodes.append(([mark], [week]))
        for marks, weeks in episodes:
            if len(weeks) <= limit:
                continue
            first, last = first_last(marks)
            yield self.finding(
                ctx,
                pupil_id=pupil.id,
                first=first,
                last=last,
                severity=Severity.INFO,
                template=self.LONG,
                weeks=len(weeks),
                discriminator="long",
                evidence={
                    "school_weeks": len(weeks),
                    "sessions": len(marks),
                    "review_date_exposed": False,
                },
            )
