"""REG004 no-show-on-starting-day."""

from __future__ import annotations

from collections.abc import Iterator

from registerwatch.errors import CalendarError
from registerwatch.schema import Finding, Severity
from registerwatch.validators.base import Rule
from registerwatch.validators.context import ScanContext, tracked_from
from registerwatch.validators.runs import day_runs
from registerwatch.validators.runs_strict import classify_own_codes

NOT_ARRIVED = frozenset({"N", "O"})


class NoShowOnStartingDay(Rule):
    """A new pupil has not arrived: only N or O from their starting day.

    What it checks
    --------------
    Every pupil of compulsory school age whose starting day is on or after
    ``returns_tracked_from`` and inside the configured terms, once ``no_show_school_days`` (3)
    school days from the starting day have passed: if every session of each of those school days
    is coded N or O (reason unknown), one **warning** from the starting day's first session to
    the last session of the run, which grows while the pupil stays away. An unexpected closure
    (Y4) is skipped; any other code, or a day with no mark, means the pupil was accounted for.

    Why it matters
    --------------
    A child who is admitted but never arrives is at risk of missing education: the school is
    expected to make reasonable enquiries at once and tell the local authority, rather than wait
    for the ten-day continuous absence return.

    Example
    -------
    Pupil `s1:4012` has starting day Monday 3 November 2025 and is N on 3, 4 and 5 November: a
    scan on 6 November gives one warning, 2025-11-03 AM to 2025-11-05 PM.

    How to fix
    ----------
    Contact the family and the previous school, and tell the LA's children missing education
    team; record what is learnt and amend the codes once the reason is known.

    References
    ----------
    - DfE "Children missing education" statutory guidance as quoted by the seed schools'
      policies (SECONDARY; paragraph not confirmed): enquiries and LA notice when a pupil fails
      to attend as expected.
    - SI 2024/208 reg 8 (the starting day, VERIFIED via the Explanatory Note) and reg 10 (codes N
      and O, SECONDARY).
    """

    code = "REG004"
    name = "no-show-on-starting-day"
    title = (
        "New pupil {pupil} has not arrived: only N or O for {days} school day(s) from the "
        "starting day, {first} to {last}"
    )
    severity = Severity.WARNING
    citation = "CME statutory guidance (as quoted by the seed policies); SI 2024/208 reg 8"
    fix_hint = "Make reasonable enquiries and tell the LA's children missing education team"
    settings_used = ("no_show_school_days", "returns_tracked_from")

    def check(self, ctx: ScanContext) -> Iterator[Finding]:
        needed = ctx.settings.no_show_school_days
        since = max(tracked_from(ctx), ctx.calendar.first_day)
        classify = classify_own_codes(ctx, NOT_ARRIVED)
        for pupil in sorted(ctx.pupils, key=lambda p: p.id):
            start = pupil.starting_day
            if start is None or pupil.boarder or not since <= start <= ctx.data_end:
                continue
            if not ctx.is_csa(pupil, start) or ctx.code_count(pupil.id, NOT_ARRIVED) == 0:
                continue
            try:
                first_day = (
                    ctx.calendar.next_school_day(start)
                    if not ctx.calendar.is_school_day(start)
                    else start
                )
            except CalendarError:
                continue
            for run in day_runs(ctx, pupil, classify):
                if run.days[0].date != first_day:
                    continue
                if len(run) >= needed:
                    yield self.finding(
                        ctx,
                        pupil_id=pupil.id,
                        first=run.first_session,
                        last=run.last_session,
                        days=len(run),
                        discriminator="no-show",
                        evidence={"starting_day": start.isoformat(), "school_days": len(run)},
                    )
                break
