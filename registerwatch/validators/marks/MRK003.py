"""MRK003 x-code-for-compulsory-age."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from registerwatch.schema import Finding, Pupil, Severity
from registerwatch.validators.base import Rule
from registerwatch.validators.context import ScanContext
from registerwatch.validators.folding import CodeMarksFold, check_by_folding, load_mark
from registerwatch.validators.lean_marks import SessionMark
from registerwatch.validators.runs import first_last, mark_runs


class _XMarks(CodeMarksFold):
    """The pupil's X marks of any date (X on a planned session is as wrong)."""

    complete_days_only = False

    def codes(self, ctx: ScanContext) -> Iterable[str]:
        return ("X",)

    def quiet(self, ctx: ScanContext, pupil: Pupil, data: Any) -> bool:
        """No date of birth, or the first and the last X mark both outside compulsory school
        age and less than 5 years apart: compulsory school age is one span of more than 10
        years, so no X mark between them falls inside it either."""
        if pupil.dob is None or len(data) < 2:
            return True
        first, last = load_mark(data[1]).date, load_mark(data[-1]).date
        return (
            (last - first).days < 5 * 365
            and not ctx.is_csa(pupil, first)
            and not ctx.is_csa(pupil, last)
        )


class XCodeForCompulsoryAge(Rule):
    """X (not required to attend) on a session when the pupil is of compulsory school age.

    What it checks
    --------------
    Every X mark of a pupil whose date of birth is known, against compulsory school age on the
    mark's date (Education Act 1996 s.8, ``school_age.is_compulsory_school_age``, with the school
    year starting on the calendar's first autumn term day). Consecutive school sessions form one
    finding. A pupil with no date of birth cannot be judged and is left to the data checks.

    Why it matters
    --------------
    X means a pupil *not of compulsory school age* is not required to attend (for example a
    Reception child on a part-time pattern before CSA, or a sixth-former). For a pupil of CSA the
    parent has a legal duty to secure attendance: a part-time arrangement is C2 (a temporary
    reduced timetable, which counts as authorised absence); X hides those sessions from the
    possible-sessions count and from the statistics.

    Example
    -------
    Pupil `s1:4012` (born 10 February 2019, so of CSA from 31 March 2024) has X on 6 October 2025
    PM: one error for 2025-10-06 PM.

    How to fix
    ----------
    Amend the entries to the code that applies: C2 for an agreed part-time timetable, otherwise
    the attendance or absence code for what happened. Check the date of birth if it is wrong.

    References
    ----------
    - SI 2024/208 reg 10, code X: non-compulsory school age pupil not required to attend
      (SECONDARY); C2 temporary reduced timetable for a CSA pupil (SECONDARY).
    - Education Act 1996 s.8(2)-(3) (VERIFIED): when compulsory school age starts and ends.
    """

    code = "MRK003"
    name = "x-code-for-compulsory-age"
    title = (
        "X recorded for pupil {pupil} of compulsory school age on {count} session(s) from "
        "{first} to {last}"
    )
    severity = Severity.ERROR
    citation = "SI 2024/208 reg 10 (code X); Education Act 1996 s.8"
    fix_hint = "Use C2 for a reduced timetable, or the code for what happened"

    fold = _XMarks()

    def check(self, ctx: ScanContext) -> Iterator[Finding]:
        yield from check_by_folding(ctx, self.fold)

    def judge(
        self, ctx: ScanContext, pupil: Pupil, x_marks: Sequence[SessionMark]
    ) -> Iterator[Finding]:
        """The pupil's findings from their X marks (of any date)."""
        if pupil.dob is None:
            return
        wrong = [m for m in x_marks if ctx.is_csa(pupil, m.date)]
        for run in mark_runs(ctx, wrong):
            first, last = first_last(run)
            yield self.finding(
                ctx,
                pupil_id=pupil.id,
                first=first,
                last=last,
                count=len(run),
                evidence={"code": "X", "sessions": len(run)},
            )
