"""Code sets and constants the rules, returns and adapters share, and looking a code up by date."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from types import MappingProxyType

from registerwatch.codes.legacy_2006 import CODES_2006
from registerwatch.codes.table_2024 import CODES_2024
from registerwatch.codes.types import REGULATIONS_2024_IN_FORCE, AttendanceCode

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


def code_table() -> list[dict[str, object]]:
    """Every row, 2024 first then legacy, for `registerwatch codes --format json`."""
    return [c.as_dict() for c in ALL_CODES]
