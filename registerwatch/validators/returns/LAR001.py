"""LAR001 sickness-return-due."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

from registerwatch.codes import ILLNESS_CODE
from registerwatch.schema import Finding, NotificationKind, Pupil, Session, SessionRef, Severity
from registerwatch.validators.base import Rule, session_ref, session_text
from registerwatch.validators.context import ScanContext
from registerwatch.validators.returns._common import (
    add_school_days,
    deadline_severity,
    return_made_within,
)


@dataclass
class _Illness:
    """A pupil's illness in the school year up to the scan date."""

    total: float = 0.0  # school-day equivalents
    first: SessionRef | None = None
    last: SessionRef | None = None
    reached_on: date | None = None  # the day the total reached the threshold
    spell_start: date | None = None  # the current spell of consecutive school days with I
    spell_days: int = 0
    spell_last_index: int | None = None


def _illness(ctx: ScanContext, pupil: Pupil, start: date, threshold: float) -> _Illness:
    out = _Illness()
    by_day: dict[date, list[Session]] = {}
    for mark in ctx.marks_by_code(pupil.id).get(ILLNESS_CODE, ()):
        if (start <= mark.date <= ctx.data_end and pupil.on_roll(mark.date)
                and ctx.is_school_session(mark.date, mark.session)):
            by_day.setdefault(mark.date, []).append(mark.session)
    for day, ill in by_day.items():  # in date order: the marks are sorted
        index = ctx.day_index(day)
        if index is None:
            continue
        # a day with I on one of its two sessions is half a day of illness; on a day with one
        # open session, I on it is a whole day
        out.total += len(ill) / len(ctx.open_sessions(day))
        if out.first is None:
            out.first = session_ref(day, ill[0])
        out.last = session_ref(day, ill[-1])
        if out.reached_on is None and out.total >= threshold - 1e-9:
            out.reached_on = day
        if out.spell_last_index is not None and index == out.spell_last_index + 1:
            out.spell_days += 1
        else:
            out.spell_start, out.spell_days = day, 1
        out.spell_last_index = index
    return out


class SicknessReturnDue(Rule):
    """A pupil has missed (or is heading to miss) 15 school days through illness this school year
    and no sickness return is recorded.

    What it checks
    --------------
    For each pupil, the illness (code I) in the school year (1 August to 31 July) up to the day
    before the scan, while on roll, in school days: a day with I on every open session is one
    day, a day with I on one of two sessions half a day. Days need not be consecutive: the total
    is cumulative, so a continuous spell and scattered days count alike.

    - **Reached**: the total reaches 15 (``sickness_days``). The return is due the next school day
      (``threshold_return_school_days``): a **warning** up to that day, an **error** after it.
    - **Heading there** (the early warning): the pupil is in an ongoing spell (I on the last school
      day with marks, on consecutive school days back to the spell's start) of at least 5 school
      days (``sickness_warning_min_spell_days``), and at one more illness day per school day the
      total would reach 15 within 5 more school days (``sickness_warning_horizon_days``), i.e. the
      total is at least 10. That is the "reasonable grounds to believe" test made concrete. A
      **warning**, due the school day after the 15th day would be reached.

    Either way, a sickness return for the pupil (a Notification of kind ``sickness``) whose
    episode starts on or after the year's first day of illness, within the school year, closes
    the finding: one return covers the pupil's sickness for the school year. The finding runs
    from the first I session of the year to the latest, so the warning and the error that follows
    it are the same finding.

    Why it matters
    --------------
    Schools must tell the local authority when a pupil is coded I and there are reasonable grounds
    to believe they will miss 15 school days, consecutive or cumulative, through sickness, so that
    the LA can arrange suitable education for children who cannot attend because of their health.

    Example
    -------
    Pupil `s1:4012` is I every session from 3 to 21 November 2025 (15 school days). With no return
    recorded, a scan on 25 November gives one error, 2025-11-03 AM to 2025-11-21 PM, due
    2025-11-24. A scan on 17 November (10 days, still ill) gives a warning due 2025-11-24.

    How to fix
    ----------
    Make the sickness return to the LA (the tool's `la-sickness` export) and record it. If some of
    the sessions were not illness, amend them to the right code.

    References
    ----------
    - SI 2024/208 reg 13, sickness return (paragraph not confirmed): pupils coded I where there
      are reasonable grounds to believe they will miss 15 school days, consecutive or cumulative
      (SECONDARY: Hertfordshire; seed school policies). "Only one sickness return is required for
      a continuous period of sickness in a school year" (Hertfordshire).
    - Children missing education guidance 2024, p.11, describing the statutory sickness return
      (SECONDARY, via edyourself). Deadline not found: INFERRED "as soon as the test is met".
    """

    code = "LAR001"
    name = "sickness-return-due"
    title = ("Sickness return due for pupil {pupil}: {total} school days of illness this school "
             "year from {first} to {last} (due {due})")
    severity = Severity.ERROR
    citation = "SI 2024/208 reg 13 (sickness return); CME guidance (2024) p.11"
    fix_hint = "Make the sickness return to the LA and record it"
    settings_used = ("sickness_days", "sickness_warning_min_spell_days",
                     "sickness_warning_horizon_days", "threshold_return_school_days")

    HEADING = ("Sickness return likely due for pupil {pupil}: {total} school days of illness "
               "this school year, still ill since {spell_start}; return due {due} at this rate")

    def check(self, ctx: ScanContext) -> Iterator[Finding]:
        s = ctx.settings
        year_start, year_end = ctx.school_year
        last_school_days = ctx.calendar.school_days(year_start, ctx.data_end)
        latest_index = ctx.day_index(last_school_days[-1]) if last_school_days else None
        floor = s.sickness_days - s.sickness_warning_horizon_days
        for pupil in ctx.pupils_this_year:
            # each I mark is at most one day of illness: too few can produce nothing
            if pupil.boarder or ctx.code_count(pupil.id, (ILLNESS_CODE,)) < floor:
                continue
            ill = _illness(ctx, pupil, year_start, s.sickness_days)
            if ill.first is None:
                continue
            # a return whose episode starts on or after this year's first day of illness covers
            # the year's sickness (one return per continuous period in a school year; a
            # cumulative total needs no second one)
            if return_made_within(ctx, pupil.id, NotificationKind.SICKNESS, ill.first.date,
                                  year_end):
                continue
            evidence = {"illness_days": round(ill.total, 1), "first": session_text(ill.first),
                        "last": session_text(ill.last), "school_year": year_start.year}
            grace = s.threshold_return_school_days
            if ill.reached_on is not None:
                due = add_school_days(ctx, ill.reached_on, grace) if grace else ill.reached_on
                yield self.finding(
                    ctx, pupil_id=pupil.id, first=ill.first, last=ill.last, due=due,
                    severity=deadline_severity(ctx, due), total=_days(ill.total),
                    evidence={**evidence, "reached_on": ill.reached_on.isoformat()})
                continue
            ongoing = ill.spell_last_index is not None and ill.spell_last_index == latest_index
            remaining = s.sickness_days - ill.total
            if (ongoing and ill.spell_days >= s.sickness_warning_min_spell_days
                    and remaining <= s.sickness_warning_horizon_days
                    and ill.last is not None and ill.spell_start is not None):
                due = add_school_days(ctx, ill.last.date, math.ceil(remaining - 1e-9) + grace)
                yield self.finding(
                    ctx, pupil_id=pupil.id, first=ill.first, last=ill.last, due=due,
                    severity=Severity.WARNING, template=self.HEADING, total=_days(ill.total),
                    spell_start=ill.spell_start.isoformat(),
                    evidence={**evidence, "spell_start": ill.spell_start.isoformat(),
                              "spell_days": ill.spell_days})


def _days(total: float) -> str:
    return f"{total:g}" if total == int(total) else f"{total:.1f}"

