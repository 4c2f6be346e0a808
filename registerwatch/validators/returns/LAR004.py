"""LAR004 new-pupil-return-overdue."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

from registerwatch.calendar import school_year_bounds, school_year_of
from registerwatch.schema import Finding, NotificationKind, Pupil, Severity
from registerwatch.validators.base import Rule
from registerwatch.validators.context import ScanContext
from registerwatch.validators.returns._common import (
    deadline_severity,
    nc_year_rank,
    tracked_from,
)


def first_day_of_school_year(ctx: ScanContext, day: date) -> bool:
    """Is ``day`` the first day of its school year? INFERRED: any day from 1 August up to the
    first school day of the school year counts, because MIS record September starters' starting
    day as 1 September or the first term day alike."""
    year = school_year_of(day)
    firsts: dict[int, date] = ctx._cache.setdefault("lar004_first_school_day", {})
    first = firsts.get(year)
    if first is None:  # cached per year: asked for every pupil who started this year
        start = ctx.calendar.school_year_start(year)
        first_days = ctx.calendar.school_days(start, school_year_bounds(year)[1])
        first = firsts[year] = first_days[0] if first_days else start
    return school_year_bounds(year)[0] <= day <= first


def school_nc_year(ctx: ScanContext, *, junior: bool) -> str | None:
    """``extreme_nc_year``, ranked once per distinct NC year (cached): the same answer, without
    ranking every pupil's year for LAR004 and again for LAR005 every scan."""
    cache: dict[bool, str | None] = ctx._cache.setdefault("lar_extreme_nc_year", {})
    if junior not in cache:
        ranked = [
            (rank, year)
            for year in {p.nc_year for p in ctx.pupils}
            if (rank := nc_year_rank(year)) is not None
        ]
        cache[junior] = (min(ranked) if junior else max(ranked))[1] if ranked else None
    return cache[junior]


def returned(ctx: ScanContext, pupil: Pupil, start: date) -> bool:
    """A new pupil return for this admission: no episode start, or one on or after the starting
    day (a return for an earlier admission of the same pupil does not count)."""
    return any(
        n.episode_start is None or n.episode_start >= start
        for n in ctx.notifications_for(pupil.id, NotificationKind.NEW_PUPIL)
    )


class NewPupilReturnOverdue(Rule):
    """A pupil was admitted and no new pupil return was made to the LA within five days.

    What it checks
    --------------
    Every pupil whose starting day is on or before the scan date (and on or after
    ``returns_tracked_from``, default 1 August of the calendar's first school year), against the
    returns recorded: a Notification of kind ``new_pupil`` for the pupil with no episode start or
    one on or after the starting day. The return is due by the end of the fifth **day** (calendar
    days, not school days: ``new_pupil_days``) after the day the pupil's name was entered in the
    admission register, taken to be the starting day (INFERRED: the schema has no separate entry
    date). Without a return: a **warning** up to the due day, an **error** after it. The finding
    names no session (it is about the admission): the starting day is in its evidence.

    Exempt (reg 13(2)): a pupil placed in the school's most junior class (``most_junior_nc_year``,
    default the lowest NC year among the school's pupils) whose starting day is the first day of
    the school year (any day from 1 August to the first school day), unless the LA has asked for
    those returns too (reg 13(3): ``la_requested_junior_returns``).

    Why it matters
    --------------
    The local authority relies on new pupil returns to know where every child is; a missing return
    can leave a child recorded as missing from education, or hide one who is.

    Example
    -------
    Pupil `s1:4012` joins Year 8 with a starting day of Monday 3 November 2025. The return is due
    by the end of Saturday 8 November (five days, weekend included). A scan on 10 November with no
    return recorded gives one error, due 2025-11-08.

    How to fix
    ----------
    Make the new pupil return to the LA with all the information in the admission register (the
    tool's `la-new-pupil` export) and record it. If the starting day is wrong, correct it.

    References
    ----------
    - SI 2024/208 reg 13(1) (VERIFIED): a new pupil return by the end of the fifth day after the
      day the name is entered in the admission register.
    - SI 2024/208 reg 13(2)-(3) (VERIFIED): the most-junior-class, first-day-of-the-school-year
      exemption, and the LA's power to ask for those returns too.
    """

    code = "LAR004"
    name = "new-pupil-return-overdue"
    title = "New pupil return for pupil {pupil} (starting day {start}) not made (due {due})"
    severity = Severity.ERROR
    citation = "SI 2024/208 reg 13(1)-(3)"
    fix_hint = "Make the new pupil return to the LA and record it"
    settings_used = (
        "new_pupil_days",
        "most_junior_nc_year",
        "la_requested_junior_returns",
        "returns_tracked_from",
    )

    def exempt(self, ctx: ScanContext, pupil: Pupil, start: date, junior: str | None) -> bool:
        if ctx.settings.la_requested_junior_returns or junior is None:
            return False
        return nc_year_rank(pupil.nc_year) == nc_year_rank(junior) and first_day_of_school_year(
            ctx, start
        )

    def check(self, ctx: ScanContext) -> Iterator[Finding]:
        since = tracked_from(ctx)
        junior = ctx.settings.most_junior_nc_year or school_nc_year(ctx, junior=True)
        admitted = [
            p
            for p in ctx.pupils
            if (start := p.starting_day) is not None and since <= start <= ctx.as_of
        ]
        for pupil in sorted(admitted, key=lambda p: p.id):
            start = pupil.starting_day
            assert start is not None
            if self.exempt(ctx, pupil, start, junior) or returned(ctx, pupil, start):
                continue
            due = start + timedelta(days=ctx.settings.new_pupil_days)
            # no session: the finding is about the admission, dated by its due day and evidence
            yield self.finding(
                ctx,
                pupil_id=pupil.id,
                due=due,
                discriminator=f"admitted:{start.isoformat()}",
                severity=deadline_severity(ctx, due),
                start=start.isoformat(),
                evidence={
                    "starting_day": start.isoformat(),
                    "nc_year": pupil.nc_year,
                    "due": due.isoformat(),
                },
            )
