"""LAR002 continuous-absence-return-due."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date

from registerwatch.schema import Finding, NotificationKind, Pupil, Severity
from registerwatch.validators.base import Rule, session_ref, session_text
from registerwatch.validators.context import ScanContext
from registerwatch.validators.folding import check_by_folding
from registerwatch.validators.lean_marks import SessionMark
from registerwatch.validators.returns._common import (
    deadline_severity,
    return_due,
    return_made_within,
    return_period,
    run_findings,
    tracked_from,
)
from registerwatch.validators.returns._episodes import AbsenceRuns, AbsenceRunsFold
from registerwatch.validators.runs import DayRun


class ContinuousAbsenceReturnDue(Rule):
    """A pupil has been absent without authorisation for 10 consecutive school days, or fails to
    attend regularly, and is not yet in the LA's attendance return.

    What it checks
    --------------
    **Continuous absence.** Runs of consecutive school days on which the pupil was on roll and
    **every open session** carries an unauthorised code (G, N, O or U:
    ``continuous_absence_codes``). Only whole-school non-school days are skipped: weekends,
    holidays, whole-school planned closures and days the whole site was closed unexpectedly
    (Y4). A day on which this pupil has any other code breaks the run: D (registered at another
    school), X, Q, Y1-Y3, Y5-Y7, a '#' of a partial closure, any present or authorised code, or
    an unmarked session. A day whose only open session is the morning counts on its morning.
    When a run reaches 10 school days (``continuous_absence_days``) for a pupil of compulsory
    school age that day (``la_returns_csa_only``), the pupil belongs in the LA's next
    attendance return: a Notification of kind ``continuous_absence`` whose episode start falls
    within the run closes the finding. A run of U only (the pupil came in every day, after the
    register closed) counts when ``continuous_absence_u_only`` is true, and the message says so.

    **Irregular attendance.** A pupil of compulsory school age with at least 20
    (``irregular_absence_sessions``) unauthorised sessions in one return period that are not
    part of a 10-day run fails to attend regularly and also belongs in the return, unless a
    ``continuous_absence`` Notification has an episode start in that period.

    **When.** The return goes at intervals agreed with the LA (``la_return_schedule``; default
    monthly, on the last school day of the month): the finding is a **warning** naming the
    return it belongs in until that date, an **error** once it has passed. Episodes whose 10th
    day is before ``returns_tracked_from`` are history and not reported.

    Why it matters
    --------------
    The school must tell the local authority about every registered pupil of compulsory school age
    who fails to attend regularly or has been absent without authorisation for a continuous period
    of 10 school days, so that the LA can act (a child missing from education may be at risk).

    Example
    -------
    Pupil `s1:4012` is O for every session from Monday 3 to Friday 14 November 2025 (the weekend
    between neither counts nor breaks the run). With no return recorded, a scan on 17 November
    gives a warning "include in the return due 2025-11-28", and a scan on 1 December an error.
    5 days O, then 5 days Y1, then 5 days O is two runs of 5: no finding.

    How to fix
    ----------
    Include the pupil in the continuous absence return to the LA (the tool's
    `la-continuous-absence` export) and record it. If any of the absence was in fact
    authorised, amend those entries. Set the LA's schedule with
    `[rules] la_return_schedule = "monthly"` (or "termly", or "dates" with `la_return_dates`).

    References
    ----------
    - SI 2006/1751 reg 12(1)(a)-(b) (VERIFIED): pupils who fail to attend regularly or are absent
      without authorisation for a continuous period of not less than ten school days, returned
      "at such intervals as may be agreed" with the LA; reg 12(2)(a) left out days registered at
      another school. SI 2024/208 reg 13 keeps the return (paragraph not confirmed).
    - Derbyshire, Hertfordshire: returns at least once a calendar month; Hertfordshire "10 or
      more days, either consecutively or irregularly"; Stockport: one return per episode, codes
      G, N, O and/or U (SECONDARY). The default due date, the month's last school day: INFERRED.
    """

    code = "LAR002"
    name = "continuous-absence-return-due"
    title = (
        "Continuous absence: pupil {pupil} absent without authorisation for {days} "
        "consecutive school days from {first} to {last}{note}: include in the LA return due "
        "{due_text}"
    )
    severity = Severity.ERROR
    citation = "SI 2006/1751 reg 12(1)-(2) (at intervals agreed with the LA); SI 2024/208 reg 13"
    fix_hint = "Include the pupil in the LA's continuous absence return and record it"
    settings_used = (
        "continuous_absence_days",
        "continuous_absence_codes",
        "continuous_absence_u_only",
        "irregular_absence_sessions",
        "la_return_schedule",
        "la_return_dates",
        "threshold_return_school_days",
        "la_returns_csa_only",
        "returns_tracked_from",
    )

    IRREGULAR = (
        "Irregular attendance: pupil {pupil} has {count} unauthorised sessions from "
        "{first} to {last} outside any continuous run: include in the LA return due "
        "{due_text}"
    )

    fold = AbsenceRunsFold(
        "continuous_absence_codes",
        "continuous_absence_days",
        judged_from=("continuous_absence_days", "irregular_absence_sessions"),
    )

    def check(self, ctx: ScanContext) -> Iterator[Finding]:
        yield from check_by_folding(ctx, self.fold)

    def judge(self, ctx: ScanContext, pupil: Pupil, state: AbsenceRuns) -> Iterator[Finding]:
        """The pupil's findings from their runs and unauthorised marks up to the last day of
        data (the fold's state)."""
        s = ctx.settings
        if pupil.boarder:
            return
        runs = state.runs()
        # every counting day has a session with one of the codes: too few can make no run
        if len(state.marks) >= s.continuous_absence_days:
            yield from run_findings(
                self,
                ctx,
                pupil,
                runs,
                codes=s.continuous_absence_codes,
                days=s.continuous_absence_days,
                kind=NotificationKind.CONTINUOUS_ABSENCE,
                scheduled=True,
            )
        if s.irregular_absence_sessions and len(state.marks) >= s.irregular_absence_sessions:
            yield from self._irregular(ctx, pupil, state.marks, runs)

    def _irregular(
        self,
        ctx: ScanContext,
        pupil: Pupil,
        unauthorised: Sequence[SessionMark],
        runs: Sequence[DayRun],
    ) -> Iterator[Finding]:
        s = ctx.settings
        in_runs = {
            d.date for run in runs if len(run) >= s.continuous_absence_days for d in run.days
        }
        since = tracked_from(ctx)
        periods: dict[date | None, list[SessionMark]] = {}
        for mark in unauthorised:
            if (
                mark.date < since
                or mark.date > ctx.data_end
                or mark.date in in_runs
                or not pupil.on_roll(mark.date)
                or not ctx.is_school_session(mark.date, mark.session)
            ):
                continue
            periods.setdefault(return_due(ctx, mark.date), []).append(mark)
        for due, marks in periods.items():
            if len(marks) < s.irregular_absence_sessions:
                continue
            if s.la_returns_csa_only and not ctx.is_csa(pupil, marks[-1].date):
                continue
            start = return_period(ctx, due) if due else marks[0].date
            if return_made_within(
                ctx, pupil.id, NotificationKind.CONTINUOUS_ABSENCE, start, due or ctx.as_of
            ):
                continue
            first = session_ref(marks[0].date, marks[0].session)
            last = session_ref(marks[-1].date, marks[-1].session)
            yield self.finding(
                ctx,
                pupil_id=pupil.id,
                first=first,
                last=last,
                due=due,
                episode=None,
                discriminator=f"irregular:{start.isoformat()}",
                template=self.IRREGULAR,
                severity=deadline_severity(ctx, due),
                count=len(marks),
                due_text=due.isoformat() if due else "not computable: add the term dates",
                evidence={
                    "kind": "irregular",
                    "codes": sorted(s.continuous_absence_codes),
                    "sessions": len(marks),
                    "first": session_text(first),
                    "last": session_text(last),
                    "period_start": start.isoformat(),
                },
            )
