"""What a scan reports: each finding with its place in the lifecycle, and each school's part.

(Split from ``pipeline`` so the lifecycle (``lifecycle``) and the outputs can share them.)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from registerwatch.scan.returns_state import ReturnState
from registerwatch.schema import SEVERITY_RANK, Finding, Pupil, Severity

FindingStatus = Literal["new", "open", "resolved"]
SchoolStatus = Literal["scanned", "not_synced", "failed"]
STATUS_ORDER: dict[str, int] = {"new": 0, "open": 1, "resolved": 2}


@dataclass(frozen=True)
class PupilRef:
    """How a finding's pupil is shown: the MIS id always; the name only when asked for."""

    mis_id: str
    upn: str | None
    name: str | None


def _display_name(pupil: Pupil) -> str | None:
    forename = pupil.preferred_forename or pupil.legal_forename
    surname = pupil.preferred_surname or pupil.legal_surname
    name = " ".join(part for part in (forename, surname) if part)
    return name or None


def pupil_refs(pupils: Iterable[Pupil]) -> dict[str, PupilRef]:
    """Store pupil id -> PupilRef."""
    return {p.id: PupilRef(mis_id=p.mis_id, upn=p.upn, name=_display_name(p)) for p in pupils}


def pupil_ref(finding: Finding, refs: dict[str, PupilRef]) -> PupilRef | None:
    """The finding's pupil (None for a school-level finding). A pupil the store no longer
    holds is shown by the MIS id in its store id, '<school>:<mis id>'."""
    if finding.pupil_id is None:
        return None
    known = refs.get(finding.pupil_id)
    if known is not None:
        return known
    prefix = f"{finding.school_id}:"
    pid = finding.pupil_id
    return PupilRef(
        mis_id=pid[len(prefix) :] if pid.startswith(prefix) else pid, upn=None, name=None
    )


@dataclass(frozen=True)
class ScanFinding:
    """A finding with its place in the lifecycle, as the scan and ``findings list`` report it.

    ``finding`` carries ``first_seen``, ``last_seen`` and ``resolved_at``; ``pupil`` is None for
    a school-level finding (a register not taken for a group, an MIS capability notice).
    """

    finding: Finding
    status: FindingStatus
    acknowledged_at: datetime | None = None
    ack_note: str | None = None
    pupil: PupilRef | None = None
    resolution: str | None = None  # 'late': resolved by a return made after its due date
    return_state: ReturnState | None = None  # the outbox item of the return that answers it

    @property
    def late(self) -> bool:
        return self.resolution == "late"

    @property
    def fingerprint(self) -> str:
        return self.finding.fingerprint or ""

    @property
    def acknowledged(self) -> bool:
        return self.acknowledged_at is not None

    def fails(self, fail_on: Severity | None) -> bool:
        """Unresolved, unacknowledged and at or above ``fail_on`` (None: never fails)."""
        if fail_on is None or self.status == "resolved" or self.acknowledged:
            return False
        return SEVERITY_RANK[self.finding.severity] >= SEVERITY_RANK[fail_on]


@dataclass
class SchoolScan:
    """One school's part of a scan. ``status``: scanned, not_synced (nothing in the store yet:
    skipped, its findings untouched) or failed (``error`` says why; findings untouched)."""

    school_id: str
    status: SchoolStatus
    error: str | None = None
    exposes_registers: bool | None = None
    exposes_amendments: bool | None = None
    failed_rules: dict[str, str] = field(default_factory=dict)  # code -> error
    # The last school day sync pulled cleanly (None: not synced, or synced before this was
    # recorded); ``judged_to``: the as_of the rules ran with; ``stale``: SYN001 is open.
    registers_complete_to: date | None = None
    judged_to: date | None = None
    stale: bool = False
    last_sync_at: datetime | None = None
    last_sync_outcome: str | None = None
    last_sync_error: str | None = None
    counts: Counter[str] = field(default_factory=Counter)  # new / open / resolved
    # Where the time went: reading the store, running the rules, saving the findings.
    timings: dict[str, float] = field(default_factory=dict)
    # The marks came from the summary the last scan kept plus what changed since (not a full
    # read of the marks table): scan.context_loader.
    incremental: bool = False
    # The rules that re-judged only what changed since the last scan, carrying their other
    # findings forward (scan.incremental); every other rule ran in full.
    delta_rules: tuple[str, ...] = ()

    @property
    def seconds(self) -> float:
        return sum(self.timings.values())

    @property
    def ok(self) -> bool:
        return self.status != "failed" and not self.failed_rules


@dataclass
class ScanResult:
    """Everything one scan found, by school; ``findings`` holds the school's current findings
    (new and open) and those this scan resolved, in a stable order (school, rule, pupil,
    session)."""

    as_of: date
    scanned_at: datetime
    schools: list[SchoolScan]
    findings: list[ScanFinding]
    run_id: int | None = None
    # True when the scan changed no stored status (an as_of before the latest recorded scan's).
    read_only: bool = False

    @property
    def ok(self) -> bool:
        """Every school scanned or skipped and every rule ran: the scan is complete."""
        return all(s.ok for s in self.schools)

    def failing(self, fail_on: Severity | None) -> list[ScanFinding]:
        return [f for f in self.findings if f.fails(fail_on)]

    def counts(self) -> dict[str, int]:
        by_status = Counter(f.status for f in self.findings)
        by_severity = Counter(
            str(f.finding.severity) for f in self.findings if f.status != "resolved"
        )
        schools = Counter(s.status for s in self.schools)
        return {
            "schools_scanned": schools["scanned"],
            "schools_not_synced": schools["not_synced"],
            "schools_failed": schools["failed"],
            "rules_failed": sum(len(s.failed_rules) for s in self.schools),
            "new": by_status["new"],
            "open": by_status["open"],
            "resolved": by_status["resolved"],
            "resolved_late": sum(1 for f in self.findings if f.late),
            "schools_stale": sum(1 for s in self.schools if s.stale),
            **{str(sev): by_severity[str(sev)] for sev in Severity},
            "acknowledged": sum(
                1 for f in self.findings if f.status != "resolved" and f.acknowledged
            ),
        }


def finding_order(item: ScanFinding) -> tuple[Any, ...]:
    """The stable order of findings in machine output: school, rule, pupil, first session."""
    f = item.finding
    first = f.first_session
    return (
        f.school_id,
        f.rule,
        item.pupil.mis_id if item.pupil else "",
        first.date if first else date.min,
        str(first.session) if first else "",
        item.fingerprint,
    )
