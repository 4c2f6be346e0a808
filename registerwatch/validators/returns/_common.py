"""What the LA-return rules share: the tracking window, deadlines and matching a return made."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

from registerwatch.calendar import school_year_bounds, school_year_of
from registerwatch.errors import CalendarError
from registerwatch.schema import Finding, Notification, NotificationKind, Pupil, Severity
from registerwatch.validators.base import Rule, session_text
from registerwatch.validators.context import ScanContext
from registerwatch.validators.runs import DayRun, classify_all_sessions, day_runs


def tracked_from(ctx: ScanContext) -> date:
    """Admissions, leavers and episodes before this day are not tracked (returns_tracked_from,
    default 1 August of the first school year the calendar configures). Not the current school
    year: a July leaver's missing return must not vanish on 1 August."""
    if ctx.settings.returns_tracked_from is not None:
        return ctx.settings.returns_tracked_from
    return school_year_bounds(school_year_of(ctx.calendar.first_day))[0]


def deadline_severity(ctx: ScanContext, due: date | None) -> Severity:
    """Warning up to and including the due day, error once it has passed."""
    return Severity.ERROR if due is not None and ctx.as_of > due else Severity.WARNING


def add_school_days(ctx: ScanContext, day: date, n: int) -> date | None:
    """The calendar's answer, or None when it lies beyond the configured terms."""
    try:
        return ctx.calendar.add_school_days(day, n)
    except CalendarError:
        return None


def notification_day(n: Notification) -> date:
    return n.episode_start or n.made_at.date()


def return_made_within(ctx: ScanContext, pupil_id: str, kind: NotificationKind,
                       start: date, end: date) -> Notification | None:
    """A return of ``kind`` for the pupil whose episode starts in [start, end] (a return with no
    episode start is placed on the day it was made)."""
    for n in ctx.notifications_for(pupil_id, kind):
        if start <= notification_day(n) <= end:
            return n
    return None


def absence_episodes(rule: Rule, ctx: ScanContext, *, codes: frozenset[str], days: int,
                     grace_school_days: int, kind: NotificationKind) -> Iterator[Finding]:
    """LAR002 and LAR003: runs of at least ``days`` consecutive school days whose every open
    session has a code in ``codes`` (see ``runs.classify_all_sessions``) with no return of
    ``kind`` whose episode starts within the run.

    The threshold day is the run's ``days``-th day; the return is due ``grace_school_days`` school
    days after it. Runs whose threshold day is before ``tracked_from`` are history, not reported.
    """
    classify = classify_all_sessions(codes)
    since = tracked_from(ctx)
    for pupil in ctx.pupils:
        # every counting day has a session with one of the codes: too few can make no run
        if pupil.boarder or ctx.code_count(pupil.id, codes) < days:
            continue
        for run in day_runs(ctx, pupil, classify):
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
            yield _episode_finding(rule, ctx, pupil, run, threshold_day, grace_school_days)


def _episode_finding(rule: Rule, ctx: ScanContext, pupil: Pupil, run: DayRun,
                     threshold_day: date, grace: int) -> Finding:
    due = add_school_days(ctx, threshold_day, grace) if grace else threshold_day
    codes = sorted({c for d in run.days for c in d.codes.values()})
    return rule.finding(
        ctx, pupil_id=pupil.id, first=run.first_session, last=run.last_session, due=due,
        severity=deadline_severity(ctx, due), days=len(run),
        evidence={"school_days": len(run), "first": session_text(run.first_session),
                  "last": session_text(run.last_session),
                  "threshold_day": threshold_day.isoformat(), "codes": codes})


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
    ranked = [(rank, p.nc_year) for p in ctx.pupils
              if (rank := nc_year_rank(p.nc_year)) is not None]
    if not ranked:
        return None
    return (min(ranked) if junior else max(ranked))[1]
