"""Injected breaches and their exact expected findings (docs/simulator.md has the table).

Each pupil-level breach sits on its own pupil, who has nothing else unusual: no random absence,
no EHC plan or social worker unless the breach needs one. Where a breach necessarily crosses
another rule's threshold (ten days of unauthorised holiday is also 20 unauthorised sessions in ten
weeks, and more than 10% absence) the other findings are listed too: the rate rules (ATT001,
ATT002, ATT003) are computed for every breach pupil from the marks the generator emitted, with the
semantics documented in docs/simulator.md, so the list is exact by construction.

The pupils of long absence (LAR, ATT) are placed by generate_breaches_absence, the rules of
issue 9 by generate_breaches_more; generate_expected computes the rate rules' findings.
"""

from __future__ import annotations

import random

from registerwatch.schema import Address, ClosureKind, Notification, NotificationKind, Session
from registerwatch.school_age import is_compulsory_school_age
from registerwatch.simulator.generate_breach_plan import BreachPlan, Injection, Staff
from registerwatch.simulator.generate_breaches_absence import place_absence_breaches
from registerwatch.simulator.generate_breaches_more import (
    place_more_breaches,
    reduced_timetable_findings,
)
from registerwatch.simulator.generate_expected import check_intent, rate_findings
from registerwatch.simulator.generate_marks import (
    NotEnoughDataError,
    RegisterFaults,
    SessionGrid,
    london,
    resolve_n,
)
from registerwatch.simulator.generate_people import Entry, PupilDraft
from registerwatch.simulator.model import ExpectedFinding
from registerwatch.upn import ALPHABET

AM, PM = Session.AM, Session.PM

# Pupil roles, one pupil each, in the order they are drawn from the eligible pupils.
PUPIL_ROLES = (
    "MRK001",
    "MRK002",
    "MRK003",
    "MRK004",
    "MRK005",
    "AMD001-reason",
    "AMD001-amender",
    "AMD002",
    "LAR001",
    "LAR001-returned",
    "LAR002",
    "LAR003",
    "LAR003-referred",
    "LAR004",
    "LAR005",
    "ATT001",
    "ATT002",
    "ATT003",
    "ATT004",
    "ATT005",
    "UPN001-a",
    "UPN001-b",
    "UPN002-a",
    "UPN002-b",
    "N-pending",
)
# AMD003 is drawn from the REG002 group (see place_breaches).
ROLE_COUNT = len(PUPIL_ROLES) + 1
# Roles that make no finding: the pupil stays in clean_pupil_ids.
CLEAN_ROLES = frozenset({"N-pending"})
SECOND_SYNC_NOTE = "after apply_second_sync_changes"


def wrong_check_letter(upn: str, rng: random.Random) -> str:
    return rng.choice([c for c in ALPHABET if c != upn[0]]) + upn[1:]


def place_breaches(
    pupils: list[PupilDraft],
    grid: SessionGrid,
    rng: random.Random,
    staff: Staff,
    eligible_years: frozenset[str],
    school_id: str,
    new_address: Address,
) -> Injection:
    """Choose the breach pupils and groups, write their register entries, and say what the
    scan must find. Mutates the chosen pupils' drafts."""
    cal = grid.calendar
    last = grid.last

    full_day = grid.latest_full_day

    # Breach pupils are ordinary pupils of compulsory school age on roll all year, with no
    # flag a rule reads (EHCP, social worker) unless their breach sets it.
    def ordinary(p: PupilDraft) -> bool:
        return (
            p.role is None
            and p.nc_year in eligible_years
            and p.leaving_date is None
            and p.starting_day < cal.first_day
            and not (p.ehcp or p.has_social_worker or p.looked_after)
        )

    ordinary_pupils = [p for p in pupils if ordinary(p)]

    # -- register faults (REG001-REG003): three different groups ----------------------------
    groups = sorted({p.reg_group for p in ordinary_pupils})
    if len(groups) < 3:
        raise ValueError(
            "too few registration groups to inject the register breaches; "
            "generate more pupils or pass inject_breaches=False"
        )
    missing_group, unsaved_group, late_group = rng.sample(groups, 3)
    missing_i = grid.session(full_day(last - 10), PM)
    unsaved_i = grid.session(full_day(last - 12), AM)
    late_i = grid.session(full_day(last - 15), PM)
    assert missing_i is not None and unsaved_i is not None and late_i is not None
    faults = RegisterFaults(
        missing=(missing_group, missing_i),
        unsaved=(unsaved_group, unsaved_i),
        late=(late_group, late_i),
    )
    inj = Injection(faults=faults)
    for rule, (group, i) in (
        ("REG001", (missing_group, missing_i)),
        ("REG002", (unsaved_group, unsaved_i)),
        ("REG003", (late_group, late_i)),
    ):
        inj.expected.append(ExpectedFinding(rule, None, grid.ref(i), grid.ref(i), f"group={group}"))

    # -- breach pupils (none in the group whose register is missing) ----------------------
    candidates = [p for p in ordinary_pupils if p.reg_group != missing_group]
    in_unsaved = [p for p in candidates if p.reg_group == unsaved_group]
    if len(candidates) < ROLE_COUNT:
        raise ValueError(
            f"too few pupils to inject every breach: need {ROLE_COUNT} ordinary "
            f"pupils of compulsory school age, found {len(candidates)}; "
            "generate more pupils or pass inject_breaches=False"
        )
    amd003 = rng.choice(in_unsaved)
    amd003.role = "AMD003"
    candidates.remove(amd003)
    chosen = dict(zip(PUPIL_ROLES, rng.sample(candidates, len(PUPIL_ROLES)), strict=True))
    for role, pupil in chosen.items():
        pupil.role = role

    plan = BreachPlan(grid, rng, inj, staff.attendance, school_id)
    expect, session = plan.expect, plan.session
    officer = plan.officer

    # MRK001: an N left unresolved past the 5th school day after its session.
    p = chosen["MRK001"]
    i = session(full_day(last - 7), AM)
    p.entries[i] = Entry("N")
    due = cal.add_deadline_school_days(grid.dates[i], 5)
    assert due < grid.as_of
    expect("MRK001", p, i, note=f"due={due.isoformat()}")

    # MRK002: a legacy 2006 code (H, authorised holiday) on a 2024-regime date.
    p = chosen["MRK002"]
    i = session(full_day(last - 20), AM)
    p.entries[i] = Entry("H", comment="Holiday agreed")
    expect("MRK002", p, i)

    # MRK003: X on a pupil of compulsory school age.
    p = chosen["MRK003"]
    i = session(full_day(last - 15), PM)
    assert is_compulsory_school_age(p.dob, grid.dates[i])
    p.entries[i] = Entry("X")
    expect("MRK003", p, i)

    # MRK004: a leaver marked present on the next school day (the deletion return was made).
    p = chosen["MRK004"]
    d = last - 25
    while True:  # the next school day must have a morning register that is not Y4
        d = full_day(d)
        after = grid.session(d + 1, AM) if d + 1 <= last else None
        if after is not None and after not in grid.y4:
            break
        d -= 1
    p.leaving_date, p.deletion_ground = grid.days[d], "9(1)(a)"
    p.new_school = "Riverside Academy, Colchester"
    inj.stray_marks.append((p, grid.dates[after], AM, "/"))
    expect("MRK004", p, after)
    inj.notifications.append(
        Notification(
            kind=NotificationKind.DELETION,
            school_id=school_id,
            pupil_id=p.id,
            episode_start=p.leaving_date,
            made_at=london(p.leaving_date, 15, 30),
            channel="email",
            reference=f"DEL-{p.mis_id}",
        )
    )

    # MRK005: an attendance mark on a planned closure (no session, so no register).
    p = chosen["MRK005"]
    planned = sorted(
        (
            c
            for c in cal.calendar.closures
            if c.kind is ClosureKind.PLANNED and cal.first_day <= c.date < grid.as_of
        ),
        key=lambda c: (c.session != "both", c.date),
    )
    if not planned:
        raise NotEnoughDataError("no planned closure before as_of: choose a later as_of")
    closure = planned[0]
    closed = AM if closure.session in ("both", "AM") else PM
    inj.stray_marks.append((p, closure.date, closed, "/" if closed is AM else "\\"))
    inj.expected.append(
        ExpectedFinding(
            "MRK005",
            p.id,
            (closure.date, closed),
            (closure.date, closed),
            f"closure: {closure.reason}",
        )
    )

    # AMD001: two resolved Ns whose amendment record is incomplete.
    p = chosen["AMD001-reason"]
    d = full_day(last - 18)
    i = session(d, AM)
    inj.amendments.append(resolve_n(p, grid, i, "M", d + 1, officer, None, rng))
    expect("AMD001", p, i, note="amendment has no reason")
    p = chosen["AMD001-amender"]
    d = full_day(last - 22)
    i = session(d, AM)
    inj.amendments.append(
        resolve_n(p, grid, i, "I", d + 2, officer, "Parent phoned: unwell", rng, name_missing=True)
    )
    expect("AMD001", p, i, note="amendment has no amender name or position")

    # AMD002 / AMD003: changes made between two syncs (apply_second_sync_changes).
    p = chosen["AMD002"]
    i = session(full_day(last - 3), PM)
    expect("AMD002", p, i, note=f"{SECOND_SYNC_NOTE}: \\ -> M with no amendment record")
    expect("AMD003", amd003, unsaved_i, note=f"{SECOND_SYNC_NOTE}: mark deleted")
    place_absence_breaches(plan, chosen, new_address)

    # UPN001: wrong check letters; UPN002: a UPN keyed twice (a sibling's, say).
    for role in ("UPN001-a", "UPN001-b"):
        p = chosen[role]
        p.upn = wrong_check_letter(p.upn, rng)
        expect("UPN001", p, None)
    first, second = chosen["UPN002-a"], chosen["UPN002-b"]
    second.upn = first.upn
    expect("UPN002", first, None, note=f"shares its UPN with {second.id}")
    expect("UPN002", second, None, note=f"shares its UPN with {first.id}")

    # A clean pupil whose N is still within its 5 school days: resolved in the second sync.
    p = chosen["N-pending"]
    d = full_day(last)
    if grid.n_can_stay_open(d):
        p.entries[session(d, AM)] = Entry("N")

    # The rules added for issue 9, on pupils of their own (generate_breaches_more).
    more = place_more_breaches(plan, pupils, [c for c in candidates if c.role is None])

    # The rate rules for every breach pupil, computed from what was emitted.
    for p in [*chosen.values(), amd003, *more]:
        if p.role in CLEAN_ROLES:
            continue
        inj.expected.extend(rate_findings(p, grid))
    inj.expected.extend(reduced_timetable_findings([*chosen.values(), amd003, *more], grid))
    check_intent(inj.expected, chosen)
    return inj
