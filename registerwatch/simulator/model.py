"""What a generated school is: the records a real MIS would hold, plus the ground truth.

Every simulator server serves a ``GeneratedSchool``; every adapter test compares what sync
stored with it; the rule tests compare the scan's findings with ``expected_findings``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from registerwatch.schema import (
    Amendment,
    Calendar,
    Mark,
    Notification,
    Pupil,
    Register,
    School,
    Session,
)


@dataclass(frozen=True)
class ExpectedFinding:
    """A breach the generator injected on purpose, as the scan must report it."""

    rule: str
    pupil_id: str | None
    first_session: tuple[date, Session] | None = None
    last_session: tuple[date, Session] | None = None
    note: str = ""


@dataclass
class GeneratedSchool:
    school: School
    calendar: Calendar
    pupils: list[Pupil]
    registers: list[Register]
    marks: list[Mark]
    amendments: list[Amendment] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)
    expected_findings: list[ExpectedFinding] = field(default_factory=list)
    # pupils with no injected breach: the scan must report nothing on them
    clean_pupil_ids: set[str] = field(default_factory=set)
    # the date the school's data runs to: "today" for the scan
    as_of: date | None = None
    seed: int = 0

    def marks_by_key(self) -> dict[tuple[str, date, Session], Mark]:
        return {(m.pupil_id, m.date, m.session): m for m in self.marks}
