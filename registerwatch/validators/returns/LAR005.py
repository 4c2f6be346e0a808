"""LAR005 deletion-return-missing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

from registerwatch.calendar import school_year_of
from registerwatch.deletion_grounds import missing_items
from registerwatch.errors import CalendarError
from registerwatch.schema import Finding, NotificationKind, Pupil, Severity
from registerwatch.validators.base import Rule
from registerwatch.validators.context import ScanContext
from registerwatch.validators.returns._common import (
    deadline_severity,
    nc_year_rank,
    tracked_from,
)
from registerwatch.validators.returns.LAR004 import school_nc_year


def left_at_end_of_school_year(ctx: ScanContext, leaving: date) -> bool:
    """No school day of the same school year follows the leaving date (a summer leaver, whether
    the MIS records the last term day or 31 August)."""
    try:
        last_on_roll = ctx.calendar.previous_school_day(leaving + timedelta(days=1))
    except CalendarError:
        last_on_roll = leaving
    try:
        following = ctx.calendar.next_school_day(leaving)
    except CalendarError:
        return True  # no later school day configured: nothing of that year follows
    return school_year_of(following) != school_year_of(last_on_roll)


class DeletionReturnMissing(Rule):
    """A pupil was taken off roll and no deletion return to the LA is recorded.

    What it checks
    --------------
    Every pupil with a leaving date (on or after ``returns_tracked_from``, default 1 August of
    the calendar's first school year), past or future, against the
    returns recorded: a Notification of kind ``deletion`` for the pupil with no episode start or
    one on or after their starting day. The return is due no later than the deletion, taken to be
    the leaving date (the pupil's last day on roll): a **warning** from the day the leaving date
    is known (so a known future leaving date warns ahead) up to that day, an **error** after it.
    The schema holds no separate date the ground was met; the leaving date stands for it. The finding names no session (it is about the deletion): the leaving date is in its
    evidence.

    A return lacking a parent the pupil normally lives with, or an emergency telephone number for
    one (reg 13(4)(c)-(d)), is incomplete: the export refuses to queue it, and the finding says
    what the MIS record lacks (``evidence.missing``) so the school completes it first (legal
    review §3). A pupil no longer in the store is not judged.

    Exempt (reg 13(5), INFERRED from the 2016 regime): a pupil in the school's final year
    (``most_senior_nc_year``, default the highest NC year among the school's pupils) who leaves
    at the end of the school year, i.e. no school day of the same school year follows the leaving
    date.

    Why it matters
    --------------
    When a name is deleted from the admission register the local authority must be told who left,
    where they live and where they are going, so that a child who leaves for nowhere is not lost:
    this is the main safeguard against children going missing from education mid-year.

    Example
    -------
    Pupil `s1:4012` in Year 9 has a leaving date of 14 November 2025 and no deletion return is
    recorded. A scan on 17 November gives one error, due 2025-11-14.

    How to fix
    ----------
    Make the deletion return to the LA (the tool's `la-deletion` export: name, address, parents,
    the ground of deletion and any new school and address) and record it. If the pupil has not in
    fact left, remove the leaving date.

    References
    ----------
    - SI 2024/208 reg 13(4) (VERIFIED): a deletion return when the name of a registered pupil is
      deleted from the admission register, with the items listed there.
    - Timing: the 2016 regime, "as soon as the ground for deletion is met, and no later than the
      time at which the pupil's name is deleted" (VERIFIED, SI 2016/792 reg 5); Wenlock 7.4
      for 2024 (SECONDARY).
    - Reg 13(5) exemption for pupils completing the school's final year (INFERRED).
    """

    code = "LAR005"
    name = "deletion-return-missing"
    title = "Deletion return for pupil {pupil} (leaving date {leaving}) not made (due {due})"
    severity = Severity.ERROR
    citation = "SI 2024/208 reg 13(4)-(5)"
    fix_hint = "Make the deletion return to the LA and record it"
    settings_used = ("most_senior_nc_year", "returns_tracked_from")

    INCOMPLETE = (
        "Deletion return for pupil {pupil} (leaving date {leaving}) not made (due {due}); it "
        "cannot be queued until the MIS record has {missing}"
    )

    def exempt(self, ctx: ScanContext, pupil: Pupil, leaving: date, senior: str | None) -> bool:
        return (
            senior is not None
            and nc_year_rank(pupil.nc_year) == nc_year_rank(senior)
            and left_at_end_of_school_year(ctx, leaving)
        )

    def check(self, ctx: ScanContext) -> Iterator[Finding]:
        since = tracked_from(ctx)
        senior = ctx.settings.most_senior_nc_year or school_nc_year(ctx, junior=False)
        leavers = [p for p in ctx.pupils if p.leaving_date is not None and p.leaving_date >= since]
        for pupil in sorted(leavers, key=lambda p: p.id):
            leaving = pupil.leaving_date
            # a leaving date after the scan is known in advance: the return is due no later
            # than the deletion, so warn from now
            assert leaving is not None
            if self.exempt(ctx, pupil, leaving, senior):
                continue
            admitted = pupil.starting_day or date.min
            if any(
                n.episode_start is None or n.episode_start >= admitted
                for n in ctx.notifications_for(pupil.id, NotificationKind.DELETION)
            ):
                continue
            missing = missing_items(pupil)
            # no session: the finding is about the deletion, dated by its due day and evidence
            yield self.finding(
                ctx,
                pupil_id=pupil.id,
                due=leaving,
                discriminator=f"left:{leaving.isoformat()}",
                severity=deadline_severity(ctx, leaving),
                leaving=leaving.isoformat(),
                template=self.INCOMPLETE if missing else None,
                missing="; ".join(missing),
                evidence={
                    "leaving_date": leaving.isoformat(),
                    "deletion_ground": pupil.deletion_ground,
                    **({"missing": missing} if missing else {}),
                },
            )
