"""ATT001 penalty-notice-threshold."""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from datetime import date
from typing import Any

from registerwatch.schema import Finding, Pupil, Severity
from registerwatch.validators.base import Rule, session_ref
from registerwatch.validators.context import ScanContext
from registerwatch.validators.folding import CodeMarksFold, check_by_folding
from registerwatch.validators.lean_marks import SessionMark

PROVISIONAL_CODE = "N"  # to be resolved within 5 school days (reg 10(7))


def _school_days_to_data_end(ctx: ScanContext) -> list[date]:
    """The calendar's school days up to the last day of data (cached on the context: every
    pupil over the threshold walks back over them)."""
    days: list[date] | None = ctx._cache.get("ATT001:school_days")
    if days is None:
        days = ctx._cache["ATT001:school_days"] = ctx.calendar.school_days(
            ctx.calendar.first_day, ctx.data_end
        )
    return days


class _UnauthorisedMarks(CodeMarksFold):
    """The pupil's marks coded G, O, U (``penalty_threshold_codes``) or N, up to the last day
    of data: the window and the episode are judged from them as of the scan day."""

    def codes(self, ctx: ScanContext) -> Iterable[str]:
        return ctx.settings.penalty_threshold_codes | {PROVISIONAL_CODE}

    def quiet(self, ctx: ScanContext, pupil: Pupil, data: Any) -> bool:
        """Fewer kept marks (sorted tokens, ISO text first) in the window of the last school
        weeks than the threshold: ``judge`` can find nothing, whatever their codes."""
        s = ctx.settings
        start: str | None = ctx._cache.get("ATT001:window_start_text")
        if start is None:
            start = ctx._cache["ATT001:window_start_text"] = ctx.rolling_weeks_start(
                ctx.data_end, s.penalty_school_weeks
            ).isoformat()
        in_window = len(data) - bisect.bisect_left(data, start, lo=1)
        return in_window < s.penalty_sessions


class PenaltyNoticeThreshold(Rule):
    """A pupil has 10 or more unauthorised sessions in a rolling period of 10 school weeks.

    What it checks
    --------------
    For each pupil of compulsory school age on the scan date (``penalty_csa_only``; a pupil
    without a date of birth counts), the sessions on roll coded G, O or U
    (``penalty_threshold_codes``) in the window of the last 10 school weeks
    (``penalty_school_weeks``) ending with the week of the last day before the scan. A school
    week is a week with at least one school session, so holiday weeks are skipped and the window
    can span terms and school years; the sessions need not be consecutive. At 10 or more
    (``penalty_sessions``): a **warning**, since the national threshold for *considering* a
    penalty notice is met. The window can span a previous school, whose sessions this school
    cannot see: the message says so.

    N is provisional (the reason is still being established, for at most 5 school days): it is
    not counted, but named in the message; a pupil who reaches 10 only with their N sessions
    gets an **info** finding, "provisional: would reach the threshold if not resolved".

    The finding is one episode: it starts on the earliest school day from which the pupil has been
    at or above the threshold on every school day up to the last day of data, and runs from the
    first unauthorised session in that day's window to the latest unauthorised session. It stays
    the same finding while the pupil stays over the threshold and closes when the window drops
    below.

    Why it matters
    --------------
    Since August 2024 every school in England must consider a penalty notice (or another
    intervention) when a pupil reaches 10 sessions of unauthorised absence in a rolling 10 school
    weeks. Missing the threshold means inconsistent treatment of families, which the National
    Framework exists to prevent.

    Example
    -------
    Pupil `s1:4012` is G (holiday not agreed) every session from 10 to 14 November 2025: 10
    sessions within the last 10 school weeks. One warning, 2025-11-10 AM to 2025-11-14 PM.

    How to fix
    ----------
    Nothing in the register to correct unless an entry is wrong (then amend it, for example an N
    that should be I). Follow the school's procedure: consider a penalty notice or another support
    or intervention under the National Framework, and record the decision.

    References
    ----------
    - SI 2024/210, The Education (Penalty Notices) (England) (Amendment) Regulations 2024, and the
      WTISA National Framework (SECONDARY: school pages quoting it): 10 sessions of unauthorised
      absence in a rolling 10 school weeks; school weeks contain at least one school session;
      the period may span terms and years.
    - Codes counted: WTISA as quoted by Wenlock 5.2 and a Sefton school, "G, O and/or U"
      (SECONDARY); N is provisional by definition (SI 2024/208 reg 10(7)).
    """

    code = "ATT001"
    name = "penalty-notice-threshold"
    title = (
        "Penalty notice threshold reached for pupil {pupil}: {count} unauthorised sessions "
        "(G, O, U) in the last {weeks} school weeks ({first} to {last}){note}. Sessions at "
        "a previous school are not visible here"
    )
    PROVISIONAL = (
        "Penalty notice threshold provisional for pupil {pupil}: {count} unauthorised "
        "sessions in the last {weeks} school weeks ({first} to {last}){note}. "
        "Sessions at a previous school are not visible here"
    )
    severity = Severity.WARNING
    citation = "SI 2024/210; WTISA (Aug 2024) National Framework for penalty notices"
    fix_hint = "Consider a penalty notice or other intervention under the National Framework"
    settings_used = (
        "penalty_threshold_codes",
        "penalty_sessions",
        "penalty_school_weeks",
        "penalty_csa_only",
    )

    fold = _UnauthorisedMarks()

    def check(self, ctx: ScanContext) -> Iterator[Finding]:
        yield from check_by_folding(ctx, self.fold)

    def judge(
        self, ctx: ScanContext, pupil: Pupil, kept: Sequence[SessionMark]
    ) -> Iterator[Finding]:
        """The pupil's finding from their marks with a counted code or N (``kept``), up to the
        last day of data."""
        s = ctx.settings
        codes = s.penalty_threshold_codes
        with_n = codes | {PROVISIONAL_CODE}
        if pupil.boarder or len(kept) < s.penalty_sessions:
            return
        if s.penalty_csa_only and not ctx.is_csa(pupil, ctx.as_of):
            return
        found = self._episode(ctx, pupil, kept, codes)
        if found is None and PROVISIONAL_CODE not in codes:
            found = self._episode(ctx, pupil, kept, with_n)
            if found is not None:
                yield self._finding(ctx, pupil.id, kept, *found, provisional=True)
            return
        if found is not None:
            yield self._finding(ctx, pupil.id, kept, *found, provisional=False)

    def _episode(
        self, ctx: ScanContext, pupil: Pupil, kept: Sequence[SessionMark], codes: frozenset[str]
    ) -> tuple[list[SessionMark], int, int, int] | None:
        s = ctx.settings
        weeks, threshold = s.penalty_school_weeks, s.penalty_sessions
        marks = [
            m
            for m in kept
            if m.code in codes
            and m.date <= ctx.data_end
            and pupil.on_roll(m.date)
            and ctx.is_school_session(m.date, m.session)
        ]
        if len(marks) < threshold:
            return None
        dates = [m.date for m in marks]

        def window(day: date) -> tuple[int, int]:
            start = ctx.rolling_weeks_start(day, weeks)
            return bisect.bisect_left(dates, start), bisect.bisect_right(dates, day)

        lo, hi = window(ctx.data_end)
        if hi - lo < threshold:
            return None
        # walk back over school days while the pupil was over the threshold on each
        episode_lo = lo
        for day in reversed(_school_days_to_data_end(ctx)):
            day_lo, day_hi = window(day)
            if day_hi - day_lo < threshold:
                break
            episode_lo = day_lo
        return marks, episode_lo, lo, hi

    def _finding(
        self,
        ctx: ScanContext,
        pupil_id: str,
        kept: Sequence[SessionMark],
        marks: list[SessionMark],
        episode_lo: int,
        lo: int,
        hi: int,
        *,
        provisional: bool,
    ) -> Finding:
        weeks = ctx.settings.penalty_school_weeks
        current = marks[lo:hi]
        first, last = marks[episode_lo], current[-1]
        codes = Counter(m.code for m in current)
        window_start = ctx.rolling_weeks_start(ctx.data_end, weeks)
        n_in_window = sum(
            1 for m in kept if m.code == PROVISIONAL_CODE and window_start <= m.date <= ctx.data_end
        )
        counted = len(current) - (codes.get(PROVISIONAL_CODE, 0) if provisional else 0)
        note = (
            f"; {n_in_window} N session(s) provisional: would reach the threshold if not resolved"
            if provisional
            else f"; plus {n_in_window} N session(s), provisional"
            if n_in_window and PROVISIONAL_CODE not in ctx.settings.penalty_threshold_codes
            else ""
        )
        return self.finding(
            ctx,
            pupil_id=pupil_id,
            first=session_ref(first.date, first.session),
            last=session_ref(last.date, last.session),
            count=counted,
            weeks=weeks,
            note=note,
            severity=Severity.INFO if provisional else None,
            template=self.PROVISIONAL if provisional else None,
            evidence={
                "sessions_in_window": counted,
                "window_start": window_start.isoformat(),
                "codes": dict(sorted(codes.items())),
                "provisional_n_sessions": n_in_window,
                "provisional": provisional,
            },
        )
