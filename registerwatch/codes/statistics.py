"""Session totals and rates as DfE publishes them, from the table's statistical treatment."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from registerwatch.codes.lookup import lookup
from registerwatch.codes.types import Category


@dataclass(frozen=True, slots=True)
class SessionStatistics:
    """Session totals and rates computed as DfE publishes them (percentages, unrounded)."""

    possible: int
    present: int  # / \ and L (DfE "present_sessions")
    approved_educational_activity: int
    attendance: int  # present + AEA (DfE "overall_attendance")
    authorised: int
    unauthorised: int
    late: int  # L + U (DfE "late_sessions")
    not_possible: int

    @property
    def overall_absence(self) -> int:
        return self.authorised + self.unauthorised

    def _rate(self, part: int) -> float:
        return 100.0 * part / self.possible if self.possible else 0.0

    @property
    def attendance_rate(self) -> float:
        return self._rate(self.attendance)

    @property
    def overall_absence_rate(self) -> float:
        return self._rate(self.overall_absence)

    @property
    def authorised_absence_rate(self) -> float:
        return self._rate(self.authorised)

    @property
    def unauthorised_absence_rate(self) -> float:
        return self._rate(self.unauthorised)

    def as_dict(self) -> dict[str, float | int]:
        return {
            "possible": self.possible,
            "present": self.present,
            "approved_educational_activity": self.approved_educational_activity,
            "attendance": self.attendance,
            "authorised": self.authorised,
            "unauthorised": self.unauthorised,
            "overall_absence": self.overall_absence,
            "late": self.late,
            "not_possible": self.not_possible,
            "attendance_rate": self.attendance_rate,
            "overall_absence_rate": self.overall_absence_rate,
            "authorised_absence_rate": self.authorised_absence_rate,
            "unauthorised_absence_rate": self.unauthorised_absence_rate,
        }


def session_statistics(counts: Mapping[str, int], on: date | None = None) -> SessionStatistics:
    """Totals from session counts per code (``{"/": 120, "I": 4, ...}``).

    Raises UnknownCodeError for a code in neither table: a statistic must never silently drop
    sessions.
    """
    possible = present = aea = attendance = authorised = unauthorised = late = other = 0
    for code, n in counts.items():
        row = lookup(code, on)
        if not row.possible:
            other += n
            continue
        possible += n
        if row.category is Category.PRESENT:
            present += n
        if row.category is Category.APPROVED_EDUCATIONAL_ACTIVITY:
            aea += n
        if row.attendance:
            attendance += n
        if row.authorised:
            authorised += n
        if row.unauthorised:
            unauthorised += n
        if code in ("L", "U"):
            late += n
    return SessionStatistics(
        possible=possible,
        present=present,
        approved_educational_activity=aea,
        attendance=attendance,
        authorised=authorised,
        unauthorised=unauthorised,
        late=late,
        not_possible=other,
    )


def statistics_for_marks(codes: Iterable[str], on: date | None = None) -> SessionStatistics:
    totals: dict[str, int] = {}
    for code in codes:
        totals[code] = totals.get(code, 0) + 1
    return session_statistics(totals, on)
