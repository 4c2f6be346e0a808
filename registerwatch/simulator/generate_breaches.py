"""Injected breaches and their exact expected findings (docs/simulator.md has the table).

Each pupil-level breach sits on its own pupil, who has nothing else unusual: no random absence,
no EHC plan or social worker unless the breach needs one. Where a breach necessarily crosses
another rule's threshold (ten days of unauthorised holiday is also 20 unauthorised sessions in ten
weeks, and more than 10% absence) the other findings are listed too: the rate rules (ATT001,
ATT002, ATT003) are computed for every breach pupil from the marks the generator emitted, with the
semantics documented in docs/simulator.md, so the list is exact by construction.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

from registerwatch.codes import lookup
from registerwatch.schema import (
    Address,
    Amendment,
    ClosureKind,
    Mark,
    Notification,
    NotificationKind,
    Session,
)
from registerwatch.school_age import is_compulsory_school_age
from registerwatch.simulator.generate_breaches_more import (
    place_more_breaches,
    reduced_timetable_findings,
)
from registerwatch.simulator.generate_marks import (
    GroupRegisters,
    NotEnoughDataError,
    RegisterFaults,
    SessionGrid,
    london,
    resolve_n,
)
from registerwatch.simulator.generate_people import Entry, PupilDraft, StaffMember
from registerwatch.simulator.model import ExpectedFinding
from registerwatch.upn import ALPHABET

AM, PM = Session.AM, Session.PM
UNAUTHORISED = frozenset("GNOU")
PENALTY_CODES = frozenset("GOU")  # WTISA as quoted by Wenlock 5.2

# Rolling windows, in school weeks, ending with the week of the last school day before as_of.
PENALTY_WINDOW_WEEKS = 10  # ATT001 (SI 2024/210, WTISA national framework: SECONDARY)
# INFERRED (no source defines "attendance falls"): ATT004 compares the last 4 school weeks with
# the rest of the school year and fires on a fall of 10 percentage points or more, when the
# earlier period has at least 20 possible sessions.
EHCP_RECENT_WEEKS = 4
EHCP_FALL_POINTS = 10.0
EHCP_MIN_EARLIER_SESSIONS = 20

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
# marks the MRK001 findings that come with the LAR003 breach (its N run), not MRK001's own pupil
CME_RUN_NOTE = "N of the LAR003 run"


@dataclass
class Injection:
    faults: RegisterFaults
    amendments: list[Amendment] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)
    expected: list[ExpectedFinding] = field(default_factory=list)
    # off-grid marks, built once the registers exist: (pupil, date, session, code)
    stray_marks: list[tuple[PupilDraft, date, Session, str]] = field(default_factory=list)

    def build_stray_marks(
        self, grid: SessionGrid, registers: dict[str, GroupRegisters]
    ) -> list[Mark]:
        marks = []
        for pupil, day, session, code in self.stray_marks:
            i = grid.index.get((day, session))
            if i is not None:  # a school session (MRK004): recorded with the group's register
                group = registers[pupil.reg_group]
                recorded_at, recorded_by = group.saved[i], group.takers[i]
            else:  # a planned closure (MRK005): typed in by someone in the office
                recorded_at, recorded_by = london(day, 9, 5), "Office"
            marks.append(
                Mark(
                    pupil_id=pupil.id,
                    date=day,
                    session=session,
                    code=code,
                    vendor_code=code,
                    recorded_at=recorded_at,
                    recorded_by=recorded_by,
                )
            )
        return marks


def _ref(grid: SessionGrid, i: int) -> tuple[date, Session]:
    return grid.ref(i)


def window_start_day(grid: SessionGrid, weeks: int) -> int:
    """First data day inside the ``weeks`` school weeks ending with as_of - 1 day's week."""
    monday = grid.calendar.rolling_school_weeks_start(grid.as_of - timedelta(days=1), weeks)
    for d, day in enumerate(grid.days):
        if day >= monday:
            return d
    return grid.last


def pupil_codes(pupil: PupilDraft, grid: SessionGrid) -> list[tuple[int, str]]:
    """(session index, code) of the pupil's marks on school sessions while on roll."""
    entries, default = pupil.entries, grid.default_code
    return [(i, entries[i].code if i in entries else default[i]) for i in grid.roll(pupil)]


def rate_findings(pupil: PupilDraft, grid: SessionGrid) -> list[ExpectedFinding]:
    """ATT001, ATT002 and ATT003 for one pupil, exactly as docs/simulator.md defines them."""
    found: list[ExpectedFinding] = []
    codes = pupil_codes(pupil, grid)
    possible = [(i, c) for i, c in codes if lookup(c, grid.dates[i]).possible]
    absent = sum(1 for i, c in possible if lookup(c, grid.dates[i]).is_absence)
    start = window_start_day(grid, PENALTY_WINDOW_WEEKS)
    # G, O and U count; N is provisional: reaching 10 only with N is an info finding
    unauthorised = [i for i, c in codes if c in PENALTY_CODES and grid.day_of[i] >= start]
    with_n = [i for i, c in codes if c in UNAUTHORISED and grid.day_of[i] >= start]
    counted = unauthorised if len(unauthorised) >= 10 else with_n
    if len(counted) >= 10:
        found.append(
            ExpectedFinding(
                "ATT001",
                pupil.id,
                _ref(grid, counted[0]),
                _ref(grid, counted[-1]),
                f"{len(counted)} unauthorised sessions in "
                f"{PENALTY_WINDOW_WEEKS} school weeks"
                + ("" if counted is unauthorised else " (N provisional)"),
            )
        )
    if possible:
        rate = 100.0 * absent / len(possible)
        span = (_ref(grid, possible[0][0]), _ref(grid, possible[-1][0]))
        if rate >= 10.0:
            found.append(
                ExpectedFinding(
                    "ATT002", pupil.id, *span, f"absence {rate:.1f}% of {len(possible)} sessions"
                )
            )
        if rate >= 50.0:
            found.append(
                ExpectedFinding(
                    "ATT003", pupil.id, *span, f"absence {rate:.1f}% of {len(possible)} sessions"
                )
            )
    return found


def n_overdue_runs(grid: SessionGrid, ids: list[int]) -> list[tuple[int, int, date]]:
    """MRK001's findings for consecutive N sessions ``ids``: runs of sessions past their
    deadline (error) or due on as_of (warning), each with its first session's due date."""
    runs: list[tuple[int, int, date]] = []
    status: str | None = None
    for i in ids:
        due = grid.calendar.add_deadline_school_days(grid.dates[i], 5)
        now = "error" if grid.as_of > due else "warning" if grid.as_of == due else None
        if now is not None and now == status:
            runs[-1] = (runs[-1][0], i, runs[-1][2])
        elif now is not None:
            runs.append((i, i, due))
        status = now
    return runs


def ehcp_fall(pupil: PupilDraft, grid: SessionGrid) -> ExpectedFinding | None:
    """ATT004 (INFERRED semantics, see EHCP_* above)."""
    start = window_start_day(grid, EHCP_RECENT_WEEKS)
    earlier: list[int] = []
    recent: list[int] = []
    for i, code in pupil_codes(pupil, grid):
        row = lookup(code, grid.dates[i])
        if row.possible:
            (recent if grid.day_of[i] >= start else earlier).append(i)
    if len(earlier) < EHCP_MIN_EARLIER_SESSIONS or not recent:
        return None

    def rate(ids: list[int]) -> float:
        attended = 0
        for i in ids:
            code = pupil.entries[i].code if i in pupil.entries else grid.default_code[i]
            attended += lookup(code, grid.dates[i]).attendance
        return 100.0 * attended / len(ids)

    before, now = rate(earlier), rate(recent)
    if before - now < EHCP_FALL_POINTS:
        return None
    return ExpectedFinding(
        "ATT004",
        pupil.id,
        _ref(grid, recent[0]),
        _ref(grid, recent[-1]),
        f"attendance {before:.1f}% before, {now:.1f}% in the last {EHCP_RECENT_WEEKS} school weeks",
    )


def wrong_check_letter(upn: str, rng: random.Random) -> str:
    return rng.choice([c for c in ALPHABET if c != upn[0]]) + upn[1:]


@dataclass
class Staff:
    attendance: StaffMember
    data_manager: StaffMember


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
        inj.expected.append(
            ExpectedFinding(rule, None, _ref(grid, i), _ref(grid, i), f"group={group}")
        )

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

    def expect(
        rule: str, pupil: PupilDraft, first: int | None, last_: int | None = None, note: str = ""
    ) -> None:
        inj.expected.append(
            ExpectedFinding(
                rule,
                pupil.id,
                None if first is None else _ref(grid, first),
                None if first is None else _ref(grid, first if last_ is None else last_),
                note,
            )
        )

    def session(d: int, s: Session) -> int:
        i = grid.session(d, s)
        assert i is not None and i not in grid.y4
        return i

    officer = staff.attendance
    penalty_start = window_start_day(grid, PENALTY_WINDOW_WEEKS)

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

    # LAR001: 16 school days of illness, no sickness return.
    p = chosen["LAR001"]
    start = grid.find_run(16, last - 3)
    ids = _fill(p, grid, start, 16, "I")
    expect("LAR001", p, ids[0], ids[-1], note="16 school days of I")
    # ... and the same with the return made: not a LAR001 breach.
    p = chosen["LAR001-returned"]
    try:
        start = grid.find_run(16, last - 22)
    except NotEnoughDataError:
        start = grid.find_run(16, last - 3)
    _fill(p, grid, start, 16, "I")
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
    ids = _fill(p, grid, start, 10, "G", comment="Holiday abroad, not agreed")
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
        _fill(p, grid, start, 2, "I")
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
    more = place_more_breaches(
        pupils,
        [c for c in candidates if c.role is None],
        grid,
        inj.expected,
        inj.notifications,
        school_id,
        full_day,
    )

    # The rate rules for every breach pupil, computed from what was emitted.
    for p in [*chosen.values(), amd003, *more]:
        if p.role in CLEAN_ROLES:
            continue
        inj.expected.extend(rate_findings(p, grid))
    inj.expected.extend(reduced_timetable_findings([*chosen.values(), amd003, *more], grid))
    _check_intent(inj.expected, chosen)
    return inj


def _fill(
    pupil: PupilDraft,
    grid: SessionGrid,
    start: int,
    days: int,
    code: str,
    comment: str | None = None,
) -> list[int]:
    ids = [i for d in range(start, start + days) for i in grid.day_sessions[d]]
    for i in ids:
        pupil.entries[i] = Entry(code, comment=comment)
    return ids


def _check_intent(expected: list[ExpectedFinding], chosen: dict[str, PupilDraft]) -> None:
    """Guard the design: each rate-rule pupil crosses the threshold it was built for and stays
    under the ones it was built to stay under. (Whether a long absence also reaches 10% depends
    on how much of the year as_of covers; rate_findings lists that either way.)"""
    rules: dict[str, set[str]] = {}
    for f in expected:
        if f.pupil_id is not None:
            rules.setdefault(f.pupil_id, set()).add(f.rule)
    # role: (rules it must produce, rules it must not produce)
    design = {
        "ATT001": ({"ATT001"}, {"ATT003"}),
        "ATT002": ({"ATT002"}, {"ATT001", "ATT003"}),
        "ATT003": ({"ATT002", "ATT003"}, {"ATT001"}),
        "ATT004": ({"ATT004"}, {"ATT001", "ATT002", "ATT003"}),
        "LAR002": ({"LAR002", "ATT001"}, {"ATT003"}),
        "LAR003": ({"LAR003", "ATT001", "MRK001"}, {"ATT003"}),
        "LAR003-referred": ({"ATT001"}, {"ATT003"}),
    }
    for role, (must, must_not) in design.items():
        got = rules.get(chosen[role].id, set())
        if not must <= got or got & must_not:
            raise AssertionError(
                f"breach pupil {role} would produce {sorted(got)}: designed "
                f"for {sorted(must)} and none of {sorted(must_not)}"
            )
