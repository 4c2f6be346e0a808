"""Absence patterns of clean pupils: realistic, and kept clear of every rule's threshold.

A clean pupil must produce no finding at all, whatever reasonable reading a rule author takes, so
each clean pupil's events are placed under a budget with a wide margin:
- absence (authorised + unauthorised possible sessions) at most 7.5% of possible sessions
  (persistent absence starts at 10%); pupils with an EHC plan at most 2 absent sessions, so
  their attendance can never fall by 10 points between periods (ATT004);
- at most 6 unauthorised sessions (G N O U) in total (penalty threshold: 10 in 10 weeks);
- illness spells of 1-4 school days and at most 8 days of I in total (sickness return: 15);
- one school day free between events, so spells never join into longer runs;
- an N is resolved 1-3 school days later (an N still open at ``as_of`` is under 4 school days
  old; the limit is 5), and pupils with a social worker get no N or O at all (ATT005).
The clean population is therefore healthier than the national one (about 7% absence): the
breaches are carried by the injected pupils, and the ground truth stays exact.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from registerwatch.schema import Amendment, Session
from registerwatch.school_age import is_compulsory_school_age
from registerwatch.simulator.generate_marks import SessionGrid, resolve_n
from registerwatch.simulator.generate_people import Entry, PupilDraft, StaffMember

ABSENCE_SHARE = 0.075
EHCP_ABSENCE_SESSIONS = 2
MAX_UNAUTHORISED = 6
MAX_ILLNESS_DAYS = 8
MAX_SPELL_DAYS = 4
EVENTS_PER_WEEK = 0.35

# Possible sessions counted as absence (codes.py: authorised or unauthorised) that this module
# emits; L, K, V, P and B count as attendance and X as not possible.
ABSENCE_CODES = frozenset({"I", "M", "C", "R", "E", "G", "N", "O", "U"})
UNAUTHORISED = frozenset("GNOU")

# (event, weight): what happens to a pupil in an ordinary school week.
EVENTS = (
    ("illness", 40),
    ("late", 18),
    ("medical", 10),
    ("unexplained", 10),
    ("offsite", 8),
    ("late_after_close", 4),
    ("holiday", 4),
    ("religious", 3),
    ("suspension", 1),
)
N_OUTCOMES = (("I", 55), ("M", 15), ("C", 10), ("O", 20))
N_REASONS = {
    "I": (
        "Parent phoned: unwell",
        "Mother emailed: sickness bug",
        "Carer called: high temperature",
    ),
    "M": ("Dental appointment letter seen", "Hospital appointment confirmed by parent"),
    "C": ("Family bereavement: leave agreed by headteacher",),
    "O": ("Reason given not accepted: unauthorised", "No reason given after contact"),
}
# Non-CSA pupils who are not required to attend some sessions (X): Reception's part-time first
# fortnight, sixth-formers' timetabled private study afternoons (weekday numbers).
RECEPTION_PART_TIME_DAYS = 10
SIXTH_FORM_STUDY_AFTERNOON = {"12": 2, "13": 4}


def add_routine_entries(pupils: list[PupilDraft], grid: SessionGrid) -> None:
    """X where a non-CSA pupil is not required to attend (never on a CSA pupil: MRK003)."""
    for pupil in pupils:
        if pupil.nc_year == "R":
            wanted = [
                i
                for d in range(min(RECEPTION_PART_TIME_DAYS, len(grid.days)))
                for i in grid.day_sessions[d]
                if grid.sessions[i] is Session.PM
            ]
        elif pupil.nc_year in SIXTH_FORM_STUDY_AFTERNOON:
            weekday = SIXTH_FORM_STUDY_AFTERNOON[pupil.nc_year]
            wanted = [
                i
                for i in range(len(grid))
                if grid.sessions[i] is Session.PM and grid.dates[i].weekday() == weekday
            ]
        else:
            continue
        roll = grid.roll(pupil)
        for i in wanted:
            if i in roll and i not in grid.y4 and i not in pupil.entries:
                if is_compulsory_school_age(pupil.dob, grid.dates[i]):
                    raise AssertionError(f"X planned for a CSA pupil {pupil.id} on {grid.dates[i]}")
                pupil.entries[i] = Entry("X")


def add_weekly_provision(pupil: PupilDraft, grid: SessionGrid, weekday: int) -> None:
    """K every ``weekday``: a pupil attending LA-arranged provision one day a week."""
    for i in grid.roll(pupil):
        if grid.dates[i].weekday() == weekday and i not in grid.y4:
            pupil.entries[i] = Entry("K", comment="Attending the LA's vocational provision")


def add_trips(pupils: list[PupilDraft], grid: SessionGrid, rng: random.Random) -> None:
    """One educational visit (V, both sessions) per year group for about a third of its pupils."""
    years = sorted({p.nc_year for p in pupils}, key=lambda y: (y != "R", y.zfill(2)))
    full_days = [d for d in range(len(grid.days)) if grid.full[d]]
    if not full_days:
        return
    for nc_year in years:
        day = rng.choice(full_days)
        ids = grid.day_sessions[day]
        for pupil in pupils:
            if pupil.nc_year != nc_year or rng.random() > 0.33:
                continue
            roll = grid.roll(pupil)
            if all(i in roll and i not in pupil.entries for i in ids):
                for i in ids:
                    pupil.entries[i] = Entry("V", comment="Year trip")


class _Budget:
    def __init__(self, pupil: PupilDraft, grid: SessionGrid) -> None:
        roll = grid.roll(pupil)
        not_possible = {i for i in grid.y4 if i in roll}
        not_possible.update(i for i, e in pupil.entries.items() if e.code == "X" and i in roll)
        possible = len(roll) - len(not_possible)
        limit = int(ABSENCE_SHARE * possible)
        self.absence = EHCP_ABSENCE_SESSIONS if pupil.ehcp else limit
        self.absence = min(self.absence, limit)
        self.unauthorised = min(MAX_UNAUTHORISED, self.absence)
        self.illness_days = MAX_ILLNESS_DAYS

    def take(self, codes: list[str], illness_days: int = 0) -> bool:
        absence = sum(c in ABSENCE_CODES for c in codes)
        unauthorised = sum(c in UNAUTHORISED for c in codes)
        if (
            absence > self.absence
            or unauthorised > self.unauthorised
            or illness_days > self.illness_days
        ):
            return False
        self.absence -= absence
        self.unauthorised -= unauthorised
        self.illness_days -= illness_days
        return True


def add_clean_pattern(
    pupil: PupilDraft, grid: SessionGrid, rng: random.Random, attendance_staff: list[StaffMember]
) -> list[Amendment]:
    """Random everyday events for one clean pupil; returns the amendments of resolved Ns."""
    roll = grid.roll(pupil)
    if not roll:
        return []
    first_day, last_day = grid.day_of[roll[0]], grid.day_of[roll[-1]]
    weeks = max(1, (last_day - first_day + 1) // 5)
    budget = _Budget(pupil, grid)
    amendments: list[Amendment] = []
    names = [name for name, _ in EVENTS]
    weights = [w for _, w in EVENTS]
    count = sum(rng.random() < EVENTS_PER_WEEK for _ in range(weeks))

    def free(days: range) -> bool:
        # the event's days and one school day either side must be untouched and on roll
        if days.start < first_day or days.stop - 1 > last_day:
            return False
        for d in range(days.start - 1, days.stop + 1):
            if 0 <= d < len(grid.days) and any(i in pupil.entries for i in grid.day_sessions[d]):
                return False
        return all(grid.full[d] for d in days) and grid.contiguous(days.start, days.stop - 1)

    for _ in range(count):
        kind = rng.choices(names, weights)[0]
        start = rng.randint(first_day, last_day)
        if kind == "illness":
            length = rng.choices((1, 2, 3, 4), (40, 30, 20, 10))[0]
            days = range(start, start + length)
            if not free(days):
                continue
            ids = [i for d in days for i in grid.day_sessions[d]]
            if rng.random() < 0.25:
                ids = ids[1:]  # sent home at lunchtime: the first morning was present
            if budget.take(["I"] * len(ids), illness_days=length):
                for i in ids:
                    pupil.entries[i] = Entry("I")
        elif kind in ("late", "late_after_close", "medical", "offsite"):
            days = range(start, start + 1)
            if not free(days):
                continue
            am, pm = grid.day_sessions[start]
            if kind == "late":
                pupil.entries[am] = Entry("L", minutes_late=rng.randint(3, 25))
            elif kind == "late_after_close" and budget.take(["U"]):
                pupil.entries[am] = Entry("U", minutes_late=rng.randint(35, 80))
            elif kind == "medical" and budget.take(["M"]):
                pupil.entries[rng.choice((am, pm))] = Entry("M", comment="Appointment card seen")
            elif kind == "offsite":
                code = rng.choice(("P", "B"))
                pupil.entries[pm if code == "P" else am] = Entry(
                    code, comment="Sports fixture" if code == "P" else "Careers event off site"
                )
        elif kind == "holiday":
            length = rng.randint(1, 3)
            days = range(start, start + length)
            if free(days) and budget.take(["G"] * 2 * length):
                for d in days:
                    for i in grid.day_sessions[d]:
                        pupil.entries[i] = Entry("G", comment="Term-time holiday, not agreed")
        elif kind == "religious":
            days = range(start, start + 1)
            if free(days) and budget.take(["R", "R"]):
                for i in grid.day_sessions[start]:
                    pupil.entries[i] = Entry("R")
        elif kind == "suspension":
            length = rng.randint(1, 2)
            days = range(start, start + length)
            if free(days) and budget.take(["E"] * 2 * length):
                for d in days:
                    for i in grid.day_sessions[d]:
                        pupil.entries[i] = Entry("E")
        elif kind == "unexplained":
            amendments.extend(_unexplained(pupil, grid, rng, start, free, budget, attendance_staff))
    return amendments


def _unexplained(
    pupil: PupilDraft,
    grid: SessionGrid,
    rng: random.Random,
    start: int,
    free: Callable[[range], bool],
    budget: _Budget,
    staff: list[StaffMember],
) -> list[Amendment]:
    """An absence nobody explained at registration (N), resolved 1-3 school days later."""
    if pupil.has_social_worker:
        return []  # ATT005: any unexplained absence of such a pupil is a finding
    if not free(range(start, start + 1)):
        return []
    ids = list(grid.day_sessions[start])
    if rng.random() < 0.4:
        ids = ids[:1]  # absent in the morning only, then arrived
    final = rng.choices([c for c, _ in N_OUTCOMES], [w for _, w in N_OUTCOMES])[0]
    resolve_day = start + rng.randint(1, 3)
    if resolve_day > grid.last:
        # Still being chased at as_of: the mark stays N, under 4 school days old.
        if not grid.n_can_stay_open(start) or not budget.take(["N"] * len(ids)):
            return []
        for i in ids:
            pupil.entries[i] = Entry("N")
        return []
    if not budget.take([final] * len(ids), illness_days=1 if final == "I" else 0):
        return []
    amender = rng.choice(staff)
    reason = rng.choice(N_REASONS[final])
    return [resolve_n(pupil, grid, i, final, resolve_day, amender, reason, rng) for i in ids]
