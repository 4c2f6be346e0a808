"""Marks family: is each register entry a lawful code, on the right day, for a pupil on roll."""

from __future__ import annotations

from registerwatch.validators.base import Rule
from registerwatch.validators.marks.MRK001 import UnresolvedNCode
from registerwatch.validators.marks.MRK002 import InvalidCodeForDate
from registerwatch.validators.marks.MRK003 import XCodeForCompulsoryAge
from registerwatch.validators.marks.MRK004 import MarkOutsideRoll
from registerwatch.validators.marks.MRK005 import ClosureCodeMismatch
from registerwatch.validators.marks.MRK006 import LateAfterRegisterClose
from registerwatch.validators.marks.MRK007 import PresentCodeWrongSession
from registerwatch.validators.marks.MRK008 import ReducedTimetableCode


def get_rules() -> list[type[Rule]]:
    return [
        UnresolvedNCode,
        InvalidCodeForDate,
        XCodeForCompulsoryAge,
        MarkOutsideRoll,
        ClosureCodeMismatch,
        LateAfterRegisterClose,
        PresentCodeWrongSession,
        ReducedTimetableCode,
    ]
