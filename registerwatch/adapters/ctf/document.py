"""The shape of a read CTF: its element names (listed together where writers disagree,
canonical first), value tables, the result types, and the element helpers the readers share.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from lxml import etree

from registerwatch.adapters.base import Batch
from registerwatch.schema import Mark, Pupil

ROOT_ELEMENT = "CTfile"

# VERIFIED: DfE GIAP, MTC and Follett write CTFversion; SECONDARY: One's documentation shows
# CTFVersion. Both are read.
VERSION_ELEMENTS = ("CTFversion", "CTFVersion")

# VERIFIED: CTF 25 (GIAP) writes Sex; older exporters (CTF 15 writer, Follett) write Gender.
SEX_ELEMENTS = ("Sex", "Gender")

# VERIFIED from code (Follett): AttendSessions / AttendanceStartDate. INFERRED alternatives: some
# descriptions name them SessionAttendance / AttendStartDate; read both until CTF 25 is checked.
ATTEND_SESSIONS_ELEMENTS = ("AttendSessions", "SessionAttendance")

ATTENDANCE_START_ELEMENTS = ("AttendanceStartDate", "AttendStartDate")

SexCode = Literal["M", "F", "U"]

# INFERRED (spellings tolerated beyond the M/F the exporters write); the schema keeps M, F or U.
SEX_VALUES: dict[str, SexCode] = {
    "M": "M",
    "F": "F",
    "U": "U",
    "MALE": "M",
    "FEMALE": "F",
    "UNKNOWN": "U",
}

# INFERRED (CBDS SEN provision codes, from memory; check against the CTF 25 code sets):
# E = EHC plan, S = statement (pre-2014, the EHC plan's predecessor), K = SEN support, N = none.
SEN_PROVISION_EHCP = frozenset({"E", "S"})

SEN_PROVISION_SUPPORT = frozenset({"K"})

# xs:boolean, plus the Y/N some older writers use.
TRUE_VALUES = frozenset({"true", "1", "y", "yes"})

FALSE_VALUES = frozenset({"false", "0", "n", "no"})


@dataclass(frozen=True, slots=True)
class CtfSchool:
    """A ``<SourceSchool>`` or ``<DestSchool>`` (a URN only if the writer added one: the
    exporters seen write none)."""

    lea: str | None
    estab: str | None
    name: str | None = None
    academic_year: str | None = None
    urn: str | None = None

    @property
    def laestab(self) -> str | None:
        return f"{self.lea}{self.estab}" if self.lea and self.estab else None

    @property
    def is_placeholder(self) -> bool:
        """``MMM``/``XXX``-style LEA or Estab: destination unknown or leaving the maintained
        sector (MEMORY/INFERRED placeholders, docs/returns/ctf.md), not another school."""
        return not (self.lea or "").isdigit() or not (self.estab or "").isdigit()


@dataclass(frozen=True, slots=True)
class CtfHeader:
    document_name: str | None
    version: str | None
    created: datetime | None  # <DateTime>, naive school-local time
    qualifier: str | None  # <DocumentQualifier>: "full" or "partial"
    supplier_id: str | None
    source_school: CtfSchool | None
    dest_school: CtfSchool | None


@dataclass(frozen=True, slots=True)
class CtfYearData:
    """One ``<Attendance><YearData>``: the session totals as the exporting MIS counted them.

    ``marks_imported`` is False when the block belongs to another school (its LEA and Estab are
    not the school whose registers are being read), so its marks were not taken as this school's.
    """

    pupil_id: str
    record_ref: str
    year: str | None
    lea: str | None
    estab: str | None
    school_name: str | None
    sessions_possible: int | None
    sessions_authorised: int | None
    sessions_attended: int | None
    sessions_unauthorised: int | None
    marks_imported: bool


@dataclass
class CtfDocument:
    """What one CTF file held: its header, its pupils and their marks, with what was set aside."""

    name: str
    header: CtfHeader
    pupils: Batch[Pupil] = field(default_factory=Batch)
    marks: Batch[Mark] = field(default_factory=Batch)
    attendance_years: list[CtfYearData] = field(default_factory=list)


def first_child(element: etree._Element | None, names: Iterable[str]) -> etree._Element | None:
    if element is None:
        return None
    for name in names:
        found = element.find(name)
        if found is not None:
            return found
    return None


def child_text(element: etree._Element | None, *names: str) -> str | None:
    """Stripped text of the first child named in ``names`` (or of ``element``); "" is None."""
    target = first_child(element, names) if names else element
    if target is None or target.text is None:
        return None
    value = target.text.strip()
    return value or None


def children(element: etree._Element | None, path: str) -> list[etree._Element]:
    return [] if element is None else list(element.iterfind(path))
