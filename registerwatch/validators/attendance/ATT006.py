"""ATT006 suspension-without-provision."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date
from typing import Any

from registerwatch.schema import Finding, Session, Severity
from registerwatch.validators.base import Rule, session_ref
from registerwatch.validators.context import DayMarks, ScanContext
from registerwatch.validators.delta import RuleRun, ScanDelta, kept_marks
from registerwatch.validators.lean_marks import SessionMark
from registerwatch.validators.runs import day_runs, only_closed_between
from registerwatch.validators.runs_strict import classify_own_codes

SUSPENDED = frozenset({"E"})


def _longest_chain(ctx: ScanContext, marks: Sequence[SessionMark]) -> int:
    """The most school days in a row, from the E marks alone, that could each count in a run
    (E on every open session but a Y4 closure, with only whole-day Y4 closures between):
    ``day_runs`` counts no more, so a pupil below the due day is not walked over the year."""
    by_day: dict[date, set[Session]] = {}
    for mark in marks:
        by_day.setdefault(mark.date, set()).add(mark.session)
    longest = length = 0
    previous: int | None = None
    for day in sorted(by_day):
        index = ctx.day_index(day)
        if index is None or ctx.calendar.unexpectedly_closed(day):
            continue
        sessions = [s for s in ctx.open_sessions(day) if ctx.calendar.closure_code(day, s) != "Y4"]
        if not sessions or not by_day[day].issuperset(sessions):
            previous, length = None, 0
            continue
        if previous is not None and (
            index == previous + 1
            or only_closed_between(ctx, previous, DayMarks(date=day, index=index, codes={}))
        ):
            length += 1
        else:
            length = 1
        previous = index
        longest = max(longest, length)
    return longest


class SuspensionWithoutProvision(Rule):
    """A suspension or exclusion is still coded E on and after the day provision was due.

    What it checks
    --------------
    For every pupil on roll in the school year, runs of consecutive school days coded E on every
    session the school was open, up to the day before the scan (the calendar's school days: a
    weekend or holiday neither counts nor breaks the run; an unexpected closure, Y4, is skipped;
    any other code, or a day with no mark, ends it). A run reaching day
    ``suspension_provision_from_day`` (the sixth) gives one **error**, from the first session of
    that day to the run's last E; it grows while the run goes on. Back-to-back suspensions with
    no school day between them cannot be told apart in the register and are one run.

    Why it matters
    --------------
    E means the pupil is suspended or excluded *and no alternative provision has been made*.
    From the sixth consecutive school day of a suspension or permanent exclusion, full-time
    alternative provision must be arranged; the pupil then attends it (B, or K where the LA
    arranged it), so E on that day means the provision is missing or the code is wrong.

    Example
    -------
    Pupil `s1:4012` is E from Monday 3 to Tuesday 11 November 2025 (seven school days): one
    error from 2025-11-10 AM (the sixth day) to 2025-11-11 PM.

    How to fix
    ----------
    Arrange the alternative provision (the school for a suspension, the LA for a permanent
    exclusion) and code the sessions the pupil attends it (B or K). If provision was in place,
    amend the entries.

    References
    ----------
    - DfE attendance technical guidance, "Authorised excluded" (VERIFIED,
      DfE attendance technical guidance, absence reasons table): "Alternative provision must be
      arranged from the sixth consecutive day of any fixed period or permanent exclusion."
    - Code E, suspended or excluded with no alternative provision (SI 2024/208 reg 10,
      SECONDARY).
    """

    code = "ATT006"
    name = "suspension-without-provision"
    title = (
        "Pupil {pupil} is still coded E (no alternative provision) on day {day} or later of "
        "a suspension, from {first} to {last}"
    )
    severity = Severity.ERROR
    citation = "DfE attendance technical guidance: provision from the sixth day of an exclusion"
    fix_hint = "Arrange alternative provision and code attendance at it (B or K)"
    settings_used = ("suspension_provision_from_day",)

    def check(self, ctx: ScanContext) -> Iterator[Finding]:
        return iter(self.run(ctx).findings)

    def run(self, ctx: ScanContext) -> RuleRun:
        return self._run(ctx, None, None)

    def run_delta(self, ctx: ScanContext, delta: ScanDelta, state: Any) -> RuleRun | None:
        """Each pupil's E marks are kept (a rare code) and the night's added; only the pupils
        with enough of them to reach the due day are walked, over their own year."""
        return self._run(ctx, delta, state)

    def _run(self, ctx: ScanContext, delta: ScanDelta | None, state: Any) -> RuleRun:
        kept = kept_marks(ctx, delta, state, SUSPENDED, ctx.pupils_by_id.__contains__)
        return RuleRun(list(self._findings(ctx, kept.marks)), state=kept.dump())

    def _findings(self, ctx: ScanContext, suspended: dict[str, Any]) -> Iterator[Finding]:
        due_day = ctx.settings.suspension_provision_from_day
        start, _ = ctx.school_year
        classify = classify_own_codes(ctx, SUSPENDED)
        for pupil_id in sorted(suspended):
            # fewer E sessions to the last day of data than days: no run reaches the due day
            pupil = ctx.pupils_by_id.get(pupil_id)
            if (
                pupil is None
                or len(suspended[pupil_id]) < due_day
                or not ctx.on_roll_in(pupil, start, ctx.as_of)  # ctx.pupils_this_year
                or _longest_chain(ctx, suspended[pupil_id]) < due_day
            ):
                continue
            for run in day_runs(ctx, pupil, classify):
                if len(run) < due_day or run.days[-1].date < start:
                    continue
                late_days = run.days[due_day - 1 :]
                late_sessions = run.counted[due_day - 1 :]
                first_day = late_days[0].date
                first = session_ref(first_day, late_sessions[0][0])
                yield self.finding(
                    ctx,
                    pupil_id=pupil.id,
                    first=first,
                    last=run.last_session,
                    episode=run.first_session,
                    day=due_day,
                    evidence={
                        "school_days": len(run),
                        "suspension_from": run.days[0].date.isoformat(),
                        "provision_due": first_day.isoformat(),
                    },
                )
