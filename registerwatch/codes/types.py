"""The shape of a national attendance code row: its category, its statistical treatment, the
dates it is valid between and how well that is evidenced (see the package docstring)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from enum import StrEnum

REGULATIONS_2024_IN_FORCE = date(2024, 8, 19)
LEGACY_LAST_VALID_DAY = date(2024, 8, 18)
# INFERRED: the 2006 Regulations (SI 2006/1751) applied from 1 September 2006; earlier dates are
# outside anything this tool loads, so the exact start only bounds the table.
REGULATIONS_2006_IN_FORCE = date(2006, 9, 1)


class Category(StrEnum):
    PRESENT = "present"
    APPROVED_EDUCATIONAL_ACTIVITY = "approved_educational_activity"
    DUAL_REGISTRATION = "dual_registration"
    LEAVE_OF_ABSENCE = "leave_of_absence"
    AUTHORISED_OTHER = "authorised_other"
    UNAVOIDABLE_CAUSE = "unavoidable_cause"
    UNAUTHORISED = "unauthorised"
    ADMINISTRATIVE = "administrative"


class Evidence(StrEnum):
    VERIFIED = "verified"
    SECONDARY = "secondary"
    INFERRED = "inferred"


@dataclass(frozen=True, slots=True)
class AttendanceCode:
    code: str
    description: str
    category: Category
    possible: bool
    attendance: bool
    authorised: bool
    unauthorised: bool
    valid_from: date | None
    valid_to: date | None
    evidence: Evidence

    @property
    def is_absence(self) -> bool:
        return self.authorised or self.unauthorised

    def valid_on(self, day: date) -> bool:
        if self.valid_from is not None and day < self.valid_from:
            return False
        return not (self.valid_to is not None and day > self.valid_to)

    def as_dict(self) -> dict[str, object]:
        row = asdict(self)
        row["category"] = self.category.value
        row["evidence"] = self.evidence.value
        row["valid_from"] = self.valid_from.isoformat() if self.valid_from else None
        row["valid_to"] = self.valid_to.isoformat() if self.valid_to else None
        return row


def _row(
    code: str,
    description: str,
    category: Category,
    *,
    possible: bool,
    attendance: bool = False,
    authorised: bool = False,
    unauthorised: bool = False,
    legacy: bool = False,
    evidence: Evidence = Evidence.SECONDARY,
) -> AttendanceCode:
    return AttendanceCode(
        code=code,
        description=description,
        category=category,
        possible=possible,
        attendance=attendance,
        authorised=authorised,
        unauthorised=unauthorised,
        valid_from=REGULATIONS_2006_IN_FORCE if legacy else REGULATIONS_2024_IN_FORCE,
        valid_to=LEGACY_LAST_VALID_DAY if legacy else None,
        evidence=evidence,
    )
