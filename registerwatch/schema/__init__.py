"""The common schema (pydantic v2 models)."""

from registerwatch.schema.models import (
    SESSION_ORDER,
    SEVERITY_RANK,
    Address,
    Amendment,
    AmendmentSource,
    Calendar,
    Closure,
    ClosureKind,
    Contact,
    Finding,
    GroupRegisterTimes,
    Mark,
    Notification,
    NotificationKind,
    Pupil,
    Register,
    RegisterTimes,
    School,
    Session,
    SessionRef,
    Severity,
    Term,
    Vendor,
)

__all__ = [
    "SESSION_ORDER", "SEVERITY_RANK", "Address", "Amendment", "AmendmentSource", "Calendar",
    "Closure", "ClosureKind", "Contact", "Finding", "GroupRegisterTimes", "Mark", "Notification", "NotificationKind",
    "Pupil", "Register", "RegisterTimes", "School", "Session", "SessionRef", "Severity", "Term",
    "Vendor",
]
