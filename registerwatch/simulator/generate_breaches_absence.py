"""The breaches of long absence: LA returns not made (LAR001-LAR005) and the attendance-rate
rules (ATT001-ATT005), each on a pupil of its own (see generate_breaches for the roles)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

from registerwatch.schema import Address, Notification, NotificationKind, Session
from registerwatch.simulator.generate_breach_plan import BreachPlan, fill
from registerwatch.simulator.generate_expected import (
    EHCP_RECENT_WEEKS,
    PENALTY_WINDOW_WEEKS,
    ehcp_fall,
    n_overdue_runs,
    window_start_day,
)
from registerwatch.simulator.generate_marks import NotEnoughDataError, london, resolve_n
from registerwatch.simulator.generate_people import Entry, PupilDraft

AM, PM = Session.AM, Session.PM
# marks the MRK001 findings that come with the LAR003 breach (its N run), not MRK001's own pupil
CME_RUN_NOTE = "N of the LAR003 run"


def place_absence_breaches(
    plan: BreachPlan, chosen: dict[str, PupilDraft], new_address: Address
) -> None:
    """Write the LAR and ATT breach pupils' entries and say what the scan must find."""
    grid, inj, rng, officer, school_id = plan.grid, plan.inj, plan.rng, plan.officer, plan.school_id
    last, full_day = grid.last, grid.latest_full_day
    expect, session = plan.expect, plan.session
    penalty_start = window_start_day(grid, PENALTY_WINDOW_WEEKS)

    # LAR001: 16 school days of illness, no sickness return.
    p = chosen["LAR001"]
    start = grid.find_run(16, last - 3)
    ids = fill(p, grid, start, 16, "I")
    expect("LAR001", p, ids[0], ids[-1], note="16 school days of I")
    # ... and the same with the return made: not a LAR001 breach.
    p = chosen["LAR001-returned"]
    try:
        start = grid.find_run(16, last - 22)
    except NotEnoughDataError:
        start = grid.find_run(16, last - 3)
    fill(p, grid, start, 16, "I")
    inj.notifications.append(
        Notification(
            kind=NotificationKind.SICKNESS,
            school_id=school_id,
            pupil_id=p.id,
            episode_start=grid.days[start],
            made_at=london(grid.days[start + 5], 15, 0),
            channel="LA portal",
            reference=f"SICK-{p.mis_id}",
        )
    )

    # LAR002: ten school days of unauthorised holiday, no continuous-absence return.
    p = chosen["LAR002"]
    start = grid.find_run(10, last - 2, start_min=penalty_start)
    ids = fill(p, grid, start, 10, "G", comment="Holiday abroad, not agreed")
    expect("LAR002", p, ids[0], ids[-1], note="10 school days of G")

    # LAR003: ten school days of N the school never resolved (the reason is still unknown: O
    # is not "reason unknown" by default); the continuous-absence return
    # was made but no CME referral. The N past their fifth school day are MRK001's too.
    # LAR003-referred: the same run resolved to O after 5 school days, return and referral made.
    for role, referred in (("LAR003", False), ("LAR003-referred", True)):
        p = chosen[role]
        start = grid.find_run(10, last - 8, start_min=penalty_start)
        ids = [i for d in range(start, start + 10) for i in grid.day_sessions[d]]
        if referred:
            for i in ids:
                inj.amendments.append(
                    resolve_n(
                        p,
                        grid,
                        i,
                        "O",
                        grid.day_of[i] + 5,
                        officer,
                        "No contact from family; reason not established within 5 school days",
                        rng,
                    )
                )
        else:
            for i in ids:
                p.entries[i] = Entry("N")
        made = london(grid.days[start + 10], 16, 0)
        inj.notifications.append(
            Notification(
                kind=NotificationKind.CONTINUOUS_ABSENCE,
                school_id=school_id,
                pupil_id=p.id,
                episode_start=grid.days[start],
                made_at=made,
                channel="LA portal",
                reference=f"CA-{p.mis_id}",
            )
        )
        if referred:
            inj.notifications.append(
                Notification(
                    kind=NotificationKind.CME,
                    school_id=school_id,
                    pupil_id=p.id,
                    episode_start=grid.days[start],
                    made_at=made,
                    channel="LA portal",
                    reference=f"CME-{p.mis_id}",
                )
            )
        else:
            expect("LAR003", p, ids[0], ids[-1], note="10 school days of N, no CME referral")
            for first_i, last_i, due in n_overdue_runs(grid, ids):
                expect("MRK001", p, first_i, last_i, note=f"due={due.isoformat()}; {CME_RUN_NOTE}")

    # LAR004: admitted mid-year, no new-pupil return by the end of the fifth day.
    p = chosen["LAR004"]
    p.starting_day = grid.days[full_day(last - 14)]
    due = p.starting_day + timedelta(days=5)
    assert grid.as_of > due
    expect("LAR004", p, None, note=f"due={due.isoformat()}")

    # LAR005: taken off roll with no deletion return.
    p = chosen["LAR005"]
    p.leaving_date = grid.days[full_day(last - 10)]
    p.deletion_ground = "9(1)(g)"
    p.future_address = new_address
    expect("LAR005", p, None, note=f"left {p.leaving_date.isoformat()}")

    # ATT001: ten sessions of arriving after the register closed (U) in recent weeks.
    p = chosen["ATT001"]
    days = [d for d in range(max(penalty_start, last - 34), last) if grid.full[d]]
    for d in sorted(rng.sample(days, 10)):
        p.entries[session(d, AM)] = Entry("U", minutes_late=rng.randint(35, 75))

    # ATT002 / ATT003: part-time timetables (C2), the only C2 pupils in the school.
    part_time: dict[str, Callable[[date, Session], bool]] = {
        "ATT002": lambda day, s: s is PM and day.weekday() in (2, 4),
        "ATT003": lambda day, s: s is PM or day.weekday() == 4,
    }
    for role, wanted in part_time.items():
        p = chosen[role]
        for i in grid.roll(p):
            if i not in grid.y4 and wanted(grid.dates[i], grid.sessions[i]):
                p.entries[i] = Entry("C2", comment="Reduced timetable agreed with parents")

    # ATT004: an EHCP pupil off ill twice in the last four school weeks, after a perfect start.
    p = chosen["ATT004"]
    p.ehcp, p.sen_support = True, False
    recent = window_start_day(grid, EHCP_RECENT_WEEKS)
    first_spell = grid.find_run(2, last - 1, start_min=recent)
    second_spell = grid.find_run(2, first_spell - 2, start_min=recent)
    for start in (first_spell, second_spell):
        fill(p, grid, start, 2, "I")
    finding = ehcp_fall(p, grid)
    assert finding is not None, "ATT004 injection did not produce a fall"
    inj.expected.append(finding)

    # ATT005: a pupil with a social worker, absent one morning, reason never established (O).
    p = chosen["ATT005"]
    p.has_social_worker = True
    d = full_day(last - 12)
    i = session(d, AM)
    inj.amendments.append(
        resolve_n(p, grid, i, "O", d + 5, officer, "No reason given after contact", rng)
    )
    expect("ATT005", p, i)
