"""ATT007 attendance-below-local-trigger."""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from datetime import date

from registerwatch.schema import Finding, Pupil, Severity
from registerwatch.validators.attendance._weekly import PeriodTallies, PeriodTalliesFold
from registerwatch.validators.base import Rule
from registerwatch.validators.context import ScanContext
from registerwatch.validators.folding import check_by_folding
from registerwatch.validators.settings import AttendanceTrigger


class _TriggerTallies(PeriodTalliesFold):
    """Tallies of every pupil but boarders, when the school has set triggers."""

    def wanted(self, ctx: ScanContext, pupil: Pupil) -> bool:
        return bool(ctx.settings.attendance_triggers) and not pupil.boarder

    def findings(self, ctx: ScanContext, pupil: Pupil, state: PeriodTallies) -> Iterator[Finding]:
        rule = self.rule
        assert isinstance(rule, AttendanceBelowLocalTrigger)
        return rule.judge(ctx, pupil, state)


class AttendanceBelowLocalTrigger(Rule):
    """A pupil's attendance is below one of the school's own triggers.

    What it checks
    --------------
    Nothing unless the school sets ``attendance_triggers``: each names a percentage and a
    window, "term" (the configured term holding the day before the scan, which is a half-term
    where the calendar lists half-terms), "year" (the school year to date) or "weeks" (the last
    ``school_weeks`` school weeks). For every non-boarder on roll in the window with at least the
    trigger's ``min_possible_sessions`` possible sessions, attendance (present, late before the
    close and approved educational activity, over possible sessions, as DfE computes them) below
    the percentage gives one **info** finding per pupil and trigger, from the pupil's first to
    last possible session in the window.

    Why it matters
    --------------
    Schools set their own points at which they write to parents, meet them or escalate (below
    90% over a half-term, below 95%, tiers of support). No law makes these breaches; the finding
    is a work list, so that no pupil who crossed the school's own line is missed.

    Example
    -------
    The school sets `{name = "half-term", below_percent = 90, window = "term"}`. Pupil `s1:4012`
    attended 52 of 60 possible sessions this half-term (86.7%): one info finding.

    How to fix
    ----------
    Follow the school's attendance policy for the trigger (a letter, a meeting, a support plan).
    The finding closes when the pupil's attendance in the window is back at or above the trigger.

    References
    ----------
    - The seed schools' own triggers: Sevenoaks 3.11 (below 90% over a half-term), Wenlock 4.5
      (below 95%), Micklefield 2.C (tiers); WTISA (Aug 2024) expects schools to use attendance
      data to identify pupils needing support (SECONDARY, as quoted by the seeds).
    - Attendance as DfE computes it (present + approved educational activity over possible
      sessions: DfE published data, VERIFIED).
    """

    code = "ATT007"
    name = "attendance-below-local-trigger"
    title = (
        "Pupil {pupil} attended {rate}% of {possible} possible sessions ({window}), below "
        "the school's trigger '{trigger}' ({below}%)"
    )
    severity = Severity.INFO
    citation = "The school's attendance policy (its own triggers)"
    fix_hint = "Follow the school's attendance policy for this trigger"
    settings_used = ("attendance_triggers",)

    def window(self, ctx: ScanContext, trigger: AttendanceTrigger) -> tuple[date, date] | None:
        end = ctx.data_end
        if trigger.window == "year":
            return ctx.school_year[0], end
        if trigger.window == "weeks":
            assert trigger.school_weeks is not None
            return ctx.rolling_weeks_start(end, trigger.school_weeks), end
        terms = ctx.calendar.terms
        k = bisect.bisect_right([t.start for t in terms], end) - 1
        if k < 0:
            return None
        return terms[k].start, min(terms[k].end, end)

    fold = _TriggerTallies()

    def check(self, ctx: ScanContext) -> Iterator[Finding]:
        yield from check_by_folding(ctx, self.fold)

    def judge(self, ctx: ScanContext, pupil: Pupil, state: PeriodTallies) -> Iterator[Finding]:
        """The pupil's findings from their tallies, one per trigger they are below."""
        if pupil.boarder or not ctx.on_roll_in(pupil, ctx.school_year[0], ctx.as_of):
            return
        for trigger in ctx.settings.attendance_triggers:
            window = self.window(ctx, trigger)
            if window is None or window[0] > window[1]:
                continue
            start, end = window
            label = f"{start.isoformat()} to {end.isoformat()}"
            if not ctx.on_roll_in(pupil, start, end):
                continue
            ps = state.statistics(ctx, start, end)
            stats = ps.stats
            if stats.possible < trigger.min_possible_sessions:
                continue
            # in integers: attendance / possible < below_percent / 100
            if stats.attendance * 10_000 >= round(trigger.below_percent * 100) * stats.possible:
                continue
            yield self.finding(
                ctx,
                pupil_id=pupil.id,
                first=ps.first,
                last=ps.last,
                episode=None,
                discriminator=f"{trigger.name}:{start.isoformat()}",
                rate=f"{100 * stats.attendance / stats.possible:.1f}",
                possible=stats.possible,
                window=label,
                trigger=trigger.name,
                below=f"{trigger.below_percent:g}",
                evidence={
                    "trigger": trigger.name,
                    "below_percent": trigger.below_percent,
                    "window_start": start.isoformat(),
                    "window_end": end.isoformat(),
                    "attendance": stats.attendance,
                    "possible": stats.possible,
                },
            )
