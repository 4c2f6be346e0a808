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
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from registerwatch.calendar import SchoolCalendar
from registerwatch.schema import (
    Amendment,
    AmendmentSource,
    Notification,
    NotificationKind,
    School,
    Session,
    Vendor,
)
from registerwatch.simulator.generate_breaches import (
    CLEAN_ROLES,
    Injection,
    Staff,
    place_breaches,
)
from registerwatch.simulator.generate_calendar import build_calendar, default_as_of, term_dates
from registerwatch.simulator.generate_marks import (
    NotEnoughDataError,
    RegisterFaults,
    SessionGrid,
    build_registers,
    emit_marks,
    gc_paused,
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
# The rules that need two syncs to be seen; their expected findings hold only after
# apply_second_sync_changes.
SECOND_SYNC_RULES = frozenset({"AMD002", "AMD003"})
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
    with gc_paused():
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


# -- the second sync --------------------------------------------------------------------------


@dataclass(frozen=True)
class SyncChange:
    """One edit the school makes in its MIS between two syncs.

    ``kind`` "amend" changes the code (``after``), "delete" removes the mark. ``amendment`` says
    whether the MIS also records an amendment for it; ``rule`` is the finding it must cause
    (None: a lawful, recorded change that must cause none).
    """

    kind: Literal["amend", "delete"]
    pupil_id: str
    date: date
    session: Session
    before: str
    after: str | None
    amendment: bool
    rule: str | None


def first_sync_expected_findings(school: GeneratedSchool) -> list[ExpectedFinding]:
    """What a scan after a single sync must report (no AMD002/AMD003 yet)."""
    return [f for f in school.expected_findings if f.rule not in SECOND_SYNC_RULES]


def second_sync_changes(school: GeneratedSchool) -> list[SyncChange]:
    """The edits ``apply_second_sync_changes`` makes, derived from the school alone:

    - AMD002: the mark named by the AMD002 expected finding changes to M, with no amendment;
    - AMD003: the mark named by the AMD003 expected finding is deleted;
    - lawful: the first still-open N of a clean pupil (sorted by pupil, date, session) is
      resolved to I *with* a complete MIS amendment: the scan must report nothing for it.
    """
    marks = school.marks_by_key()
    changes: list[SyncChange] = []
    for f in school.expected_findings:
        if f.rule not in SECOND_SYNC_RULES or f.first_session is None or f.pupil_id is None:
            continue
        day, session = f.first_session
        mark = marks[(f.pupil_id, day, session)]
        if f.rule == "AMD002":
            changes.append(
                SyncChange(
                    "amend",
                    f.pupil_id,
                    day,
                    session,
                    mark.code,
                    "M",
                    amendment=False,
                    rule="AMD002",
                )
            )
        else:
            changes.append(
                SyncChange(
                    "delete",
                    f.pupil_id,
                    day,
                    session,
                    mark.code,
                    None,
                    amendment=False,
                    rule="AMD003",
                )
            )
    pending = sorted(
        (m.pupil_id, m.date, m.session.value)
        for m in school.marks
        if m.code == "N" and m.pupil_id in school.clean_pupil_ids
    )
    if pending:
        pupil_id, day, session_value = pending[0]
        changes.append(
            SyncChange(
                "amend", pupil_id, day, Session(session_value), "N", "I", amendment=True, rule=None
            )
        )
    return changes


def apply_second_sync_changes(school: GeneratedSchool) -> list[SyncChange]:
    """Make the between-syncs edits in ``school`` (call once, after the first sync) and return
    them. Timestamps are fixed instants on ``as_of`` morning, so the result is deterministic.

    With a simulator running, hold the app's lock: ``with app.lock: apply_...(app.school)``.
    """
    if school.as_of is None:
        raise ValueError("the school has no as_of: generate it with generate_school")
    changes = second_sync_changes(school)
    index = {(m.pupil_id, m.date, m.session): k for k, m in enumerate(school.marks)}
    amender = _amender(school)
    edited_at = london(school.as_of, 8, 5)
    deleted: set[int] = set()
    for change in changes:
        k = index[(change.pupil_id, change.date, change.session)]
        if change.kind == "delete":
            deleted.add(k)
            continue
        mark = school.marks[k]
        recorded_at = london(school.as_of, 9, 30) if change.amendment else edited_at
        school.marks[k] = mark.model_copy(
            update={
                "code": change.after,
                "vendor_code": change.after,
                "recorded_at": recorded_at,
                "recorded_by": amender[0] if change.amendment else "School Office",
            }
        )
        if change.amendment:
            school.amendments.append(
                Amendment(
                    pupil_id=change.pupil_id,
                    date=change.date,
                    session=change.session,
                    original_code=change.before,
                    amended_code=change.after,
                    reason="Parent phoned: unwell",
                    amended_at=recorded_at,
                    amended_by_name=amender[0],
                    amended_by_position=amender[1],
                    source=AmendmentSource.MIS,
                    source_ref=f"amd-second-sync-{change.pupil_id}",
                )
            )
    if deleted:
        school.marks[:] = [m for k, m in enumerate(school.marks) if k not in deleted]
    return changes


def _amender(school: GeneratedSchool) -> tuple[str, str]:
    """The member of staff who records most amendments (ties: alphabetical)."""
    counts = Counter(
        (a.amended_by_name, a.amended_by_position)
        for a in school.amendments
        if a.amended_by_name and a.amended_by_position
    )
    if not counts:
        return ("Attendance Officer", "Attendance Officer")
    top = max(counts.values())
    name, position = min(k for k, v in counts.items() if v == top)
    assert name is not None and position is not None
    return name, position
