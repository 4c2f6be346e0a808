"""LA returns family: sickness, continuous absence, CME, new pupil and deletion returns (reg 13)."""

from __future__ import annotations

from registerwatch.validators.base import Rule
from registerwatch.validators.returns.LAR001 import SicknessReturnDue
from registerwatch.validators.returns.LAR002 import ContinuousAbsenceReturnDue
from registerwatch.validators.returns.LAR003 import ChildrenMissingEducationReferralDue
from registerwatch.validators.returns.LAR004 import NewPupilReturnOverdue
from registerwatch.validators.returns.LAR005 import DeletionReturnMissing
from registerwatch.validators.returns.LAR006 import DeletionGroundUnsupported


def get_rules() -> list[type[Rule]]:
    return [
        SicknessReturnDue,
        ContinuousAbsenceReturnDue,
        ChildrenMissingEducationReferralDue,
        NewPupilReturnOverdue,
        DeletionReturnMissing,
        DeletionGroundUnsupported,
    ]
