"""What `registerwatch status` shows, per school: how fresh its registers are, how its last
sync and scan went, its open errors and warnings, and today's returns (issue 10 item 6)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from registerwatch.calendar import LONDON, calendar_for
from registerwatch.config import Settings
from registerwatch.scan.freshness import freshness_of
from registerwatch.scan.pipeline import today_in_london
from registerwatch.store import Store

__all__ = ["SchoolStatus", "school_statuses"]


@dataclass(frozen=True)
class SchoolStatus:
    school_id: str
    never_synced: bool
    registers_complete_to: date | None
    stale: bool
    last_sync_at: datetime | None
    last_sync_outcome: str | None
    last_sync_error: str | None
    last_scan: datetime | None
    errors: int
    warnings: int
    returns: dict[str, int] = field(default_factory=dict)  # today: queued, sent, failed

    @property
    def problem(self) -> str | None:
        """Why a monitoring check should fail for this school (None: all well)."""
        if self.never_synced:
            return "never synced: nothing judged"
        if self.stale:
            complete = self.registers_complete_to
            why = f"; last sync failed: {self.last_sync_error}" if self.last_sync_error else ""
            return f"stale: registers complete to {complete.isoformat() if complete else '?'}{why}"
        if self.returns.get("failed"):
            return f"{self.returns['failed']} return(s) failed today"
        return None

    @property
    def complete_to_text(self) -> str:
        if self.never_synced:
            return "never synced"
        return self.registers_complete_to.isoformat() if self.registers_complete_to else "unknown"

    @property
    def last_sync_text(self) -> str:
        if self.last_sync_at is None:
            return "never"
        return f"{self.last_sync_at.isoformat(timespec='minutes')} {self.last_sync_outcome}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "school": self.school_id,
            "never_synced": self.never_synced,
            "registers_complete_to": self.registers_complete_to.isoformat()
            if self.registers_complete_to
            else None,
            "stale": self.stale,
            "last_sync": None
            if self.last_sync_at is None
            else {
                "at": self.last_sync_at.isoformat(),
                "outcome": self.last_sync_outcome,
                "error": self.last_sync_error,
            },
            "last_scan": self.last_scan.isoformat() if self.last_scan else None,
            "open_errors": self.errors,
            "open_warnings": self.warnings,
            "returns_today": dict(self.returns),
            "problem": self.problem,
        }


def school_statuses(
    store: Store, settings: Settings, *, as_of: date | None = None
) -> list[SchoolStatus]:
    """Every configured school's status on ``as_of`` (default today, Europe/London)."""
    day = as_of or today_in_london()
    scans = store.runs(command="scan", limit=1)
    last_scan = scans[0].started_at if scans else None
    rows: list[SchoolStatus] = []
    for school in settings.schools:
        never = store.school(school.id) is None
        fresh = freshness_of(store, school.id, calendar_for(school), day)
        sync = fresh.status
        open_ = store.load_findings(school.id, status="open")
        severities = Counter(str(s.finding.severity) for s in open_.values())
        today = Counter(
            i.state
            for i in store.outbox_items(school_id=school.id)
            if i.updated_at.astimezone(LONDON).date() == day
        )
        rows.append(
            SchoolStatus(
                school_id=school.id,
                never_synced=never,
                registers_complete_to=fresh.registers_complete_to,
                stale=fresh.stale,
                last_sync_at=sync.last_attempt_at if sync else None,
                last_sync_outcome=sync.last_outcome if sync else None,
                last_sync_error=sync.last_error if sync else None,
                last_scan=last_scan,
                errors=severities["error"],
                warnings=severities["warning"],
                returns={
                    "queued": today["queued"],
                    "sent": today["sent"] + today["acknowledged"],
                    "failed": today["failed"],
                },
            )
        )
    return rows
