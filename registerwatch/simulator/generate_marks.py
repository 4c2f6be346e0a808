"""Sessions, registers and marks of a synthetic school.

``SessionGrid`` numbers every school session the data covers, so a pupil's plan is a small dict
of session index -> ``Entry`` (everything else is plain presence) and the marks come out of one
tight loop. Marks skip validation, as ``Mark.model_construct`` does: validating half a million
marks would cost seconds and prove nothing the tests do not prove on a sample.
"""

from __future__ import annotations

import bisect
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from registerwatch.calendar import LONDON, SchoolCalendar
from registerwatch.errors import CalendarError
from registerwatch.schema import Amendment, AmendmentSource, Mark, Register, Session
from registerwatch.schema.construct import trusted_constructor
from registerwatch.simulator.generate_people import Entry, PupilDraft, StaffMember

AM, PM = Session.AM, Session.PM
# How long after the register opens a teacher saves it: well inside the 30-minute window.
SAVE_AFTER_MINUTES = (3, 25)
LATE_SAVE_MINUTES = (41, 58)  # the REG003 register


# Every field of a Mark with typed values: trusted_constructor builds it both ways at import
# and falls back to model_construct if a pydantic upgrade made them differ.
_PROBE: dict[str, Any] = {
    "pupil_id": "probe:1",
    "date": date(2025, 9, 3),
    "session": Session.AM,
    "code": "/",
    "vendor_code": "/",
    "minutes_late": None,
    "comment": None,
    "recorded_at": datetime(2025, 9, 3, 7, 50, tzinfo=UTC),
    "recorded_by": "probe",
    "source_ref": None,
}


# Marks built from values the generator chose itself, without validating them again.
build_mark = trusted_constructor(Mark, _PROBE)


class NotEnoughDataError(ValueError):
    """``as_of`` leaves too few school days before it to place the injected breaches."""


def london(day: date, hour: int, minute: int) -> datetime:
    """A wall-clock time at the school, as the UTC instant the store keeps."""
    return datetime.combine(day, time(hour, minute), tzinfo=LONDON).astimezone(UTC)


class SessionGrid:
    """Every school session from the first term day to the last school day before ``as_of``.

    ``as_of`` is "today, before registration": the school's data runs to the end of the previous
    school day. Unexpected closures (Y4) are sessions; planned closures are not.
    """

    def __init__(self, calendar: SchoolCalendar, as_of: date) -> None:
        self.calendar = calendar
        self.as_of = as_of
        self.days: list[date] = calendar.school_days(calendar.first_day, as_of - timedelta(days=1))
        if not self.days:
            raise NotEnoughDataError(
                f"as_of {as_of} is on or before the first school day {calendar.first_day}: "
                "there are no registers to generate"
            )
        self.dates: list[date] = []
        self.sessions: list[Session] = []
        self.day_of: list[int] = []
        self.day_sessions: list[tuple[int, ...]] = []
        self.index: dict[tuple[date, Session], int] = {}
        for d, day in enumerate(self.days):
            ids = []
            for session in calendar.sessions_on(day):
                self.index[(day, session)] = len(self.dates)
                ids.append(len(self.dates))
                self.dates.append(day)
                self.sessions.append(session)
                self.day_of.append(d)
            self.day_sessions.append(tuple(ids))
        self.y4 = frozenset(
            i
            for i, day in enumerate(self.dates)
            if calendar.closure_code(day, self.sessions[i]) == "Y4"
        )
        self.default_code = [
            "Y4" if i in self.y4 else "/" if s is AM else "\\" for i, s in enumerate(self.sessions)
        ]
        self.opens = [
            calendar.register_opens(day, s).astimezone(UTC)
            for day, s in zip(self.dates, self.sessions, strict=True)
        ]
        # A day with both sessions open and no unexpected closure: where absence runs may go.
        self.full = [
            len(ids) == 2 and not any(i in self.y4 for i in ids) for ids in self.day_sessions
        ]

    @property
    def last(self) -> int:
        """Index of the last school day with data (the school day before as_of)."""
        return len(self.days) - 1

    def __len__(self) -> int:
        return len(self.dates)

    def session(self, d: int, session: Session) -> int | None:
        return self.index.get((self.days[d], session))

    def ref(self, i: int) -> tuple[date, Session]:
        return (self.dates[i], self.sessions[i])

    def roll(self, pupil: PupilDraft) -> range:
        """Session indices on which the pupil is on roll."""
        lo = bisect.bisect_left(self.dates, pupil.starting_day)
        end = pupil.leaving_date
        hi = len(self.dates) if end is None else bisect.bisect_right(self.dates, end)
        return range(lo, hi)

    def day_index(self, day: date) -> int:
        d = bisect.bisect_left(self.days, day)
        if d == len(self.days) or self.days[d] != day:
            raise ValueError(f"{day} is not a school day in the data")
        return d

    def contiguous(self, first: int, last: int) -> bool:
        """Days first..last follow each other with no weekday between them skipped (no INSET
        day or holiday inside), so a run is consecutive on any reading of "school days"."""
        for d in range(first, last):
            gap = (self.days[d + 1] - self.days[d]).days
            if not (gap == 1 or (gap == 3 and self.days[d].weekday() == 4)):
                return False
        return True

    def find_run(self, length: int, end_max: int, start_min: int = 0) -> int:
        """The first day of the latest run of ``length`` full, contiguous school days ending on
        or before day ``end_max`` and starting on or after ``start_min``."""
        for end in range(min(end_max, self.last), start_min + length - 2, -1):
            start = end - length + 1
            if all(self.full[start : end + 1]) and self.contiguous(start, end):
                return start
        raise NotEnoughDataError(
            f"no run of {length} full school days between {self.days[start_min]} and "
            f"{self.days[min(end_max, self.last)]}: choose a later as_of"
        )

    def n_can_stay_open(self, d: int) -> bool:
        """Whether an N on day ``d`` may still be open at as_of: its 5th school day must be
        on or after as_of and inside the calendar (a calendar of one school year cannot date
        the deadline of an N left on the year's last days, so the school resolves those)."""
        try:
            due = self.calendar.add_school_days(self.days[d], 5)
        except CalendarError:
            return False
        return due >= self.as_of

    def latest_full_day(self, end_max: int) -> int:
        """The latest full school day on or before day ``end_max``."""
        for d in range(min(end_max, self.last), -1, -1):
            if self.full[d]:
                return d
        raise NotEnoughDataError(f"no full school day on or before {self.days[end_max]}")


@dataclass
class GroupRegisters:
    """When each of one group's registers was saved, and by whom (per session index)."""

    saved: list[datetime]
    takers: list[str]


@dataclass(frozen=True)
class RegisterFaults:
    """The injected register breaches: (group, session index) for each."""

    missing: tuple[str, int] | None = None  # REG001: no register, no marks
    unsaved: tuple[str, int] | None = None  # REG002: opened, never completed
    late: tuple[str, int] | None = None  # REG003: completed after the close time


def build_registers(
    grid: SessionGrid,
    school_id: str,
    tutors: dict[str, StaffMember],
    cover: list[StaffMember],
    office: StaffMember,
    rng: random.Random,
    faults: RegisterFaults,
) -> tuple[list[Register], dict[str, GroupRegisters]]:
    """One register per group per school session, opened on time and saved within 30 minutes,
    except the injected faults."""
    registers: list[Register] = []
    by_group: dict[str, GroupRegisters] = {}
    construct = Register.model_construct
    for group, tutor in tutors.items():
        saved: list[datetime] = []
        takers: list[str] = []
        for i, opens in enumerate(grid.opens):
            if i in grid.y4:
                # The site was shut: the office enters Y4 for everyone when the day starts.
                taker = office.name
            elif rng.random() < 0.08:
                taker = rng.choice(cover).name  # a cover teacher took the register
            else:
                taker = tutor.name
            completed: datetime | None = opens + timedelta(minutes=rng.randint(*SAVE_AFTER_MINUTES))
            mark_time = completed
            if faults.late == (group, i):
                completed = opens + timedelta(minutes=rng.randint(*LATE_SAVE_MINUTES))
                mark_time = completed
            elif faults.unsaved == (group, i):
                completed = None  # the marks went in but the register was never saved
                mark_time = opens + timedelta(minutes=6)
            assert mark_time is not None
            saved.append(mark_time)
            takers.append(taker)
            if faults.missing == (group, i):
                continue
            registers.append(
                construct(
                    school_id=school_id,
                    group=group,
                    date=grid.dates[i],
                    session=grid.sessions[i],
                    opened_at=opens,
                    completed_at=completed,
                    taken_by=taker,
                    source_ref=f"reg-{group}-{grid.dates[i].isoformat()}-{grid.sessions[i].value}",
                )
            )
        by_group[group] = GroupRegisters(saved=saved, takers=takers)
    return registers, by_group


def emit_marks(
    pupils: list[PupilDraft],
    grid: SessionGrid,
    registers: dict[str, GroupRegisters],
    missing: tuple[str, int] | None,
) -> list[Mark]:
    """Every mark: plain presence (or Y4) unless the pupil's plan says otherwise.

    The hot loop of the generator: locals only, no validation. Run it under ``collector_paused``.
    """
    construct = build_mark
    dates, sessions, default = grid.dates, grid.sessions, grid.default_code
    marks: list[Mark] = []
    append = marks.append
    for pupil in pupils:
        group = registers[pupil.reg_group]
        saved, takers = group.saved, group.takers
        entries = pupil.entries
        pid = pupil.id
        skip = missing[1] if missing is not None and missing[0] == pupil.reg_group else -1
        for i in grid.roll(pupil):
            if i == skip:
                continue
            entry = entries.get(i)
            if entry is None:
                code = default[i]
                append(
                    construct(
                        {
                            "pupil_id": pid,
                            "date": dates[i],
                            "session": sessions[i],
                            "code": code,
                            "vendor_code": code,
                            "minutes_late": None,
                            "comment": None,
                            "recorded_at": saved[i],
                            "recorded_by": takers[i],
                            "source_ref": None,
                        }
                    )
                )
            else:
                append(
                    construct(
                        {
                            "pupil_id": pid,
                            "date": dates[i],
                            "session": sessions[i],
                            "code": entry.code,
                            "vendor_code": entry.code,
                            "minutes_late": entry.minutes_late,
                            "comment": entry.comment,
                            "recorded_at": entry.recorded_at or saved[i],
                            "recorded_by": entry.recorded_by or takers[i],
                            "source_ref": None,
                        }
                    )
                )
    return marks


def resolve_n(
    pupil: PupilDraft,
    grid: SessionGrid,
    i: int,
    final: str,
    resolve_day: int,
    amender: StaffMember | None,
    reason: str | None,
    rng: random.Random,
    *,
    name_missing: bool = False,
) -> Amendment:
    """An N on session ``i`` replaced by ``final`` on school day ``resolve_day``: the MIS now
    shows ``final`` and its amendment record says N -> ``final`` (reg 6 fields)."""
    amended_at = london(grid.days[resolve_day], rng.randint(9, 11), rng.randrange(0, 60, 5))
    pupil.entries[i] = Entry(
        final, recorded_at=amended_at, recorded_by=amender.name if amender else None, comment=reason
    )
    day, session = grid.ref(i)
    return Amendment(
        pupil_id=pupil.id,
        date=day,
        session=session,
        original_code="N",
        amended_code=final,
        reason=reason,
        amended_at=amended_at,
        amended_by_name=None if name_missing or amender is None else amender.name,
        amended_by_position=None if name_missing or amender is None else amender.position,
        source=AmendmentSource.MIS,
        source_ref=f"amd-{pupil.mis_id}-{day.isoformat()}-{session.value}",
    )
