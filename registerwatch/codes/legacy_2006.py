"""The legacy 2006 codes, valid up to 18 August 2024 (the 2006 Regulations, SI 2006/1751)."""

from __future__ import annotations

from registerwatch.codes.types import AttendanceCode, Category, Evidence, _row

_C = Category
_V = Evidence.VERIFIED

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
