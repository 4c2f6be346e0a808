"""An independent, deliberately plain reading of the rule semantics in docs/simulator.md.

The generator's ``expected_findings`` must equal what ``reference_scan`` finds, and it must find
nothing on ``clean_pupil_ids``: that is the contract the real rules are tested against.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from datetime import date, timedelta

from registerwatch.calendar import LONDON, SchoolCalendar
from registerwatch.codes import lookup, valid_on
from registerwatch.schema import (
    SESSION_ORDER,
    AmendmentSource,
    ClosureKind,
    Mark,
    NotificationKind,
    Pupil,
    Session,
)
from registerwatch.school_age import is_compulsory_school_age
from registerwatch.simulator.model import ExpectedFinding, GeneratedSchool
from registerwatch.upn import check_upn

AM, PM = Session.AM, Session.PM
DESIGN_RULES = {
    "REG001",
    "REG002",
    "REG003",
    "MRK001",
    "MRK002",
    "MRK003",
    "MRK004",
    "MRK005",
    "AMD001",
    "AMD002",
    "AMD003",
    "LAR001",
    "LAR002",
    "LAR003",
    "LAR004",
    "LAR005",
    "ATT001",
    "ATT002",
    "ATT003",
    "ATT004",
    "ATT005",
    "UPN001",
    "UPN002",
    # issue 9 (ATT007 reports nothing until a school sets its own triggers)
    "MRK006",
    "MRK007",
    "MRK008",
    "ATT006",
    "LAR006",
    "REG004",
}
UNAUTHORISED = {"G", "N", "O", "U"}
PENALTY_CODES = {"G", "O", "U"}
Key = tuple[str, str | None, tuple[date, Session] | None, tuple[date, Session] | None]


# -- an independent reading of docs/simulator.md -------------------------------------------


def reference_scan(school: GeneratedSchool) -> set[Key]:
    cal = SchoolCalendar(school.calendar)
    assert school.as_of is not None
    as_of = school.as_of
    end = as_of - timedelta(days=1)
    found: set[Key] = set()

    def add(
        rule: str,
        pupil: str | None,
        first: tuple[date, Session] | None = None,
        last: tuple[date, Session] | None = None,
    ) -> None:
        found.add((rule, pupil, first, last))

    pupils = {p.id: p for p in school.pupils}
    marks = {(m.pupil_id, m.date, m.session): m for m in school.marks}
    by_pupil: dict[str, list[Mark]] = defaultdict(list)
    for m in sorted(school.marks, key=lambda m: (m.date, SESSION_ORDER[m.session])):
        by_pupil[m.pupil_id].append(m)
    notes: dict[tuple[str, NotificationKind], list] = defaultdict(list)
    for n in school.notifications:
        notes[(n.pupil_id, n.kind)].append(n)

    # UPN001 / UPN002
    upns = Counter(p.upn.strip().upper() for p in school.pupils if p.upn)
    for p in school.pupils:
        if not check_upn(p.upn).valid:
            add("UPN001", p.id)
        if p.upn and upns[p.upn.strip().upper()] > 1:
            add("UPN002", p.id)

    # REG001-REG003
    registers = {(r.group, r.date, r.session): r for r in school.registers}
    members: dict[str, list[Pupil]] = defaultdict(list)
    for p in school.pupils:
        members[p.reg_group].append(p)
    marked_in: dict[tuple[date, Session], set[str]] = defaultdict(set)
    for pupil_id, day, session in marks:
        marked_in[(day, session)].add(pupil_id)
    for day, session in cal.school_sessions(cal.first_day, end):
        marked_now = marked_in[(day, session)]
        for group, people in members.items():
            on_roll = [p.id for p in people if p.on_roll(day)]
            if not on_roll:
                continue
            register = registers.get((group, day, session))
            marked = [pid for pid in on_roll if pid in marked_now]
            ref = (day, session)
            if register is None:
                if not marked:
                    add("REG001", None, ref, ref)
                continue
            if register.completed_at is None or len(marked) < len(on_roll):
                add("REG002", None, ref, ref)
            if register.completed_at is not None and register.completed_at > cal.register_closes(
                day, session
            ):
                add("REG003", None, ref, ref)

    # MRK001-MRK005
    # MRK001: consecutive school sessions of overdue N form one finding; the fifth school day
    # does not count a day the whole site was closed unexpectedly (rule-corrections.md §1)
    all_sessions = cal.school_sessions(cal.first_day, end)
    number = {s: k for k, s in enumerate(all_sessions)}
    overdue: dict[str, list[tuple[date, Session]]] = defaultdict(list)
    for m in sorted(school.marks, key=lambda m: (m.date, SESSION_ORDER[m.session])):
        if m.code == "N" and cal.add_deadline_school_days(m.date, 5) < as_of:
            overdue[m.pupil_id].append((m.date, m.session))
    for pupil_id, refs in overdue.items():
        run = [refs[0]]
        for ref in [*refs[1:], None]:
            if (
                ref is not None
                and ref in number
                and run[-1] in number
                and number[ref] == number[run[-1]] + 1
            ):
                run.append(ref)
                continue
            add("MRK001", pupil_id, run[0], run[-1])
            if ref is not None:
                run = [ref]
    for m in school.marks:
        p = pupils[m.pupil_id]
        ref = (m.date, m.session)
        if not valid_on(m.code, m.date):
            add("MRK002", p.id, ref, ref)
        if m.code == "X" and is_compulsory_school_age(p.dob, m.date):
            add("MRK003", p.id, ref, ref)
        if not p.on_roll(m.date) or m.code == "Z":
            add("MRK004", p.id, ref, ref)
        closure = cal.closure(m.date, m.session)
        if m.code == "#" and closure is None:
            add("MRK005", p.id, ref, ref)
        if closure is not None and closure.kind is ClosureKind.PLANNED and m.code != "#":
            add("MRK005", p.id, ref, ref)
        if closure is not None and closure.kind is ClosureKind.UNEXPECTED and m.code != "Y4":
            add("MRK005", p.id, ref, ref)

    # AMD001
    for a in school.amendments:
        if a.source is AmendmentSource.MIS and None in (
            a.original_code,
            a.amended_code,
            a.reason,
            a.amended_at,
            a.amended_by_name,
            a.amended_by_position,
        ):
            add("AMD001", a.pupil_id, (a.date, a.session), (a.date, a.session))

    school_days = cal.school_days(cal.first_day, end)
    sessions_on = {day: cal.sessions_on(day) for day in school_days}
    sessions = cal.school_sessions(cal.first_day, end)
    session_no = {s: k for k, s in enumerate(sessions)}
    penalty_start = cal.rolling_school_weeks_start(end, 10)
    recent_start = cal.rolling_school_weeks_start(end, 4)
    junior = min((p.nc_year for p in school.pupils), key=lambda y: 0 if y == "R" else int(y))
    for p in school.pupils:
        own = [m for m in by_pupil[p.id] if p.on_roll(m.date) and (m.date, m.session) in session_no]
        code_of = {(m.date, m.session): m.code for m in own}

        # LAR001
        ill = [m for m in own if m.code == "I"]
        if len({m.date for m in ill}) >= 15 and not any(
            ill[0].date <= n.episode_start <= ill[-1].date
            for n in notes[(p.id, NotificationKind.SICKNESS)]
        ):
            add("LAR001", p.id, (ill[0].date, ill[0].session), (ill[-1].date, ill[-1].session))

        # LAR002 / LAR003: runs of whole school days
        for rule, codes, kind in (
            ("LAR002", UNAUTHORISED, NotificationKind.CONTINUOUS_ABSENCE),
            ("LAR003", {"N"}, NotificationKind.CME),
        ):
            run: list[date] = []
            for day in [*school_days, None]:
                whole = day is not None and all(
                    code_of.get((day, s)) in codes for s in sessions_on[day]
                )
                if whole:
                    run.append(day)
                    continue
                if (
                    len(run) >= 10
                    and is_compulsory_school_age(p.dob, run[0])
                    and not any(run[0] <= n.episode_start <= run[-1] for n in notes[(p.id, kind)])
                ):
                    add(
                        rule,
                        p.id,
                        (run[0], sessions_on[run[0]][0]),
                        (run[-1], sessions_on[run[-1]][-1]),
                    )
                run = []

        # LAR004 / LAR005
        start = p.starting_day
        if (
            start is not None
            and start >= cal.first_day
            and not (start == cal.school_year_start(cal.first_day.year) and p.nc_year == junior)
        ):
            due = start + timedelta(days=5)
            if as_of > due and not any(
                n.made_at.astimezone(LONDON).date() <= due
                for n in notes[(p.id, NotificationKind.NEW_PUPIL)]
            ):
                add("LAR004", p.id)
        if (
            p.leaving_date is not None
            and p.leaving_date < as_of
            and not notes[(p.id, NotificationKind.DELETION)]
        ):
            add("LAR005", p.id)

        # ATT001-ATT005
        possible = [m for m in own if lookup(m.code, m.date).possible]
        # G, O and U count (WTISA as quoted by Wenlock 5.2); reaching 10 only with N is a
        # provisional (info) finding
        unauth = [m for m in own if m.code in PENALTY_CODES and m.date >= penalty_start]
        if len(unauth) < 10:
            unauth = [m for m in own if m.code in UNAUTHORISED and m.date >= penalty_start]
        if len(unauth) >= 10:
            add(
                "ATT001",
                p.id,
                (unauth[0].date, unauth[0].session),
                (unauth[-1].date, unauth[-1].session),
            )
        if possible:
            absent = sum(lookup(m.code, m.date).is_absence for m in possible)
            span = (
                (possible[0].date, possible[0].session),
                (possible[-1].date, possible[-1].session),
            )
            if absent * 10 >= len(possible):
                add("ATT002", p.id, *span)
            if absent * 2 >= len(possible):
                add("ATT003", p.id, *span)
        if p.ehcp:
            earlier = [m for m in possible if m.date < recent_start]
            recent = [m for m in possible if m.date >= recent_start]
            if len(earlier) >= 20 and recent:

                def rate(ms: list[Mark]) -> float:
                    return 100.0 * sum(lookup(m.code, m.date).attendance for m in ms) / len(ms)

                if rate(earlier) - rate(recent) >= 10.0:
                    add(
                        "ATT004",
                        p.id,
                        (recent[0].date, recent[0].session),
                        (recent[-1].date, recent[-1].session),
                    )
        if p.has_social_worker:
            unexplained = [m for m in own if m.code in ("N", "O")]
            run_marks: list[Mark] = []
            for m in [*unexplained, None]:
                if m is not None and (
                    not run_marks
                    or session_no[(m.date, m.session)]
                    == session_no[(run_marks[-1].date, run_marks[-1].session)] + 1
                ):
                    run_marks.append(m)
                    continue
                if run_marks:
                    add(
                        "ATT005",
                        p.id,
                        (run_marks[0].date, run_marks[0].session),
                        (run_marks[-1].date, run_marks[-1].session),
                    )
                run_marks = [m] if m is not None else []
    _issue9_rules(school, cal, end, by_pupil, add)
    return found


def _issue9_rules(
    school: GeneratedSchool,
    cal: SchoolCalendar,
    end: date,
    by_pupil: dict[str, list[Mark]],
    add: Callable[..., None],
) -> None:
    """MRK006-MRK008, ATT006, LAR006 and REG004 read from docs/rules, at the default settings
    (a 30-minute window unless the calendar says otherwise; 6 school weeks; day 6; 20 days;
    3 days). Runs of days: whole days of the code, any other code or a gap ends the run."""
    days = cal.school_days(cal.first_day, end)
    day_no = {d: n for n, d in enumerate(days)}
    weeks = cal.school_weeks(cal.first_day, cal.last_day)
    window = school.calendar.register_times.close_after_minutes

    def day_runs(own: list[Mark], codes: set[str], until: date = end) -> list[list[date]]:
        by_day: dict[date, list[str]] = defaultdict(list)
        for m in own:
            if m.date <= until and m.date in day_no:
                by_day[m.date].append(m.code)
        runs: list[list[date]] = []
        for d in days:
            if d > until:
                break
            full = by_day.get(d, [])
            if full and len(full) == len(cal.sessions_on(d)) and set(full) <= codes:
                if runs and runs[-1] and day_no[runs[-1][-1]] == day_no[d] - 1:
                    runs[-1].append(d)
                else:
                    runs.append([d])
            elif runs and runs[-1]:
                runs.append([])
        return [r for r in runs if r]

    def ref(m: Mark) -> tuple[date, Session]:
        return (m.date, m.session)

    for p in school.pupils:
        own = [m for m in by_pupil.get(p.id, []) if p.on_roll(m.date) and m.date <= end]
        for m in own:  # MRK006
            if (
                m.code in ("L", "U")
                and m.minutes_late is not None
                and (m.code == "L") == (m.minutes_late > window)
            ):
                add("MRK006", p.id, ref(m), ref(m))
        wrong = [m for m in own if (m.code, m.session) in (("/", PM), ("\\", AM))]
        if wrong:  # MRK007
            add("MRK007", p.id, ref(wrong[0]), ref(wrong[-1]))
        c2 = [m for m in own if m.code == "C2"]
        for m in c2:  # MRK008, not of compulsory school age (one-session runs here)
            if not is_compulsory_school_age(p.dob, m.date, cal.school_year_start):
                add("MRK008", p.id, ref(m), ref(m))
        episode: list[Mark] = []
        seen: list[int] = []
        for m in [
            *[m for m in c2 if is_compulsory_school_age(p.dob, m.date, cal.school_year_start)],
            None,
        ]:
            week = None if m is None else sum(1 for w in weeks if w <= m.date) - 1
            if m is not None and seen and week - seen[-1] in (0, 1):
                episode.append(m)
                if week != seen[-1]:
                    seen.append(week)
                continue
            if len(seen) > 6:
                add("MRK008", p.id, ref(episode[0]), ref(episode[-1]))
            episode, seen = ([m], [week]) if m is not None else ([], [])
        for run in day_runs(own, {"E"}):  # ATT006
            if len(run) >= 6:
                add("ATT006", p.id, (run[5], AM), (run[-1], PM))
        if p.leaving_date is not None and p.deletion_ground == "9(1)(i)":  # LAR006
            longest = max(
                (len(r) for r in day_runs(own, {"G", "N", "O"}, p.leaving_date)), default=0
            )
            if longest < 20:
                add("LAR006", p.id)
        if p.leaving_date is not None and p.deletion_ground == "9(1)(a)" and not p.new_school:
            add("LAR006", p.id)
        if (
            p.starting_day is not None
            and p.starting_day >= cal.first_day
            and is_compulsory_school_age(p.dob, p.starting_day, cal.school_year_start)
        ):
            for run in day_runs(own, {"N", "O"}):  # REG004
                if run[0] == p.starting_day and len(run) >= 3:
                    add("REG004", p.id, (run[0], AM), (run[-1], PM))


def between_syncs(before: list[Mark], school: GeneratedSchool) -> set[Key]:
    """AMD002 / AMD003 from two snapshots of the marks, as the sync ledger would see them."""
    after = school.marks_by_key()
    recorded = {
        (a.pupil_id, a.date, a.session, a.original_code, a.amended_code)
        for a in school.amendments
        if a.source is AmendmentSource.MIS
    }
    found: set[Key] = set()
    for m in before:
        key = (m.pupil_id, m.date, m.session)
        ref = (m.date, m.session)
        now = after.get(key)
        if now is None:
            found.add(("AMD003", m.pupil_id, ref, ref))
        elif now.code != m.code and (*key, m.code, now.code) not in recorded:
            found.add(("AMD002", m.pupil_id, ref, ref))
    return found


def keys(findings: Iterable[ExpectedFinding]) -> set[Key]:
    return {(f.rule, f.pupil_id, f.first_session, f.last_session) for f in findings}
