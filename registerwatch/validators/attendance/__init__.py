"""Attendance family: thresholds that call for action (penalty notice, persistent and severe
absence, EHC plan and social worker pupils)."""

from __future__ import annotations

from registerwatch.validators.attendance.ATT001 import PenaltyNoticeThreshold
from registerwatch.validators.attendance.ATT002 import PersistentAbsence
from registerwatch.validators.attendance.ATT003 import SevereAbsence
from registerwatch.validators.attendance.ATT004 import EhcpAttendanceFalling
from registerwatch.validators.attendance.ATT005 import SocialWorkerUnexplainedAbsence
from registerwatch.validators.attendance.ATT006 import SuspensionWithoutProvision
from registerwatch.validators.attendance.ATT007 import AttendanceBelowLocalTrigger
from registerwatch.validators.base import Rule


def get_rules() -> list[type[Rule]]:
    return [
        PenaltyNoticeThreshold,
        PersistentAbsence,
        SevereAbsence,
        EhcpAttendanceFalling,
        SocialWorkerUnexplainedAbsence,
        SuspensionWithoutProvision,
        AttendanceBelowLocalTrigger,
    ]
