"""What GO 4 Schools' "customer v1" wire looks like: paths, the attendance code table and its
aliases, calendar day types, education attributes, the MALFORMED damage, date formats, errors.

OBSERVED and INFERRED as the package docstring says.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from registerwatch.calendar import school_year_of
from registerwatch.codes import ALL_CODES
from registerwatch.schema import ClosureKind
from registerwatch.simulator.common import iso_midnight, london_wall_clock
from registerwatch.simulator.server import Response

PREFIX = "/customer/v1"
AMENDMENTS_PATH = "attendance/student-session-mark-amendments"  # INFERRED resource

CursorMode = Literal["repeat", "backwards", "missing"]
CURSOR_MODES: tuple[str, ...] = ("repeat", "backwards", "missing")

# -- the attendance code table (INFERRED layout; the codes themselves are national) -------------

# INFERRED for G4S, SECONDARY for MIS generally: vendors store the 2024 two-character codes as
# single characters; One/Capita uses these three.
VENDOR_ENCODINGS: dict[str, str] = {"C1": "<", "C2": ">", "J1": "?"}

# INFERRED: school-defined aliases hanging off a code (e.g. L -> "L1 Late - bus").
# Some are sub-reasons (L1), some lower-case variants (i, n, c1), and some are the 2024 codes
# recorded as an alias of an older code (C1 under C, J1 under legacy J) by schools that set them
# up before the vendor added its own encodings. national code -> [(alias_code, alias_label)]
ALIASES: dict[str, list[tuple[str, str]]] = {
    "L": [("L1", "Late - bus"), ("L2", "Late - medical appointment")],
    "I": [("i", "Illness (entered in lower case)")],
    "N": [("n", "No reason yet (entered in lower case)")],
    "C": [("C1", "Leave - regulated performance (school alias)")],
    "C1": [("c1", "Performance licence (entered in lower case)")],
    "J": [("J1", "Interview (school alias)")],
}

CODE_LABELS: dict[str, str] = {}
for _row in ALL_CODES:  # 2024 rows first, so a code keeps its current meaning as its label
    CODE_LABELS.setdefault(_row.code, _row.description)


@dataclass(frozen=True)
class CodeRow:
    id: int
    national: str
    code: str  # as the vendor shows it
    label: str
    aliases: tuple[tuple[int, str, str], ...]  # (alias_id, alias_code, alias_label)


def build_code_table() -> list[CodeRow]:
    rows: list[CodeRow] = []
    alias_id = 100
    for index, national in enumerate(CODE_LABELS, start=1):
        aliases = []
        for alias_code, alias_label in ALIASES.get(national, []):
            alias_id += 1
            aliases.append((alias_id, alias_code, alias_label))
        rows.append(
            CodeRow(
                id=index,
                national=national,
                code=VENDOR_ENCODINGS.get(national, national),
                label=CODE_LABELS[national],
                aliases=tuple(aliases),
            )
        )
    return rows


CODE_TABLE: tuple[CodeRow, ...] = tuple(build_code_table())
ROW_BY_NATIONAL = {row.national: row for row in CODE_TABLE}
ROW_BY_ID = {row.id: row for row in CODE_TABLE}
# INFERRED: which roles may enter a code, mirroring the observed protect_if_entered_by_* flags.
OFFICER_ONLY = {"G", "E", "T", "Q", "Y4", "#"}

# -- calendar day types (INFERRED values; the field is OBSERVED) --------------------------------

DAY_TYPES: dict[str, tuple[Literal["AM", "PM", "both"], ClosureKind | None]] = {
    "S": ("both", None),  # school day
    "C": ("both", ClosureKind.PLANNED),  # planned closure (INSET...)
    "CA": ("AM", ClosureKind.PLANNED),
    "CP": ("PM", ClosureKind.PLANNED),
    "Y": ("both", ClosureKind.UNEXPECTED),  # unexpected closure (Y4)
    "YA": ("AM", ClosureKind.UNEXPECTED),
    "YP": ("PM", ClosureKind.UNEXPECTED),
}

# -- student education attributes (INFERRED codes and values; the shape is OBSERVED) -------------

# (attribute code, attribute name, what it holds); values are Y/N except SEN (E/K/N)
ATTRIBUTES: tuple[tuple[str, str, str], ...] = (
    ("SEN", "SEN status", "sen"),  # E = EHC plan, K = SEN support, N = none
    ("FSM", "Free school meals", "fsm"),
    ("LAC", "Looked after", "looked_after"),
    ("CSW", "Has a social worker", "has_social_worker"),
    ("BRD", "Boarder", "boarder"),
)

# -- MALFORMED: what goes wrong in which resource (field, bad value; ... = key removed) ----------

DROP = object()
MALFORMATIONS: dict[str, tuple[tuple[str, Any], ...]] = {
    "students": (("date_of_birth", "2012-02-30"), ("id", DROP), ("sex", "Q")),
    "education-details": (("admission_date", "31/02/2025"), ("student_id", DROP)),
    "session-marks": (
        ("date", "2025-02-30T00:00:00"),
        ("session_mark_id", 9999),
        ("session", DROP),
    ),
    "amendments": (("amended_at", "yesterday"), ("session", "XM")),
    "calendar": (("date", "not a date"),),
}


@dataclass(frozen=True)
class Corruption:
    """One record the MALFORMED fault spoiled: resource, the record's key, and the field."""

    resource: str
    student_id: int | None
    day: date | None
    session: str | None
    field: str


def error_response(status: int, message: str) -> Response:
    # INFERRED body shape: the docs give the messages, not the envelope.
    return Response.json({"error": message, "status": status}, status=status)


def g4s_date(day: date) -> str | None:
    return iso_midnight(day)  # OBSERVED: dates come as naive midnight date-times


def g4s_instant(moment: datetime | None) -> str | None:
    # G4S shows local (UK) wall-clock times without an offset (as its dates); INFERRED.
    if moment is None:
        return None
    return london_wall_clock(moment).isoformat(timespec="seconds")


def academic_year_of(day: date) -> int:
    """The G4S academic year of a date: the year it ends (2025/26 -> 2026)."""
    return school_year_of(day) + 1


def alias_national(row: CodeRow, alias_code: str) -> str:
    """The national code an alias stands for: itself when it names one, else its parent's."""
    for national, encoded in VENDOR_ENCODINGS.items():
        if alias_code == encoded:
            return national
    upper = alias_code.upper()
    if upper in CODE_LABELS:
        return upper
    return row.national


def day_type(sessions: dict[str, ClosureKind]) -> str:
    if not sessions:
        return "S"
    kinds = set(sessions.values())
    kind = ClosureKind.PLANNED if ClosureKind.PLANNED in kinds else ClosureKind.UNEXPECTED
    prefix = "C" if kind is ClosureKind.PLANNED else "Y"
    closed = {s for s, k in sessions.items() if k is kind}
    if closed == {"AM", "PM"}:
        return prefix
    return prefix + ("A" if "AM" in closed else "P")


def changed_code(code: str) -> str:
    # The most common real edit: an unexplained absence (N) resolved as unauthorised (O).
    return "O" if code == "N" else "N"


def date_of(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None
