"""How far each school's registers can be judged, and SYN001 when they are behind.

Sync records, per school, the last school day whose sessions it pulled cleanly
(``Store.sync_status``: ``registers_complete_to``). The scan judges nothing after that day: it
runs the rules "as of" the next school day after it (or the scan's own ``as_of``, whichever is
earlier), so no REG, MRK or LAR finding rests on days the store has not seen, and a stored
finding is neither opened nor resolved by an unseen day.

SYN001 ``registers-not-synced`` is a school-level error when the registers are complete to a day
before the previous school day (relative to the scan's ``as_of``). It is made here, not by a rule
module under ``validators/``: a rule is pure over the school's records (its ``ScanContext``),
and what sync achieved, when it last tried and what the MIS answered are not records of the
school but facts about the pipeline, kept beside them in the store. It resolves on the next good
sync (the next scan no longer finds it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from registerwatch.calendar import SchoolCalendar
from registerwatch.errors import CalendarError
from registerwatch.schema import Finding, Severity
from registerwatch.store import Connection, Store, SyncStatus
from registerwatch.validators import Rule
from registerwatch.validators.base import fingerprint

__all__ = ["SYN001", "Freshness", "RegistersNotSynced", "freshness_of", "registers_not_synced"]


class RegistersNotSynced(Rule):
    """SYN001: the school's registers are not synced up to the previous school day.

    What it checks:
        Whether sync has pulled every session up to the school day before the scan day.

    Why it matters:
        Findings rest on what the store holds. A school whose MIS could not be read is judged
        only up to the last day it was read; without this notice the missing days would read as
        "nothing wrong".

    Example:
        Sync failed on Tuesday and Wednesday night; Thursday's scan says the registers are
        complete to Monday, names the last sync attempt and its error.

    How to fix:
        Fix what stopped the sync (credentials, the MIS's availability) and run
        `registerwatch sync`; the finding resolves on the next good sync.

    References:
        docs/sync.md, docs/scan.md.
    """

    code = "SYN001"
    name = "registers-not-synced"
    title = "registers complete to {complete_to}: {reason}"
    severity = Severity.ERROR
    citation = "registerwatch: the scan can judge only the sessions sync has pulled"
    fix_hint = (
        "fix what stopped the sync and run `registerwatch sync`; resolves on the next good sync"
    )


SYN001 = RegistersNotSynced()


@dataclass(frozen=True)
class Freshness:
    """One school's freshness on a scan day. ``judged_to`` is the ``as_of`` the rules run with;
    ``stale`` means SYN001 (complete to a day before the previous school day)."""

    school_id: str
    status: SyncStatus | None
    expected_to: date | None  # the previous school day before as_of
    judged_to: date
    stale: bool

    @property
    def registers_complete_to(self) -> date | None:
        return self.status.registers_complete_to if self.status is not None else None


def _previous_school_day(calendar: SchoolCalendar, day: date) -> date | None:
    try:
        return calendar.previous_school_day(day)
    except CalendarError:
        return None


def _next_school_day(calendar: SchoolCalendar, day: date) -> date:
    try:
        return calendar.next_school_day(day)
    except CalendarError:
        return day + timedelta(days=1)


def freshness_of(
    store: Store,
    school_id: str,
    calendar: SchoolCalendar,
    as_of: date,
    *,
    conn: Connection | None = None,
) -> Freshness:
    """The school's freshness for a scan on ``as_of``. A store synced before sync recorded its
    status (no row) is judged as before: up to ``as_of``, never stale."""
    status = store.sync_status(school_id, conn=conn)
    expected = _previous_school_day(calendar, as_of)
    complete = status.registers_complete_to if status is not None else None
    if status is None:
        return Freshness(school_id, None, expected, as_of, stale=False)
    if complete is None:
        # Synced, but no school day was complete yet (the first day of the year): nothing to
        # judge before it either.
        return Freshness(school_id, status, expected, as_of, stale=False)
    judged = min(as_of, _next_school_day(calendar, complete))
    stale = expected is not None and complete < expected
    return Freshness(school_id, status, expected, judged, stale=stale)


def _when(value: datetime | None) -> str:
    return value.isoformat(timespec="minutes") if value is not None else "never"


def registers_not_synced(fresh: Freshness) -> Finding | None:
    """The school's SYN001 finding, or None when its registers are fresh."""
    status = fresh.status
    if not fresh.stale or status is None or fresh.registers_complete_to is None:
        return None
    if status.last_outcome == "failed":
        reason = (
            f"the last sync attempt ({_when(status.last_attempt_at)}) failed: "
            f"{status.last_error or 'no error recorded'}"
        )
    else:
        reason = (
            f"the last sync ({_when(status.last_attempt_at)}) did not reach "
            f"{fresh.expected_to.isoformat() if fresh.expected_to else 'the previous school day'}"
        )
    complete_to = fresh.registers_complete_to
    return Finding(
        rule=SYN001.code,
        severity=Severity.ERROR,
        school_id=fresh.school_id,
        message=SYN001.title.format(complete_to=complete_to.isoformat(), reason=reason),
        evidence={
            "registers_complete_to": complete_to.isoformat(),
            "expected_to": fresh.expected_to.isoformat() if fresh.expected_to else None,
            "last_attempt_at": _when(status.last_attempt_at),
            "last_outcome": status.last_outcome,
            "last_error": status.last_error,
            "last_success_at": _when(status.last_success_at),
        },
        # One SYN001 per school at a time: it resolves on the next good sync and a later
        # outage opens it again (as the same fingerprint: its history shows both).
        fingerprint=fingerprint(SYN001.code, fresh.school_id, None, None),
    )
