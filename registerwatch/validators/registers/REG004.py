"""REG004 no-show-on-starting-day."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from itertools import groupby
from operator import attrgetter
from typing import Any

from registerwatch.errors import CalendarError
from registerwatch.schema import Finding, Pupil, Session, Severity
from registerwatch.validators.base import Rule
from registerwatch.validators.context import DayMarks, ScanContext, tracked_from
from registerwatch.validators.delta import RuleRun, ScanDelta, session_before
from registerwatch.validators.runs import Classifier, DayKind, DayRun, only_closed_between
from registerwatch.validators.runs_strict import classify_own_codes

NOT_ARRIVED = frozenset({"N", "O"})
_date_of = attrgetter("date")


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
        return iter(self.run(ctx).findings)

    def run(self, ctx: ScanContext) -> RuleRun:
        decided: dict[str, str] = {}
        found = list(self._findings(ctx, self._new_pupils(ctx), decided))
        return RuleRun(found, state={"decided": decided})

    def run_delta(self, ctx: ScanContext, delta: ScanDelta, state: Any) -> RuleRun | None:
        """A pupil's walk that ended (a mark other than N or O, a day with no mark, off roll)
        stands until their record or a mark on or before its last day changes: only the other
        new pupils (still away, or new since) are walked again."""
        if not isinstance(state, dict) or not isinstance(state.get("decided"), dict):
            return None
        before: dict[str, str] = state["decided"]
        decided: dict[str, str] = {}
        again: list[Pupil] = []
        for pupil in self._new_pupils(ctx, csa=False):
            ended = before.get(pupil.id)
            changed = delta.changed_marks.get(pupil.id)
            if (
                ended is None
                or pupil.id in delta.pupils
                or (changed is not None and changed[0].isoformat() <= ended)
            ):
                if pupil.starting_day is not None and ctx.is_csa(pupil, pupil.starting_day):
                    again.append(pupil)
            else:
                # walked when judged (of compulsory school age: the record is unchanged)
                decided[pupil.id] = ended
        walked = {p.id for p in again}
        found = list(self._findings(ctx, again, decided))
        return RuleRun(
            found,
            state={"decided": decided},
            covers=lambda f: f.pupil_id in walked or f.pupil_id in delta.pupils,
        )

    def _new_pupils(self, ctx: ScanContext, *, csa: bool = True) -> list[Pupil]:
        """The pupils judged: of compulsory school age (unless ``csa`` is False: the caller
        asks), starting from the tracked period to the last day of data."""
        since = max(tracked_from(ctx), ctx.calendar.first_day)
        end = ctx.data_end
        new = [
            pupil
            for pupil in ctx.pupils
            if (start := pupil.starting_day) is not None
            and since <= start <= end
            and not pupil.boarder
            and (not csa or ctx.is_csa(pupil, start))
        ]
        return sorted(new, key=lambda p: p.id)

    def _findings(
        self, ctx: ScanContext, pupils: list[Pupil], decided: dict[str, str]
    ) -> Iterator[Finding]:
        """The pupils' findings; ``decided`` gets the last day of each walk that ended."""
        needed = ctx.settings.no_show_school_days
        classify = classify_own_codes(ctx, NOT_ARRIVED)
        for pupil in pupils:
            start = pupil.starting_day
            assert start is not None
            try:
                first_day = (
                    ctx.calendar.next_school_day(start)
                    if not ctx.calendar.is_school_day(start)
                    else start
                )
            except CalendarError:
                continue
            run, ended = _run_from(ctx, pupil, classify, first_day)
            if ended is not None:
                decided[pupil.id] = ended.isoformat()
            if run is not None and len(run) >= needed:
                yield self.finding(
                    ctx,
                    pupil_id=pupil.id,
                    first=run.first_session,
                    last=run.last_session,
                    days=len(run),
                    discriminator="no-show",
                    evidence={"starting_day": start.isoformat(), "school_days": len(run)},
                )


def _run_from(
    ctx: ScanContext, pupil: Pupil, classify: Classifier, first_day: date
) -> tuple[DayRun | None, date | None]:
    """The pupil's run of counting school days that begins on ``first_day`` (their first school
    day), as ``runs.day_runs`` would find it, or None; and the day the walk ended on (a break,
    off roll, a day with no mark), None while it may still go on. Only the marks from that day
    on are read, and only until the run ends: the pupil is off roll before it, so no earlier
    day bears on the run (a nightly scan pays for the few new pupils' first days, not their
    years)."""
    marks = ctx.pupil_marks_after(pupil.id, session_before((first_day, Session.AM)))
    days: list[DayMarks] = []
    sessions: list[tuple[Session, ...]] = []
    previous: int | None = None
    ended: date | None = None
    for day_date, group in groupby(marks, key=_date_of):
        if day_date > ctx.data_end:
            break
        index = ctx.day_index(day_date)
        if index is None:
            continue  # not a school day (MRK005 judges such marks)
        day = DayMarks(date=day_date, index=index, codes={m.session: m.code for m in group})
        if ctx.calendar.unexpectedly_closed(day_date):
            continue  # a whole-school Y4 day held no session: neither counts nor breaks
        if not pupil.on_roll(day_date):
            ended = day_date
            break
        if (
            previous is not None
            and index != previous + 1
            and not only_closed_between(ctx, previous, day)
        ):
            ended = day_date
            break
        previous = index
        kind, counted = classify(day, ctx.open_sessions(day_date))
        if kind is DayKind.BREAK:
            ended = day_date
            break
        if kind is DayKind.COUNT:
            days.append(day)
            sessions.append(counted)
        if not days:
            return None, day_date  # the first school day did not count: no run begins on it
    if not days or days[0].date != first_day:
        return None, ended
    return DayRun(tuple(days), tuple(sessions)), ended
