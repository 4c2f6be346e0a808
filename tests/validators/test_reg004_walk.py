"""REG004 walks a new pupil's days from their first school day only, where it used to split the
pupil's whole year into runs (``runs.day_runs``) and pick the run that began on that day. The
old way is kept here as the oracle: on the generator's schools, with new pupils whose first days
are N or O runs of every length, both give the same findings as of every day of a half-term."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import pytest

from registerwatch.calendar import SchoolCalendar
from registerwatch.errors import CalendarError
from registerwatch.schema import Finding, Mark
from registerwatch.simulator.generate import generate_school
from registerwatch.validators import ScanContext
from registerwatch.validators.context import tracked_from
from registerwatch.validators.registers.REG004 import NOT_ARRIVED, NoShowOnStartingDay
from registerwatch.validators.runs import day_runs
from registerwatch.validators.runs_strict import classify_own_codes


def oracle(rule: NoShowOnStartingDay, ctx: ScanContext) -> Iterator[Finding]:
    """REG004's check before the change."""
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
                yield rule.finding(
                    ctx,
                    pupil_id=pupil.id,
                    first=run.first_session,
                    last=run.last_session,
                    days=len(run),
                    discriminator="no-show",
                    evidence={"starting_day": start.isoformat(), "school_days": len(run)},
                )
            break


@pytest.mark.parametrize("seed", [3, 11])
def test_the_walk_from_the_starting_day_finds_what_day_runs_found(seed: int) -> None:
    school = generate_school(seed, 80, as_of=date(2025, 11, 21))
    calendar = SchoolCalendar(school.calendar)
    days = calendar.school_days(date(2025, 10, 1), date(2025, 11, 20))
    pupils = list(school.pupils)
    marks = {(m.pupil_id, m.date, m.session): m for m in school.marks}
    # New pupils: N or O on their first 0-6 school days (some starting on a weekend), then
    # present; one is absent a day before the run begins (off roll: it must not count).
    for n, pupil in enumerate(p for p in pupils[:24] if not p.boarder):
        first = days[n]
        start = first - timedelta(days=1) if n % 5 == 0 else first
        pupils[pupils.index(pupil)] = pupil.model_copy(
            update={"starting_day": start, "leaving_date": None}
        )
        for k, day in enumerate(days[days.index(first) - 1 : days.index(first) + 8]):
            for session in ("AM", "PM"):
                code = "N" if k % 2 else "O"
                if k - 1 >= n % 7 or (session == "PM" and k - 1 == n % 7 - 1 and n % 3 == 0):
                    code = "/"
                marks[(pupil.id, day, session)] = Mark(
                    pupil_id=pupil.id, date=day, session=session, code=code
                )
    rule = NoShowOnStartingDay()
    compared = 0
    for as_of in days[5:]:
        ctx = ScanContext.build(
            calendar=school.calendar,
            as_of=as_of,
            school_id=school.school.id,
            pupils=pupils,
            marks=list(marks.values()),
        )
        expected = list(oracle(rule, ctx))
        assert list(rule.check(ctx)) == expected, as_of
        compared += len(expected)
    assert compared > 50  # not vacuous: runs of every length were reported as they grew
