"""What a sync reports: the resources, progress events, windows and per-school results."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from registerwatch.adapters.base import Quarantined
from registerwatch.errors import FatalApiError

Resource = Literal["pupils", "registers", "marks", "amendments"]
RESOURCES: tuple[Resource, ...] = ("pupils", "registers", "marks", "amendments")
# Resources pulled for a date window (pupils are always pulled in full).
WINDOWED: tuple[Resource, ...] = ("registers", "marks", "amendments")


class EmptyPullError(FatalApiError):
    """The MIS returned no marks for dates on which the store holds marks: almost always a
    missing API permission (an empty 200), so nothing is changed rather than flagging every
    mark as deleted. Check the API user's permissions and rerun."""


# -- progress events (for the CLI's progress display) ------------------------------------------


@dataclass(frozen=True)
class SchoolStarted:
    school_id: str
    vendor: str
    start: date | None  # first date of the marks window (None: no school days to pull)
    end: date


@dataclass(frozen=True)
class ResourceFetched:
    school_id: str
    resource: Resource
    records: int
    quarantined: int


@dataclass(frozen=True)
class SchoolFinished:
    school_id: str
    status: Literal["ok", "failed"]
    error: str | None = None


SyncEvent = SchoolStarted | ResourceFetched | SchoolFinished
ProgressCallback = Callable[[SyncEvent], None]


# -- results -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """The dates a windowed resource is pulled for, both inclusive."""

    start: date
    end: date
    first_sync: bool  # no bookmark yet: pulled from the start of the school year

    def __str__(self) -> str:
        return f"{self.start.isoformat()}..{self.end.isoformat()}"


@dataclass
class SchoolSyncResult:
    """What one school's sync fetched, changed and set aside; ``status`` ok or failed."""

    school_id: str
    vendor: str
    status: Literal["ok", "failed"] = "ok"
    error: str | None = None
    window: Window | None = None  # the marks window
    fetched: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RESOURCES, 0))
    marks_new: int = 0
    marks_changed: int = 0
    marks_deleted: int = 0
    marks_unchanged: int = 0
    amendments_new: int = 0
    ledger_entries: int = 0
    quarantined: list[Quarantined] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON output. Quarantined records are listed without their raw text,
        which may hold pupil data."""
        return {
            "school": self.school_id,
            "vendor": self.vendor,
            "status": self.status,
            "error": self.error,
            "window": None
            if self.window is None
            else {
                "start": self.window.start.isoformat(),
                "end": self.window.end.isoformat(),
                "first_sync": self.window.first_sync,
            },
            "fetched": dict(self.fetched),
            "marks": {
                "new": self.marks_new,
                "changed": self.marks_changed,
                "deleted": self.marks_deleted,
                "unchanged": self.marks_unchanged,
            },
            "amendments_new": self.amendments_new,
            "ledger_entries": self.ledger_entries,
            "quarantined": [
                {
                    "resource": q.resource,
                    "record": q.record_ref,
                    "field": q.field,
                    "reason": q.reason,
                }
                for q in self.quarantined
            ],
            "warnings": list(self.warnings),
            "seconds": round(self.seconds, 3),
        }


@dataclass
class SyncSummary:
    """Every school's result, in config order."""

    as_of: date
    schools: list[SchoolSyncResult]

    @property
    def failed(self) -> list[SchoolSyncResult]:
        return [r for r in self.schools if not r.ok]

    @property
    def ok(self) -> bool:
        return not self.failed

    def totals(self) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for r in self.schools:
            for resource, n in r.fetched.items():
                counts[f"fetched_{resource}"] += n
            counts["marks_new"] += r.marks_new
            counts["marks_changed"] += r.marks_changed
            counts["marks_deleted"] += r.marks_deleted
            counts["amendments_new"] += r.amendments_new
            counts["ledger_entries"] += r.ledger_entries
            counts["quarantined"] += len(r.quarantined)
        counts["schools_ok"] = sum(r.ok for r in self.schools)
        counts["schools_failed"] = len(self.failed)
        return dict(counts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "ok": self.ok,
            "schools": [r.to_dict() for r in self.schools],
            "totals": self.totals(),
        }
