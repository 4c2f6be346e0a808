"""Generate a realistic, seeded English school with injected breaches and exact ground truth.

``generate_school`` builds what an MIS would hold for one school year up to ``as_of`` (school,
calendar, pupils, registers, marks, amendments, LA returns already made) plus the findings the
compliance scan must report (``expected_findings``) and the pupils it must leave alone
(``clean_pupil_ids``). ``apply_second_sync_changes`` makes the edits that only a second sync can
see (AMD002, AMD003). docs/simulator.md states each rule's assumed semantics and the exact
finding fields.

Determinism: one ``random.Random(seed)`` drives everything, in a fixed order; no clock, no global
random, no iteration over sets or hash order. Every instant is derived from a school date and a
wall-clock time at the school (Europe/London), stored in UTC.

The generator is split by concern:
- generate_calendar: term dates, closures, register times, default as_of
- generate_people: names, UPNs, addresses, contacts, staff, the roster
- generate_marks: the session grid, registers, the mark loop, N resolutions
- generate_patterns: the absence patterns of clean pupils, under a budget
- generate_breaches: the injected breaches and their expected findings
- generate_second_sync: the edits made between two syncs (AMD002, AMD003)
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Literal

from registerwatch.calendar import SchoolCalendar
from registerwatch.gcpause import collector_paused
from registerwatch.schema import (
    Amendment,
    Notification,
    NotificationKind,
    School,
    Vendor,
)
from registerwatch.simulator.generate_breach_plan import Injection, Staff
from registerwatch.simulator.generate_breaches import CLEAN_ROLES, place_breaches
from registerwatch.simulator.generate_calendar import build_calendar, default_as_of, term_dates
from registerwatch.simulator.generate_marks import (
    NotEnoughDataError,
    RegisterFaults,
    SessionGrid,
    build_registers,
    emit_marks,
    london,
)
from registerwatch.simulator.generate_patterns import (
    add_clean_pattern,
    add_routine_entries,
    add_trips,
    add_weekly_provision,
)
from registerwatch.simulator.generate_people import (
    HOME_LA,
    Entry,
    People,
    PupilDraft,
    StaffMember,
    build_roster,
    to_pupil,
)
from registerwatch.simulator.generate_second_sync import (
    SECOND_SYNC_RULES,
    SyncChange,
    apply_second_sync_changes,
    first_sync_expected_findings,
    second_sync_changes,
)
from registerwatch.simulator.model import ExpectedFinding, GeneratedSchool

__all__ = [
    "MIN_SCHOOL_DAYS_FOR_BREACHES",
    "SECOND_SYNC_RULES",
    "NotEnoughDataError",
    "SyncChange",
    "apply_second_sync_changes",
    "first_sync_expected_findings",
    "generate_school",
    "second_sync_changes",
]

Phase = Literal["primary", "secondary"]
# Up to this many pupils a school defaults to primary (R-Y6); more: secondary 11-18.
PRIMARY_MAX_PUPILS = 600
MIN_PUPILS_FOR_BREACHES = 80
# The breaches need room: a 16-day illness, a ten-week penalty window, an EHCP pupil's earlier
# and recent attendance. 50 school days is about ten weeks of term.
MIN_SCHOOL_DAYS_FOR_BREACHES = 50
# Which years hold the breach pupils: of compulsory school age all year (so LAR002/LAR003 and
# MRK003 apply), and not a leaving year (Y6/Y11 leave or turn 16 in June).
BREACH_YEARS: dict[str, frozenset[str]] = {
    "primary": frozenset({"1", "2", "3", "4", "5"}),
    "secondary": frozenset({"7", "8", "9", "10"}),
}
ADMISSION_SHARE = 0.012
LEAVER_SHARE = 0.012
DELETION_GROUNDS = (  # reg 9(1) grounds (SECONDARY short titles)
    ("9(1)(a)", "Registered at another school"),
    ("9(1)(g)", "No longer lives within reasonable distance"),
    ("9(1)(f)", "Parent notified: education otherwise than at school"),
)
NEW_SCHOOLS = (
    "St Peter's Church of England Academy, Witham",
    "Moulsham Park School",
    "Beaulieu Park School",
    "Hylands Academy",
)


def generate_school(
    seed: int = 1,
    pupils: int = 300,
    *,
    school_id: str = "oakfield",
    vendor: str | None = None,
    year: int = 2025,
    as_of: date | None = None,
    inject_breaches: bool = True,
    phase: Phase | None = None,
) -> GeneratedSchool:
    """A seeded synthetic school for the school year starting in ``year`` (2025 -> 2025/26).

    ``pupils`` counts every pupil record, leavers and mid-year admissions included. ``phase``
    defaults to primary (Reception-Y6) up to 600 pupils and secondary (Y7-Y13) above.
    ``as_of`` (default: the first school day of December) is "today, before registration":
    marks cover every school session from the first term day to the school day before it.
    Raises ValueError (``NotEnoughDataError``) when the breaches do not fit.
    """
    with collector_paused():
        return _generate(
            seed,
            pupils,
            school_id=school_id,
            vendor=vendor,
            year=year,
            as_of=as_of,
            inject_breaches=inject_breaches,
            phase=phase,
        )


def _generate(
    seed: int,
    pupils: int,
    *,
    school_id: str,
    vendor: str | None,
    year: int,
    as_of: date | None,
    inject_breaches: bool,
    phase: Phase | None,
) -> GeneratedSchool:
    phase = phase or ("primary" if pupils <= PRIMARY_MAX_PUPILS else "secondary")
    if phase not in BREACH_YEARS:
        raise ValueError(f"phase must be 'primary' or 'secondary', not {phase!r}")
    minimum = MIN_PUPILS_FOR_BREACHES if inject_breaches else 1
    if pupils < minimum:
        raise ValueError(
            f"pupils must be at least {minimum}"
            f"{' to inject every breach' if inject_breaches else ''}; got {pupils}"
        )
    rng = random.Random(seed)
    calendar = build_calendar(school_id, year, phase)
    cal = SchoolCalendar(calendar)
    as_of = as_of or default_as_of(cal, year)
    grid = SessionGrid(cal, as_of)
    if inject_breaches and len(grid.days) < MIN_SCHOOL_DAYS_FOR_BREACHES:
        raise NotEnoughDataError(
            f"as_of {as_of} leaves {len(grid.days)} school days of registers; injecting every "
            f"breach needs {MIN_SCHOOL_DAYS_FOR_BREACHES}: choose a later as_of"
        )

    school = _school(rng, school_id, phase, vendor)
    assert school.laestab is not None
    people = People(rng)
    drafts, tutors = build_roster(
        rng,
        people,
        phase=phase,
        year=year,
        count=pupils,
        school_id=school_id,
        vendor=vendor,
        la=HOME_LA,
        estab=school.laestab[3:],
        first_day=cal.first_day,
        entry_day=lambda y: term_dates(y)[0].start,
    )
    cover = people.staff(6, "Cover supervisor")
    officer, data_manager = people.staff(2, "Attendance Officer")
    data_manager.position = "Data Manager"
    office = StaffMember(name="School Office", position="Administrator")
    notifications = _admissions_and_leavers(
        drafts, grid, rng, people, school_id, BREACH_YEARS[phase]
    )
    add_routine_entries(drafts, grid)

    injection: Injection | None = None
    if inject_breaches:
        injection = place_breaches(
            drafts,
            grid,
            rng,
            Staff(officer, data_manager),
            BREACH_YEARS[phase],
            school_id,
            people.address(),
        )
        notifications.extend(injection.notifications)
    faults = injection.faults if injection else RegisterFaults()
    if faults.missing is not None:
        # Nothing may be planned on the missing register's session for that group's pupils.
        group, i = faults.missing
        for p in drafts:
            if p.reg_group == group:
                p.entries[i] = Entry(grid.default_code[i])

    clean = [p for p in drafts if p.role is None]
    provision = [
        p
        for p in clean
        if p.nc_year in BREACH_YEARS[phase]
        and p.starting_day < cal.first_day
        and p.leaving_date is None
    ]
    if provision:
        add_weekly_provision(rng.choice(provision), grid, weekday=1)
    add_trips(clean, grid, rng)
    amendments: list[Amendment] = []
    for p in clean:
        amendments.extend(add_clean_pattern(p, grid, rng, [officer, data_manager]))
    if injection:
        amendments.extend(injection.amendments)

    registers, saved = build_registers(grid, school_id, tutors, cover, office, rng, faults)
    marks = emit_marks(drafts, grid, saved, faults.missing)
    if injection:
        marks.extend(injection.build_stray_marks(grid, saved))
    expected = sorted(injection.expected if injection else [], key=_finding_key)
    amendments.sort(key=lambda a: (a.pupil_id, a.date, a.session.value))
    notifications.sort(key=lambda n: (n.made_at, n.kind.value, n.pupil_id or ""))
    return GeneratedSchool(
        school=school,
        calendar=calendar,
        pupils=[to_pupil(p, school_id) for p in drafts],
        registers=registers,
        marks=marks,
        amendments=amendments,
        notifications=notifications,
        expected_findings=expected,
        clean_pupil_ids={p.id for p in drafts if p.role is None or p.role in CLEAN_ROLES},
        as_of=as_of,
        seed=seed,
    )


def _finding_key(f: ExpectedFinding) -> tuple[str, str, str]:
    first = f"{f.first_session[0].isoformat()}{f.first_session[1].value}" if f.first_session else ""
    return (f.rule, f.pupil_id or "", first)


def _school(rng: random.Random, school_id: str, phase: str, vendor: str | None) -> School:
    title = school_id.replace("-", " ").replace("_", " ").title()
    if phase == "primary":
        # DfE numbering: 2xxx establishments are primary schools; 11xxxx URNs maintained ones.
        name, urn, estab = (
            f"{title} Primary School",
            rng.randrange(114000, 116000),
            rng.randrange(2000, 3000),
        )
    else:
        # 4xxx are secondary; 13xxxx-14xxxx URNs are academies.
        name, urn, estab = (
            f"{title} Academy",
            rng.randrange(136000, 150000),
            rng.randrange(4000, 5000),
        )
    return School(
        id=school_id,
        urn=f"{urn}",
        laestab=f"{HOME_LA}{estab}",
        name=name,
        la_code=HOME_LA,
        phase=phase,
        vendor=Vendor(vendor) if vendor else None,
    )


def _admissions_and_leavers(
    drafts: list[PupilDraft],
    grid: SessionGrid,
    rng: random.Random,
    people: People,
    school_id: str,
    years: frozenset[str],
) -> list[Notification]:
    """A few clean pupils who joined or left during the year, with their returns made on time
    (new-pupil: reg 13(1), by the end of the fifth day; deletion: reg 13(4), by the deletion)."""
    cal = grid.calendar
    pool = [
        p
        for p in drafts
        if p.nc_year in years
        and p.starting_day < cal.first_day
        and not (p.ehcp or p.has_social_worker)
    ]
    n_admit = max(2, round(ADMISSION_SHARE * len(drafts)))
    n_leave = max(2, round(LEAVER_SHARE * len(drafts)))
    if len(pool) < n_admit + n_leave:
        return []
    chosen = rng.sample(pool, n_admit + n_leave)
    notifications: list[Notification] = []
    last = grid.last
    for p in chosen[:n_admit]:
        p.starting_day = grid.days[rng.randint(min(5, last), max(0, last - 6))]
        made = p.starting_day + timedelta(days=rng.randint(0, 2))
        while made.weekday() > 4:  # the office sends returns on weekdays (still by day 5)
            made += timedelta(days=1)
        notifications.append(
            Notification(
                kind=NotificationKind.NEW_PUPIL,
                school_id=school_id,
                pupil_id=p.id,
                episode_start=p.starting_day,
                made_at=london(made, 16, rng.randrange(0, 60)),
                channel="LA portal",
                reference=f"NP-{p.mis_id}",
            )
        )
    for p in chosen[n_admit:]:
        p.leaving_date = grid.days[rng.randint(min(10, last), max(0, last - 3))]
        ground, _title = rng.choice(DELETION_GROUNDS)
        p.deletion_ground = ground
        if ground == "9(1)(a)":
            p.new_school = rng.choice(NEW_SCHOOLS)
        if ground == "9(1)(g)":
            p.future_address = people.address()
        notifications.append(
            Notification(
                kind=NotificationKind.DELETION,
                school_id=school_id,
                pupil_id=p.id,
                episode_start=p.leaving_date,
                made_at=london(p.leaving_date, 15, rng.randrange(60)),
                channel="email",
                reference=f"DEL-{p.mis_id}",
            )
        )
    return notifications
