"""What placing the breaches shares: what has been injected so far (``Injection``), the staff
who record amendments, and the plan the placing functions work from (``BreachPlan``)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date

from registerwatch.schema import Amendment, Mark, Notification, Session
from registerwatch.simulator.generate_marks import (
    GroupRegisters,
    RegisterFaults,
    SessionGrid,
    london,
)
from registerwatch.simulator.generate_people import Entry, PupilDraft, StaffMember
from registerwatch.simulator.model import ExpectedFinding


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


@dataclass
class Staff:
    attendance: StaffMember
    data_manager: StaffMember


@dataclass
class BreachPlan:
    """The grid, the random source and the injection every placing step writes to."""

    grid: SessionGrid
    rng: random.Random
    inj: Injection
    officer: StaffMember
    school_id: str

    def expect(
        self,
        rule: str,
        pupil: PupilDraft,
        first: int | None,
        last_: int | None = None,
        note: str = "",
    ) -> None:
        grid = self.grid
        self.inj.expected.append(
            ExpectedFinding(
                rule,
                pupil.id,
                None if first is None else grid.ref(first),
                None if first is None else grid.ref(first if last_ is None else last_),
                note,
            )
        )

    def session(self, d: int, s: Session) -> int:
        """The session index of day ``d``'s session ``s``: a school session, not a Y4 one."""
        i = self.grid.session(d, s)
        assert i is not None and i not in self.grid.y4
        return i


def fill(
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
