"""National attendance codes: the 2024 table and the legacy 2006 codes, as data.

Sources:
- The codes and their categories are set out in The School Attendance (Pupil Registration)
  (England) Regulations 2024 (SI 2024/208) reg 10 and WTISA (August 2024) chapter 6. Present and
  Table 2 codes are VERIFIED; the rest are SECONDARY (LA and vendor copies of the table).
- The statistical treatment (possible / attendance / authorised / unauthorised) is VERIFIED
  against DfE's published 2024/25 year-to-date data: possible = present + L + approved
  educational activity + authorised + unauthorised; codes without a DfE column (D, X, Q, Y1-Y7,
  Z, #) are outside possible sessions. That last point is only *supported* by the data, so it is
  marked INFERRED on those rows and lives in this one table.
- Legacy 2006 codes (H, F, J, Y and old meanings) stop being valid on 19 August 2024, the day the
  2024 Regulations came into force (VERIFIED: Explanatory Note / Stone King bulletin).

The table is the single place to change a treatment: rules, statistics and returns all read it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import date
from enum import StrEnum
from types import MappingProxyType

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


_C = Category
_V, _S, _I = Evidence.VERIFIED, Evidence.SECONDARY, Evidence.INFERRED

CODES_2024: tuple[AttendanceCode, ...] = (
    # Present (reg 10(2), Table 1)
    _row("/", "Present (AM)", _C.PRESENT, possible=True, attendance=True, evidence=_V),
    _row("\\", "Present (PM)", _C.PRESENT, possible=True, attendance=True, evidence=_V),
    _row(
        "L",
        "Late, arrived before the register closed",
        _C.PRESENT,
        possible=True,
        attendance=True,
        evidence=_V,
    ),
    # Attending a place other than the school (reg 10(3), Table 2): approved educational activity
    _row(
        "K",
        "Attending education provision arranged by the local authority",
        _C.APPROVED_EDUCATIONAL_ACTIVITY,
        possible=True,
        attendance=True,
        evidence=_V,
    ),
    _row(
        "V",
        "Attending an educational visit or trip",
        _C.APPROVED_EDUCATIONAL_ACTIVITY,
        possible=True,
        attendance=True,
        evidence=_V,
    ),
    _row(
        "P",
        "Participating in a supervised sporting activity",
        _C.APPROVED_EDUCATIONAL_ACTIVITY,
        possible=True,
        attendance=True,
    ),
    _row(
        "W",
        "Attending work experience",
        _C.APPROVED_EDUCATIONAL_ACTIVITY,
        possible=True,
        attendance=True,
    ),
    _row(
        "B",
        "Attending any other approved educational activity",
        _C.APPROVED_EDUCATIONAL_ACTIVITY,
        possible=True,
        attendance=True,
    ),
    # INFERRED (not possible): DfE data has no column for D.
    _row(
        "D",
        "Dual registered: attending another school at which the pupil is registered",
        _C.DUAL_REGISTRATION,
        possible=False,
        evidence=_I,
    ),
    # Leave of absence
    _row(
        "C1",
        "Leave of absence: regulated performance or regulated employment abroad",
        _C.LEAVE_OF_ABSENCE,
        possible=True,
        authorised=True,
    ),
    _row(
        "M",
        "Leave of absence: medical or dental appointment",
        _C.LEAVE_OF_ABSENCE,
        possible=True,
        authorised=True,
    ),
    _row(
        "J1",
        "Leave of absence: interview for employment or admission to another institution",
        _C.LEAVE_OF_ABSENCE,
        possible=True,
        authorised=True,
    ),
    _row("S", "Leave of absence: study leave", _C.LEAVE_OF_ABSENCE, possible=True, authorised=True),
    # INFERRED (not possible): DfE data has no column for X.
    _row(
        "X",
        "Non-compulsory school age pupil not required to attend",
        _C.LEAVE_OF_ABSENCE,
        possible=False,
        evidence=_I,
    ),
    _row(
        "C2",
        "Leave of absence: temporary reduced (part-time) timetable",
        _C.LEAVE_OF_ABSENCE,
        possible=True,
        authorised=True,
    ),
    _row(
        "C",
        "Leave of absence: exceptional circumstances",
        _C.LEAVE_OF_ABSENCE,
        possible=True,
        authorised=True,
    ),
    # Other authorised absence
    _row(
        "T",
        "Mobile child travelling for occupational purposes",
        _C.AUTHORISED_OTHER,
        possible=True,
        authorised=True,
    ),
    _row("R", "Religious observance", _C.AUTHORISED_OTHER, possible=True, authorised=True),
    _row(
        "I",
        "Illness (not medical or dental appointment)",
        _C.AUTHORISED_OTHER,
        possible=True,
        authorised=True,
    ),
    _row(
        "E",
        "Suspended or permanently excluded, no alternative provision",
        _C.AUTHORISED_OTHER,
        possible=True,
        authorised=True,
    ),
    # Unable to attend because of unavoidable cause: INFERRED not possible (no DfE column).
    _row(
        "Q",
        "Unable to attend: lack of access arrangements by the local authority",
        _C.UNAVOIDABLE_CAUSE,
        possible=False,
        evidence=_I,
    ),
    _row(
        "Y1",
        "Unable to attend: transport normally provided not available",
        _C.UNAVOIDABLE_CAUSE,
        possible=False,
        evidence=_I,
    ),
    _row(
        "Y2",
        "Unable to attend: widespread disruption to travel",
        _C.UNAVOIDABLE_CAUSE,
        possible=False,
        evidence=_I,
    ),
    _row(
        "Y3",
        "Unable to attend: part of the school premises closed",
        _C.UNAVOIDABLE_CAUSE,
        possible=False,
        evidence=_I,
    ),
    _row(
        "Y4",
        "Unable to attend: whole school site unexpectedly closed",
        _C.UNAVOIDABLE_CAUSE,
        possible=False,
        evidence=_I,
    ),
    _row(
        "Y5",
        "Unable to attend: pupil in criminal justice detention",
        _C.UNAVOIDABLE_CAUSE,
        possible=False,
        evidence=_I,
    ),
    _row(
        "Y6",
        "Unable to attend: public health guidance or law",
        _C.UNAVOIDABLE_CAUSE,
        possible=False,
        evidence=_I,
    ),
    _row(
        "Y7",
        "Unable to attend: any other unavoidable cause",
        _C.UNAVOIDABLE_CAUSE,
        possible=False,
        evidence=_I,
    ),
    # Unauthorised absence
    _row(
        "G",
        "Unauthorised: holiday not granted by the school",
        _C.UNAUTHORISED,
        possible=True,
        unauthorised=True,
    ),
    _row(
        "N",
        "Unauthorised: reason not yet established",
        _C.UNAUTHORISED,
        possible=True,
        unauthorised=True,
    ),
    _row(
        "O",
        "Unauthorised: absent in other or unknown circumstances",
        _C.UNAUTHORISED,
        possible=True,
        unauthorised=True,
    ),
    _row(
        "U",
        "Unauthorised: arrived after the register closed",
        _C.UNAUTHORISED,
        possible=True,
        unauthorised=True,
    ),
    # Administrative
    _row(
        "Z",
        "Prospective pupil not yet on the admission register",
        _C.ADMINISTRATIVE,
        possible=False,
        evidence=_I,
    ),
    _row(
        "#",
        "Planned whole or partial school closure",
        _C.ADMINISTRATIVE,
        possible=False,
        evidence=_I,
    ),
)

# 2006 codes, valid up to 18 August 2024. Codes whose *meaning* changed in 2024 (B, D, T, X...)
# keep one row per era so a mark is judged by the meaning in force on its date.
CODES_2006: tuple[AttendanceCode, ...] = (
    _row("/", "Present (AM)", _C.PRESENT, possible=True, attendance=True, legacy=True),
    _row("\\", "Present (PM)", _C.PRESENT, possible=True, attendance=True, legacy=True),
    _row(
        "L",
        "Late (before registers closed)",
        _C.PRESENT,
        possible=True,
        attendance=True,
        legacy=True,
    ),
    _row(
        "B",
        "Educated off site (not dual registration)",
        _C.APPROVED_EDUCATIONAL_ACTIVITY,
        possible=True,
        attendance=True,
        legacy=True,
    ),
    _row("D", "Dual registration", _C.DUAL_REGISTRATION, possible=False, legacy=True),
    _row(
        "J",
        "Interview (approved educational activity)",
        _C.APPROVED_EDUCATIONAL_ACTIVITY,
        possible=True,
        attendance=True,
        legacy=True,
        evidence=_V,
    ),
    _row(
        "P",
        "Approved sporting activity",
        _C.APPROVED_EDUCATIONAL_ACTIVITY,
        possible=True,
        attendance=True,
        legacy=True,
    ),
    _row(
        "V",
        "Educational visit or trip",
        _C.APPROVED_EDUCATIONAL_ACTIVITY,
        possible=True,
        attendance=True,
        legacy=True,
    ),
    _row(
        "W",
        "Work experience",
        _C.APPROVED_EDUCATIONAL_ACTIVITY,
        possible=True,
        attendance=True,
        legacy=True,
    ),
    _row(
        "C",
        "Other authorised circumstances",
        _C.AUTHORISED_OTHER,
        possible=True,
        authorised=True,
        legacy=True,
    ),
    _row(
        "E",
        "Excluded (no alternative provision made)",
        _C.AUTHORISED_OTHER,
        possible=True,
        authorised=True,
        legacy=True,
    ),
    _row(
        "F",
        "Extended family holiday (agreed)",
        _C.AUTHORISED_OTHER,
        possible=True,
        authorised=True,
        legacy=True,
    ),
    _row(
        "H",
        "Holiday authorised by the school",
        _C.AUTHORISED_OTHER,
        possible=True,
        authorised=True,
        legacy=True,
        evidence=_V,
    ),
    _row("I", "Illness", _C.AUTHORISED_OTHER, possible=True, authorised=True, legacy=True),
    _row(
        "M",
        "Medical or dental appointment",
        _C.AUTHORISED_OTHER,
        possible=True,
        authorised=True,
        legacy=True,
    ),
    _row(
        "R",
        "Religious observance",
        _C.AUTHORISED_OTHER,
        possible=True,
        authorised=True,
        legacy=True,
    ),
    _row("S", "Study leave", _C.AUTHORISED_OTHER, possible=True, authorised=True, legacy=True),
    _row(
        "T", "Traveller absence", _C.AUTHORISED_OTHER, possible=True, authorised=True, legacy=True
    ),
    _row(
        "G",
        "Holiday not agreed or in excess",
        _C.UNAUTHORISED,
        possible=True,
        unauthorised=True,
        legacy=True,
    ),
    _row(
        "N",
        "No reason yet provided",
        _C.UNAUTHORISED,
        possible=True,
        unauthorised=True,
        legacy=True,
    ),
    _row(
        "O",
        "Unauthorised absence not covered by any other code",
        _C.UNAUTHORISED,
        possible=True,
        unauthorised=True,
        legacy=True,
    ),
    _row(
        "U",
        "Arrived after registers closed",
        _C.UNAUTHORISED,
        possible=True,
        unauthorised=True,
        legacy=True,
    ),
    _row("X", "Non-compulsory school age absence", _C.ADMINISTRATIVE, possible=False, legacy=True),
    _row("Y", "Enforced closure", _C.ADMINISTRATIVE, possible=False, legacy=True),
    _row("Z", "Pupil not yet on roll", _C.ADMINISTRATIVE, possible=False, legacy=True),
    _row("#", "School closed to pupils", _C.ADMINISTRATIVE, possible=False, legacy=True),
)

ALL_CODES: tuple[AttendanceCode, ...] = CODES_2024 + CODES_2006
_CURRENT: dict[str, AttendanceCode] = {c.code: c for c in CODES_2024}
_LEGACY: dict[str, AttendanceCode] = {c.code: c for c in CODES_2006}

PRESENT_CODES = frozenset({"/", "\\", "L"})
UNAUTHORISED_CODES = frozenset(c.code for c in CODES_2024 if c.unauthorised)  # G N O U
AUTHORISED_CODES = frozenset(c.code for c in CODES_2024 if c.authorised)
NOT_POSSIBLE_CODES = frozenset(c.code for c in CODES_2024 if not c.possible)

# Illness (not medical or dental appointments): the code the LA sickness return counts
# (SI 2024/208 reg 13, rule LAR001 and the la-sickness return read it from here).
ILLNESS_CODE = "I"

# SECONDARY (One/Capita documentation, onepublications.com/?p=8857): the single
# characters MIS products write in a CTF AttendanceMarks string for the 2024 two-character codes.
# Only these three are documented; Y1-Y7 have no known single-character form. The CTF importer
# (adapters/ctf) decodes with this table and the CTF return (exports/ctf) encodes with its
# inverse, so a file written by one reads back unchanged through the other: change it here only,
# when the CTF 25 specification or a vendor's documentation says otherwise.
CTF_SINGLE_CHARACTER_CODES: Mapping[str, str] = MappingProxyType(
    {
        "<": "C1",
        ">": "C2",
        "?": "J1",
    }
)

# VERIFIED from code (Follett): a date not in session is written "##" in a CTF marks
# string. The same character is the national code for a planned closure, and a CTF gives no way
# to tell the two apart (every weekend is "##" too), so "#" read from a CTF never becomes a mark.
CTF_NOT_IN_SESSION = "#"


class UnknownCodeError(KeyError):
    """A code that is in neither the 2024 nor the 2006 table: quarantine the record."""


def is_known_code(code: str) -> bool:
    return code in _CURRENT or code in _LEGACY


def lookup(code: str, on: date | None = None) -> AttendanceCode:
    """The row for ``code`` in force on ``on`` (default: the 2024 table, else legacy).

    A legacy-only code asked for after 18 August 2024 still returns its legacy row, so
    statistics can count it; whether it was *valid* on that date is ``valid_on``'s question
    (rule MRK002).
    """
    if on is not None and on < REGULATIONS_2024_IN_FORCE and code in _LEGACY:
        return _LEGACY[code]
    if code in _CURRENT:
        return _CURRENT[code]
    if code in _LEGACY:
        return _LEGACY[code]
    raise UnknownCodeError(code)


def valid_on(code: str, day: date) -> bool:
    """Is ``code`` a national code on ``day``? (Legacy-only codes fail from 19 August 2024.)"""
    try:
        return lookup(code, day).valid_on(day)
    except UnknownCodeError:
        return False


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


def code_table() -> list[dict[str, object]]:
    """Every row, 2024 first then legacy, for `registerwatch codes --format json`."""
    return [c.as_dict() for c in ALL_CODES]
