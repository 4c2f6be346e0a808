"""ATT004 ehcp-attendance-falling."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from registerwatch.schema import Finding, Pupil, Severity
from registerwatch.validators.attendance._weekly import PeriodTallies, PeriodTalliesFold
from registerwatch.validators.base import Rule, RuleStatus
from registerwatch.validators.context import ScanContext
from registerwatch.validators.folding import check_by_folding


class _EhcpTallies(PeriodTalliesFold):
    """Tallies of the pupils with an EHC plan (not boarders)."""

    def wanted(self, ctx: ScanContext, pupil: Pupil) -> bool:
        return pupil.ehcp and not pupil.boarder

    def findings(self, ctx: ScanContext, pupil: Pupil, state: PeriodTallies) -> Iterator[Finding]:
        rule = self.rule
        assert isinstance(rule, EhcpAttendanceFalling)
        return rule.judge(ctx, pupil, state)


class EhcpAttendanceFalling(Rule):
    """A pupil with an education, health and care plan has falling attendance.

    What it checks
    --------------
    For each pupil with an EHC plan (``ehcp``), the attendance rate (present + late + approved
    educational activity, over possible sessions, on school sessions while on roll) in two
    periods:

    - *recent*: the last 4 school weeks up to the day before the scan
      (``ehcp_recent_school_weeks``);
    - *earlier*: the rest of the school year before them (or, with
      ``ehcp_baseline_school_weeks``, that many school weeks before them).

    Attendance is falling when the recent rate is at least 10 percentage points below the earlier
    rate (``ehcp_drop_points``), the earlier period has at least 20 possible sessions
    (``ehcp_min_baseline_sessions``) and the recent one at least 1
    (``ehcp_min_recent_sessions``). A **warning**, one per pupil and school year while the fall
    lasts, spanning the recent period's first to latest possible session. School weeks are weeks
    with a school session, so holidays are skipped.

    This is a **preview** rule: the guidance says "falling attendance" without a measure, so the
    periods and the size of the fall are INFERRED settings, to be agreed with the LA.

    Why it matters
    --------------
    Schools are expected to tell the local authority when a pupil with an EHC plan has falling
    attendance, or barriers to attendance that relate to their needs, so that the plan's provision
    can be reviewed; the LA maintains the plan and cannot act on what it is not told.

    Example
    -------
    Pupil `s1:4012` (EHC plan) attended 100% of possible sessions from September to the end of
    October 2025 and 85% in the four school weeks since: a 15-point fall, one warning.

    How to fix
    ----------
    Talk to the family and the SENCO about the barriers, and inform the LA's SEN team (the plan's
    case officer); record what was agreed. The finding closes when attendance recovers.

    References
    ----------
    - WTISA (August 2024) expectations of schools: "communicating with the local authority when a
      pupil with an education, health and care (EHC) plan has falling attendance" (SECONDARY, as
      quoted in the seed school policies; paragraph not confirmed).
    - The measure of "falling" is INFERRED (settings ``ehcp_*``).
    """

    code = "ATT004"
    name = "ehcp-attendance-falling"
    title = (
        "Attendance of pupil {pupil} (EHC plan) fell from {before}% to {recent}% "
        "({first} to {last}): inform the LA"
    )
    severity = Severity.WARNING
    citation = (
        "WTISA (Aug 2024): inform the LA when an EHC plan pupil's attendance falls "
        "(measure INFERRED)"
    )
    fix_hint = "Discuss barriers with the family and SENCO; inform the LA's SEN team"
    status = RuleStatus.PREVIEW  # the measure of "falling" is INFERRED
    settings_used = (
        "ehcp_recent_school_weeks",
        "ehcp_baseline_school_weeks",
        "ehcp_drop_points",
        "ehcp_min_baseline_sessions",
        "ehcp_min_recent_sessions",
    )

    fold = _EhcpTallies()

    def check(self, ctx: ScanContext) -> Iterator[Finding]:
        yield from check_by_folding(ctx, self.fold)

    def judge(self, ctx: ScanContext, pupil: Pupil, state: PeriodTallies) -> Iterator[Finding]:
        """The pupil's finding from their tallies: the recent window against the earlier one."""
        s = ctx.settings
        year_start = ctx.school_year[0]
        if not pupil.ehcp or pupil.boarder or not ctx.on_roll_in(pupil, year_start, ctx.as_of):
            return
        recent_start = ctx.rolling_weeks_start(ctx.data_end, s.ehcp_recent_school_weeks)
        earlier_end = recent_start - timedelta(days=1)
        if s.ehcp_baseline_school_weeks is None:
            earlier_start = year_start
        else:
            earlier_start = ctx.rolling_weeks_start(earlier_end, s.ehcp_baseline_school_weeks)
        year = year_start.year
        recent = state.statistics(ctx, recent_start, ctx.data_end)
        before = state.statistics(ctx, earlier_start, earlier_end)
        if (
            recent.stats.possible < s.ehcp_min_recent_sessions
            or before.stats.possible < s.ehcp_min_baseline_sessions
        ):
            return
        drop = before.stats.attendance_rate - recent.stats.attendance_rate
        if drop < s.ehcp_drop_points - 1e-9:
            return
        yield self.finding(
            ctx,
            pupil_id=pupil.id,
            first=recent.first,
            last=recent.last,
            episode=None,
            discriminator=f"year:{year}",
            before=f"{before.stats.attendance_rate:.1f}",
            recent=f"{recent.stats.attendance_rate:.1f}",
            evidence={
                "earlier_period": [earlier_start.isoformat(), earlier_end.isoformat()],
                "recent_period": [recent_start.isoformat(), ctx.data_end.isoformat()],
                "earlier_rate": round(before.stats.attendance_rate, 2),
                "recent_rate": round(recent.stats.attendance_rate, 2),
                "earlier_possible": before.stats.possible,
                "recent_possible": recent.stats.possible,
            },
        )
