"""Injected breaches of the rules added for issue 9 (MRK006-MRK008, ATT006, LAR006, REG004),
with their exact expected findings.

Kept apart from generate_breaches so that the older injections keep their random draws: the
pupils here come from what is left of the ordinary pupils, drawn with a Random of their own
(seeded from the school), so adding a rule here does not move any earlier breach. Each pupil
has nothing else unusual; where a breach crosses a rate rule's threshold (a seven-day
suspension is more than 10% absence in December) ``rate_findings`` lists it, computed from the
entries emitted, as for the older breaches. ATT007 has no injection: it reports nothing until a
school sets its own triggers.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Callable, Iterable
from datetime import timedelta

from registerwatch.calendar import week_start
from registerwatch.schema import Notification, NotificationKind, Session
from registerwatch.school_age import is_compulsory_school_age
from registerwatch.simulator.generate_breach_plan import BreachPlan
from registerwatch.simulator.generate_marks import SessionGrid, london
from registerwatch.simulator.generate_people import Entry, PupilDraft
from registerwatch.simulator.model import ExpectedFinding

AM, PM = Session.AM, Session.PM
# One pupil may carry several of these (a late arrival, a wrong present code and a suspension;
# a new pupil who never settled and left): the share of clean pupils stays realistic.
NEW_ROLES = ("MRK006", "LAR006-new-school", "REG004")
# MRK008's first limb needs a pupil *not* of compulsory school age (Reception or the sixth form).
NOT_CSA_ROLE = "MRK008"
# RuleSettings defaults the injections are built for (MRK006's window is the calendar's).
SUSPENSION_DAYS = 7  # ATT006: E on seven school days; provision due from the sixth
PROVISION_FROM_DAY = 6
NO_SHOW_DAYS = 3  # REG004: no_show_school_days
REDUCED_TIMETABLE_WEEKS = 6  # MRK008: reduced_timetable_max_school_weeks

Expect = Callable[[str, PupilDraft, int | None, int | None, str], None]


def place_more_breaches(
    plan: BreachPlan, pupils: list[PupilDraft], spare: list[PupilDraft]
) -> list[PupilDraft]:
    """Inject the new rules' breaches into ``spare`` ordinary pupils (and one pupil not of
    compulsory school age from ``pupils``), append their expected findings and the returns the
    school made, and return the pupils used."""
    grid, school_id = plan.grid, plan.school_id
    notifications = plan.inj.notifications
    expect, session, full_day = plan.expect, plan.session, grid.latest_full_day
    cal = grid.calendar
    last = grid.last
    rng = random.Random(f"more-breaches:{school_id}:{len(pupils)}")
    if len(spare) < len(NEW_ROLES):
        raise ValueError(
            f"too few pupils to inject every breach: need {len(NEW_ROLES)} more "
            f"ordinary pupils, found {len(spare)}; generate more pupils or pass "
            "inject_breaches=False"
        )
    chosen = dict(zip(NEW_ROLES, rng.sample(spare, len(NEW_ROLES)), strict=True))
    for role, pupil in chosen.items():
        pupil.role = role

    window = cal.calendar.register_times.close_after_minutes

    def leave(p: PupilDraft, ground: str, d: int) -> None:
        p.leaving_date = grid.days[d]
        p.deletion_ground, p.new_school = ground, None
        notifications.append(
            Notification(
                kind=NotificationKind.DELETION,
                school_id=school_id,
                pupil_id=p.id,
                episode_start=p.leaving_date,
                made_at=london(p.leaving_date, 15, 10),
                channel="email",
                reference=f"DEL-{p.mis_id}",
            )
        )
        expect("LAR006", p, None, None, f"ground {ground}")

    # MRK006: an L entered 50 minutes after a 30-minute register opened, and a U within it.
    p = chosen["MRK006"]
    late_l = session(full_day(last - 6), AM)
    early_u = session(full_day(last - 9), AM)
    p.entries[late_l] = Entry("L", minutes_late=window + 20)
    p.entries[early_u] = Entry("U", minutes_late=max(1, window - 10))
    expect("MRK006", p, late_l, note="L after the close: should be U")
    expect("MRK006", p, early_u, note="U within the window: should be L")

    # MRK007: the morning's present code on an afternoon (the same pupil).
    i = session(full_day(last - 11), PM)
    p.entries[i] = Entry("/")
    expect("MRK007", p, i)

    # ATT006: a seven-day suspension, E throughout: provision was due from the sixth day (the
    # same pupil, well before the late arrivals).
    start = grid.find_run(SUSPENSION_DAYS, last - 14)
    ids = [i for d in range(start, start + SUSPENSION_DAYS) for i in grid.day_sessions[d]]
    for i in ids:
        p.entries[i] = Entry("E", comment="Suspension")
    expect("ATT006", p, grid.day_sessions[start + PROVISION_FROM_DAY - 1][0], ids[-1])

    # LAR006: a leaver gone "to another school" with no new school recorded (the deletion
    # return was made).
    p = chosen["LAR006-new-school"]
    leave(p, "9(1)(a)", full_day(last - 13))
    # REG004: admitted mid-year, never arrived on the first three school days (O), then came.
    p = chosen["REG004"]
    start = grid.find_run(NO_SHOW_DAYS + 1, last - 10, start_min=max(0, last - 30))
    p.starting_day = grid.days[start]
    ids = [i for d in range(start, start + NO_SHOW_DAYS) for i in grid.day_sessions[d]]
    for i in ids:
        p.entries[i] = Entry("O", comment="No contact from family")
    made = p.starting_day + timedelta(days=1)
    notifications.append(
        Notification(
            kind=NotificationKind.NEW_PUPIL,
            school_id=school_id,
            pupil_id=p.id,
            episode_start=p.starting_day,
            made_at=london(made, 16, 0),
            channel="LA portal",
            reference=f"NP-{p.mis_id}",
        )
    )
    expect("REG004", p, ids[0], ids[-1], note=f"{NO_SHOW_DAYS} school days of O")
    # ... who then left on the 20-day absence ground with three days of absence (LAR006).
    leave(p, "9(1)(i)", full_day(last - 6))

    used = list(chosen.values())
    # MRK008: C2 one afternoon for a pupil not of compulsory school age (should be X), where
    # the school has one (Reception early in the year, or the sixth form).
    day = full_day(last - 4)
    i = session(day, PM)
    for p in sorted(pupils, key=lambda p: p.id):
        if (
            p.role is None
            and p.leaving_date is None
            and p.starting_day <= cal.first_day
            and not (p.ehcp or p.has_social_worker or p.looked_after)
            and p.dob is not None
            and not is_compulsory_school_age(p.dob, grid.dates[i], cal.school_year_start)
        ):
            p.role = NOT_CSA_ROLE
            p.entries[i] = Entry("C2", comment="Reduced timetable")
            expect("MRK008", p, i, note="C2 for a pupil not of compulsory school age")
            used.append(p)
            break
    return used


def reduced_timetable_findings(
    pupils: Iterable[PupilDraft], grid: SessionGrid
) -> list[ExpectedFinding]:
    """MRK008's info findings (C2 in more than six consecutive school weeks) for pupils of
    compulsory school age, computed from the entries emitted, as the rule defines them."""
    cal = grid.calendar
    mondays = cal.school_weeks(cal.first_day, cal.last_day)
    found: list[ExpectedFinding] = []
    for pupil in pupils:
        c2 = [
            i
            for i in grid.roll(pupil)
            if i in pupil.entries
            and pupil.entries[i].code == "C2"
            and is_compulsory_school_age(pupil.dob, grid.dates[i], cal.school_year_start)
        ]
        episodes: list[tuple[list[int], list[int]]] = []
        for i in c2:
            week = bisect.bisect_right(mondays, week_start(grid.dates[i])) - 1
            if episodes and week - episodes[-1][1][-1] in (0, 1):
                sessions, weeks = episodes[-1]
                sessions.append(i)
                if week != weeks[-1]:
                    weeks.append(week)
            else:
                episodes.append(([i], [week]))
        for sessions, weeks in episodes:
            if len(weeks) > REDUCED_TIMETABLE_WEEKS:
                found.append(
                    ExpectedFinding(
                        "MRK008",
                        pupil.id,
                        grid.ref(sessions[0]),
                        grid.ref(sessions[-1]),
                        f"C2 in {len(weeks)} school weeks",
                    )
                )
    return found
