"""What the LA-return rules share: the tracking window, deadlines and matching a return made."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date, timedelta

from registerwatch.errors import CalendarError
from registerwatch.schema import Finding, Notification, NotificationKind, Pupil, Severity
from registerwatch.validators.base import Rule, session_text
from registerwatch.validators.context import ScanContext

# Re-exported: the LA-return rules read it from here; it lives on the context because REG004
# (a register rule) needs it too.
from registerwatch.validators.context import tracked_from as tracked_from
from registerwatch.validators.runs import DayRun


def deadline_severity(ctx: ScanContext, due: date | None) -> Severity:
    """Warning up to and including the due day, error once it has passed."""
    return Severity.ERROR if due is not None and ctx.as_of > due else Severity.WARNING


def add_school_days(ctx: ScanContext, day: date, n: int) -> date | None:
    """The calendar's answer, or None when it lies beyond the configured terms."""
    try:
        return ctx.calendar.add_school_days(day, n)
    except CalendarError:
        return None


def return_due(ctx: ScanContext, day: date) -> date | None:
    """The LA's next scheduled return date on or after ``day`` (la_return_schedule), so a pupil
    who meets a return's test on ``day`` goes in that return; None when it lies beyond the
    configured terms (or the LA's listed dates)."""
    s = ctx.settings
    if s.la_return_schedule == "next_school_day":
        grace = s.threshold_return_school_days
        return add_school_days(ctx, day, grace) if grace else day
    if s.la_return_schedule == "dates":
        return next((d for d in sorted(s.la_return_dates) if d >= day), None)
    if s.la_return_schedule == "termly":
        for term in ctx.calendar.terms:
            if term.end >= day:
                days = ctx.calendar.school_days(max(term.start, day), term.end)
                if days:
                    return days[-1]
        return None
    month = date(day.year, day.month, 1)
    while month <= ctx.calendar.last_day:
        following = date(month.year + month.month // 12, month.month % 12 + 1, 1)
        days = ctx.calendar.school_days(max(month, day), following - timedelta(days=1))
        if days:
            return days[-1]
        month = following
    return None


def return_period(ctx: ScanContext, due: date) -> date:
    """The first day of the return period that ends with the return due on ``due``: the day
    after the previous scheduled date (for 'monthly', the first of the month)."""
    s = ctx.settings
    if s.la_return_schedule == "dates":
        earlier = [d for d in s.la_return_dates if d < due]
        return max(earlier) + timedelta(days=1) if earlier else ctx.school_year[0]
    if s.la_return_schedule == "termly":
        return next(
            (t.start for t in ctx.calendar.terms if t.start <= due <= t.end),
            date(due.year, due.month, 1),
        )
    return date(due.year, due.month, 1)


def notification_day(n: Notification) -> date:
    return n.episode_start or n.made_at.date()


def return_made_within(
    ctx: ScanContext, pupil_id: str, kind: NotificationKind, start: date, end: date
) -> Notification | None:
    """A return of ``kind`` for the pupil whose episode starts in [start, end] (a return with no
    episode start is placed on the day it was made)."""
    for n in ctx.notifications_for(pupil_id, kind):
        if start <= notification_day(n) <= end:
            return n
    return None


def run_findings(
    rule: Rule,
    ctx: ScanContext,
    pupil: Pupil,
    runs: Sequence[DayRun],
    *,
    codes: frozenset[str],
    days: int,
    kind: NotificationKind,
    scheduled: bool,
) -> Iterator[Finding]:
    """LAR002 and LAR003: the pupil's runs (from ``_episodes.AbsenceRunsFold``) of at least
    ``days`` consecutive school days whose every open session has a code in ``codes`` (see
    ``runs.classify_all_sessions``) with no return of ``kind`` whose episode starts within the
    run.

    The threshold day is the run's ``days``-th day. ``scheduled``: the return is due on the LA's
    next return date (``return_due``), a warning until then; otherwise (a referral, LAR003) it is
    due ``threshold_return_school_days`` after the threshold day and stays a warning. Runs whose
    threshold day is before ``tracked_from`` are history, not reported.
    """
    since = tracked_from(ctx)
    for run in runs:
        if len(run) < days:
            continue
        threshold_day = run.days[days - 1].date
        if threshold_day < since:
            continue
        if ctx.settings.la_returns_csa_only and not ctx.is_csa(pupil, threshold_day):
            continue
        start, end = run.days[0].date, run.days[-1].date
        if return_made_within(ctx, pupil.id, kind, start, end) is not None:
            continue
        run_codes = {c for d in run.days for c in d.codes.values()} & codes
        if run_codes == {"U"} and scheduled and not ctx.settings.continuous_absence_u_only:
            continue
        due: date | None
        if scheduled:
            due = return_due(ctx, threshold_day)
            severity = deadline_severity(ctx, due)
        else:
            grace = ctx.settings.threshold_return_school_days
            due = add_school_days(ctx, threshold_day, grace) if grace else threshold_day
            severity = Severity.WARNING
        yield _episode_finding(
            rule, ctx, pupil, run, threshold_day, due, severity, u_only=run_codes == {"U"}
        )


def _episode_finding(
    rule: Rule,
    ctx: ScanContext,
    pupil: Pupil,
    run: DayRun,
    threshold_day: date,
    due: date | None,
    severity: Severity,
    u_only: bool,
) -> Finding:
    codes = sorted({c for d in run.days for c in d.codes.values()})
    note = (
        " (U only: the pupil was in school, arriving after the register closed)" if u_only else ""
    )
    return rule.finding(
        ctx,
        pupil_id=pupil.id,
        first=run.first_session,
        last=run.last_session,
        due=due,
        severity=severity,
        days=len(run),
        note=note,
        due_text=due.isoformat() if due else "not computable: add the term dates",
        evidence={
            "school_days": len(run),
            "first": session_text(run.first_session),
            "last": session_text(run.last_session),
            "threshold_day": threshold_day.isoformat(),
            "codes": codes,
            "u_only": u_only,
        },
    )


def nc_year_rank(nc_year: str | None) -> int | None:
    """Order of National Curriculum years: N1 < N2 < R < 1 < ... < 14; None when unrecognised."""
    if nc_year is None:
        return None
    value = nc_year.strip().upper()
    named = {"N1": -2, "N2": -1, "N": -1, "R": 0}
    if value in named:
        return named[value]
    return int(value) if value.isdigit() else None


def extreme_nc_year(ctx: ScanContext, *, junior: bool) -> str | None:
    """The school's most junior (or most senior) NC year among its pupils (INFERRED stand-in
    for "the school's most junior class" / "final year", reg 13(2) and 13(5))."""
    ranked = [
        (rank, p.nc_year) for p in ctx.pupils if (rank := nc_year_rank(p.nc_year)) is not None
    ]
    if not ranked:
        return None
    return (min(ranked) if junior else max(ranked))[1]
