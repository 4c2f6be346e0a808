"""Common Transfer File (CTF) import: see docs/adapters/ctf.md.

``parse_ctf`` reads one file; ``CtfAdapter`` reads a file or a folder as an MIS adapter.
"""

from registerwatch.adapters.ctf.adapter import FACTS, CtfAdapter
from registerwatch.adapters.ctf.document import CtfDocument, CtfHeader, CtfSchool, CtfYearData
from registerwatch.adapters.ctf.marks import (
    NOT_IN_SESSION,
    VENDOR_SINGLE_CHARACTER_CODES,
    DecodedMarks,
    DecodedSession,
    MisalignedMarksError,
    UndecodableSession,
    decode_attendance_marks,
)
from registerwatch.adapters.ctf.parser import CtfFileError, load_ctf_tree, parse_ctf
from registerwatch.adapters.ctf.pupils import derive_mis_id

__all__ = [
    "FACTS",
    "NOT_IN_SESSION",
    "VENDOR_SINGLE_CHARACTER_CODES",
    "CtfAdapter",
    "CtfDocument",
    "CtfFileError",
    "CtfHeader",
    "CtfSchool",
    "CtfYearData",
    "DecodedMarks",
    "DecodedSession",
    "MisalignedMarksError",
    "UndecodableSession",
    "decode_attendance_marks",
    "derive_mis_id",
    "load_ctf_tree",
    "parse_ctf",
]
