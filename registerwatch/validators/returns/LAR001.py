"""LAR001 sickness-return-due."""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from registerwatch.codes import ILLNESS_CODE
from registerwatch.schema import Finding, NotificationKind, Pupil, Session, SessionRef, Severity
from registerwatch.validators.base import Rule, session_ref, session_text
from registerwatch.validators.context import ScanContext
from registerwatch.validators.folding import CodeMarksFold, check_by_folding
from registerwatch.validators.lean_marks import DATE_END, SessionMark
from registerwatch.validators.returns._common import (
    add_school_days,
    deadline_severity,
    notification_day,
    return_due,
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


def _illness_days(
    ctx: ScanContext, pupil: Pupil, start: date, ill: Sequence[SessionMark]
) -> dict[date, list[Session]]:
    # the bounds of Pupil.on_roll folded into the period's: judged for every pupil every night
    lo = max(start, pupil.starting_day or date.min)
    hi = min(ctx.data_end, pupil.leaving_date or date.max)
    sessions = ctx.session_index
    by_day: dict[date, list[Session]] = {}
    for day, session, *_ in ill:
        if lo <= day <= hi and (day, session) in sessions:
            found = by_day.get(day)
            if found is None:
                by_day[day] = [session]
            else:
                found.append(session)
    return by_day


def _covered_until(ctx: ScanContext, days: Sequence[date], returns: Sequence[date]) -> date:
    """per_episode: a return covers the illness before it and to the end of the spell
    (consecutive school days of I) that contains its episode start or first follows it; later
    illness counts afresh, since a second separate long spell may need a new return."""
    spells: list[list[date]] = []
    for day in days:
        if spells and ctx.day_index(day) == ctx.day_index(spells[-1][-1]) + 1:  # type: ignore[operator]
            spells[-1].append(day)
        else:
            spells.append([day])
    covered = date.min
    for made in returns:
        end = next((spell[-1] for spell in spells if spell[-1] >= made), made)
        covered = max(covered, end)
    return covered


def _illness(ctx: ScanContext, by_day: dict[date, list[Session]], threshold: float) -> _Illness:
    out = _Illness()
    first: tuple[date, Session] | None = None
    last: tuple[date, Session] | None = None
    for day, ill in by_day.items():  # in date order: the marks are sorted
        index = ctx.day_index(day)
        if index is None:
            continue
        # a day with I on one of its two sessions is half a day of illness; on a day with one
        # open session, I on it is a whole day
        out.total += len(ill) / len(ctx.open_sessions(day))
        if first is None:
            first = (day, ill[0])
        last = (day, ill[-1])
        if out.reached_on is None and out.total >= threshold - 1e-9:
            out.reached_on = day
        if out.spell_last_index is not None and index == out.spell_last_index + 1:
            out.spell_days += 1
        else:
            out.spell_start, out.spell_days = day, 1
        out.spell_last_index = index
    # the refs built once, not per day
    out.first = None if first is None else session_ref(*first)
    out.last = None if last is None else session_ref(*last)
    return out


def _latest_day(ctx: ScanContext) -> date | None:
    """The school year's last school day up to the last day of data (cached on the context)."""
    key = "LAR001:latest_day"
    if key not in ctx._cache:
        year_start, _ = ctx.school_year
        days = ctx.calendar.school_days(year_start, ctx.data_end)
        ctx._cache[key] = days[-1] if days else None
    latest: date | None = ctx._cache[key]
    return latest


def _latest_index(ctx: ScanContext) -> int | None:
    """The calendar index of the school year's last school day up to the last day of data
    (cached on the context: asked for every pupil with a long spell of illness)."""
    key = "LAR001:latest_index"
    if key not in ctx._cache:
        year_start, _ = ctx.school_year
        days = ctx.calendar.school_days(year_start, ctx.data_end)
        ctx._cache[key] = ctx.day_index(days[-1]) if days else None
    index: int | None = ctx._cache[key]
    return index


def _quiet_texts(ctx: ScanContext) -> tuple[str, str] | None:
    """The start of the school year and ``_latest_day`` as ISO text, which the dumped tokens
    begin with (None without a latest day; cached on the context: asked for every pupil with
    an I mark, every night)."""
    key = "LAR001:quiet_texts"
    if key not in ctx._cache:
        latest = _latest_day(ctx)
        ctx._cache[key] = (
            None if latest is None else (ctx.school_year[0].isoformat(), latest.isoformat())
        )
    texts: tuple[str, str] | None = ctx._cache[key]
    return texts


class _IllnessMarks(CodeMarksFold):
    """The pupil's I marks up to the last day of data: few, and all the rule judges."""

    judge_without_marks = True  # an expected sickness is recorded, not marked

    def codes(self, ctx: ScanContext) -> Iterable[str]:
        return (ILLNESS_CODE,)

    def blank_judged(self, ctx: ScanContext) -> Iterable[str]:
        found: frozenset[str] | None = ctx._cache.get("LAR001:expected")
        if found is None:
            found = ctx._cache["LAR001:expected"] = frozenset(
                n.pupil_id
                for n in ctx.notifications
                if n.kind is NotificationKind.EXPECTED_SICKNESS and n.pupil_id is not None
            )
        return found

    def quiet(self, ctx: ScanContext, pupil: Pupil, data: Any) -> bool:
        """``judge``'s first tests on the dumped tokens (sorted, as ISO text): too few days
        with I this year to reach the threshold (a day is at most one day of illness) and no I
        on the latest school day (no ongoing spell)."""
        if pupil.id in self.blank_judged(ctx):
            return False
        s = ctx.settings
        if len(data) - 1 < s.sickness_days - s.sickness_warning_horizon_days:
            return True
        texts = _quiet_texts(ctx)
        if texts is None or data[-1][:DATE_END] >= texts[1]:
            return False  # maybe ill on the latest school day
        first = bisect.bisect_left(data, texts[0], lo=1)
        if len(data) - first < s.sickness_days:
            return True
        days = len({token[:DATE_END] for token in data[first:]})
        return days < s.sickness_days


class SicknessReturnDue(Rule):
    """A pupil of compulsory school age has missed (or is expected to miss) 15 school days
    through illness and is not yet in the LA's sickness return.

    What it checks
    --------------
    For each pupil of compulsory school age (``la_returns_csa_only``: a 17-year-old in Year 13
    or a 4-year-old in Reception is not in the return), the illness (code I) in the school year
    (1 August to 31 July) up to the day before the scan, while on roll, in school days: a day
    with I on every open session is one day, on one of two sessions half a day. Every pupil
    coded I counts, not only pupils with an EHC plan.

    - **Reached**: the total reaches 15 (``sickness_days``), consecutive or cumulative.
    - **Heading there** ("reasonable grounds to believe"): an ongoing spell of at least 5
      school days (``sickness_warning_min_spell_days``) with the total within 5 days
      (``sickness_warning_horizon_days``) of 15.
    - **Expected**: the data manager recorded an expected long absence (a Notification of kind
      ``expected_sickness``, e.g. planned surgery): the pupil goes in the next return at once.

    The pupil belongs in the LA's next sickness return (``la_return_schedule``; default monthly,
    on the last school day of the month): a **warning** naming that return until its date
    passes, an **error** after. A Notification of kind ``sickness`` closes the finding. With
    ``sickness_return_per = "per_episode"`` (default) a return covers the illness up to the end
    of the spell it was made for; a second, separate long spell later in the year counts afresh
    and needs a new return. With ``"per_year"`` one return covers the school year.

    Why it matters
    --------------
    Schools must tell the local authority when a pupil of compulsory school age is coded I and
    there are reasonable grounds to believe they will miss 15 school days, consecutive or
    cumulative, through sickness, so that the LA can arrange suitable education for children who
    cannot attend because of their health.

    Example
    -------
    Pupil `s1:4012` (Year 8) is I every session from 3 to 21 November 2025 (15 school days). With
    no return recorded, a scan on 25 November gives a warning "include in the return due
    2025-11-28", and a scan on 1 December an error. A Year 13 pupil aged 17 or a Reception
    pupil aged 4 ill for 16 days gives nothing.

    How to fix
    ----------
    Include the pupil in the sickness return to the LA (the tool's `la-sickness` export) and
    record it. If some of the sessions were not illness, amend them. Set the LA's schedule with
    `[rules] la_return_schedule = "monthly"` and the episode rule with
    `[rules] sickness_return_per = "per_episode"`.

    References
    ----------
    - WTISA (Aug 2024) as quoted by Sevenoaks 3.12 and App 4; Derbyshire; Lincolnshire
      (SECONDARY): pupils of compulsory school age coded I with reasonable grounds to believe
      they will miss 15 consecutive or cumulative school days; returns at intervals agreed with
      the LA (Lincolnshire: each of six terms; Derbyshire, Hertfordshire: at least monthly).
    - Hertfordshire, Derbyshire (SECONDARY): one return per continuous period of sickness.
    - SI 2024/208 reg 13 (paragraph not confirmed). Default due date INFERRED.
    """

    code = "LAR001"
    name = "sickness-return-due"
    title = (
        "Sickness return: pupil {pupil} has {total} school days of illness this school "
        "year from {first} to {last}: include in the LA return due {due_text}"
    )
    severity = Severity.ERROR
    citation = "SI 2024/208 reg 13 (sickness return); WTISA (Aug 2024) as quoted by schools"
    fix_hint = "Include the pupil in the LA's sickness return and record it"
    settings_used = (
        "sickness_days",
        "sickness_warning_min_spell_days",
        "sickness_warning_horizon_days",
        "sickness_return_per",
        "la_return_schedule",
        "la_return_dates",
        "threshold_return_school_days",
        "la_returns_csa_only",
    )

    HEADING = (
        "Sickness return likely: pupil {pupil} has {total} school days of illness this "
        "school year and has been ill since {spell_start}: include in the LA return due "
        "{due_text}"
    )
    EXPECTED = (
        "Sickness return: pupil {pupil} is expected to miss 15 school days through "
        "illness from {start} (recorded): include in the LA return due {due_text}"
    )

    fold = _IllnessMarks()

    def check(self, ctx: ScanContext) -> Iterator[Finding]:
        yield from check_by_folding(ctx, self.fold)

    def judge(
        self, ctx: ScanContext, pupil: Pupil, marks: Sequence[SessionMark]
    ) -> Iterator[Finding]:
        """The pupil's findings from their I marks up to the last day of data (``marks``) and the
        returns recorded for them."""
        s = ctx.settings
        year_start, year_end = ctx.school_year
        if pupil.boarder or not ctx.on_roll_in(pupil, year_start, ctx.as_of):
            return
        floor = s.sickness_days - s.sickness_warning_horizon_days
        returns = [
            notification_day(n)
            for n in ctx.notifications_for(pupil.id, NotificationKind.SICKNESS)
            if year_start <= notification_day(n) <= year_end
        ]
        yield from self._expected(ctx, pupil, returns)
        # each I mark is at most one day of illness: too few can produce nothing
        if len(marks) < floor:
            return
        # nor can fewer than the days needed this year, unless the pupil is ill on the latest
        # school day (an ongoing spell): most pupils coded I, judged every night
        this_year = len(marks) - bisect.bisect_left(marks, (year_start,))
        latest = _latest_day(ctx)
        if this_year < s.sickness_days and latest is not None and marks[-1].date < latest:
            return
        by_day = _illness_days(ctx, pupil, year_start, marks)
        if not by_day:
            return
        if returns and s.sickness_return_per == "per_year" and max(returns) >= min(by_day):
            return
        if returns and s.sickness_return_per == "per_episode":
            covered = _covered_until(ctx, list(by_day), sorted(returns))
            by_day = {d: v for d, v in by_day.items() if d > covered}
        ill = _illness(ctx, by_day, s.sickness_days)
        if ill.first is None or ill.last is None:
            return
        if s.la_returns_csa_only and not ctx.is_csa(pupil, ill.last.date):
            return
        evidence = {
            "illness_days": round(ill.total, 1),
            "first": session_text(ill.first),
            "last": session_text(ill.last),
            "school_year": year_start.year,
        }
        if ill.reached_on is not None:
            due = return_due(ctx, ill.reached_on)
            yield self.finding(
                ctx,
                pupil_id=pupil.id,
                first=ill.first,
                last=ill.last,
                due=due,
                severity=deadline_severity(ctx, due),
                total=_days(ill.total),
                due_text=_due_text(due),
                evidence={**evidence, "reached_on": ill.reached_on.isoformat()},
            )
            return
        ongoing = ill.spell_last_index is not None and ill.spell_last_index == _latest_index(ctx)
        remaining = s.sickness_days - ill.total
        if (
            ongoing
            and ill.spell_days >= s.sickness_warning_min_spell_days
            and remaining <= s.sickness_warning_horizon_days
            and ill.spell_start is not None
        ):
            reach = add_school_days(ctx, ill.last.date, math.ceil(remaining - 1e-9))
            due = return_due(ctx, reach) if reach else None
            yield self.finding(
                ctx,
                pupil_id=pupil.id,
                first=ill.first,
                last=ill.last,
                due=due,
                severity=Severity.WARNING,
                template=self.HEADING,
                total=_days(ill.total),
                spell_start=ill.spell_start.isoformat(),
                due_text=_due_text(due),
                evidence={
                    **evidence,
                    "spell_start": ill.spell_start.isoformat(),
                    "spell_days": ill.spell_days,
                },
            )

    def _expected(
        self, ctx: ScanContext, pupil: Pupil, returns: Sequence[date]
    ) -> Iterator[Finding]:
        for record in ctx.notifications_for(pupil.id, NotificationKind.EXPECTED_SICKNESS):
            start = record.episode_start or record.made_at.date()
            recorded = min(start, record.made_at.date())
            if recorded > ctx.as_of or any(r >= recorded for r in returns):
                continue
            if ctx.settings.la_returns_csa_only and not ctx.is_csa(pupil, start):
                continue
            due = return_due(ctx, max(recorded, ctx.calendar.first_day))
            yield self.finding(
                ctx,
                pupil_id=pupil.id,
                due=due,
                severity=deadline_severity(ctx, due),
                template=self.EXPECTED,
                start=start.isoformat(),
                due_text=_due_text(due),
                discriminator=f"expected:{start.isoformat()}",
                evidence={"kind": "expected", "expected_from": start.isoformat()},
            )


def _due_text(due: date | None) -> str:
    return due.isoformat() if due else "not computable: add the term dates"


def _days(total: float) -> str:
    return f"{total:g}" if total == int(total) else f"{total:.1f}"
