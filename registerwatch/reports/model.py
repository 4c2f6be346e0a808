"""The report as plain data: what ``build_report_data`` returns and every renderer reads.

Pure values (frozen dataclasses, tuples, dates), computed once from the store, so that the HTML
page, the CSV files and the CLI's JSON all say the same numbers, and tests can assert on the
numbers without parsing any output.

Pupils appear by MIS id only (``pupil``); ``pupil_name`` is filled only when the caller asks for
names (``include_names=True``). UPNs and dates of birth are never part of the report.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from registerwatch.codes import SessionStatistics
from registerwatch.schema import SessionRef, Severity

# Display and grouping order: the law already broken first.
SEVERITY_ORDER: tuple[Severity, ...] = (Severity.ERROR, Severity.WARNING, Severity.INFO)

# English names, not the process locale's (strftime's %A / %B): the same data must give the same
# bytes on every machine.
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
MONTH_ABBREVIATIONS = tuple(name[:3] for name in MONTH_NAMES)

# A finding seen for the first time by the latest scan, or seen before and still there.
STATUS_NEW = "new"
STATUS_OPEN = "open"


def session_label(ref: SessionRef | None) -> str:
    """'2025-11-03 AM', the form rule messages use for a session ('' for none)."""
    return "" if ref is None else f"{ref.date.isoformat()} {ref.session.value}"


@dataclass(frozen=True)
class FindingRow:
    """One unresolved finding as the report shows it."""

    fingerprint: str
    school_id: str
    rule: str
    rule_name: str
    severity: Severity
    pupil: str | None  # MIS id; None for a school-level finding
    pupil_name: str | None  # only with include_names
    first_session: SessionRef | None
    last_session: SessionRef | None
    due: date | None
    overdue: bool  # the deadline has passed: as_of > due
    due_today: bool  # as_of == due: still lawful today, a breach tomorrow
    message: str
    citation: str
    fix_hint: str
    status: str  # STATUS_NEW | STATUS_OPEN
    first_seen: datetime | None
    acknowledged_at: datetime | None
    ack_note: str | None
    upn: str | None = None  # for the findings CSV (the page shows the MIS id only)
    # The outbox state of the return that answers it ("will be sent: queued 02 Dec 07:00").
    return_chip: str | None = None
    return_state: dict[str, Any] | None = None
    # Why there is no due date, for a finding without one ("no deadline: fix when found").
    due_note: str | None = None

    @property
    def sessions(self) -> str:
        """'2025-11-03 AM' or '2025-11-03 AM to 2025-11-05 PM' ('' for a finding with none)."""
        first, last = session_label(self.first_session), session_label(self.last_session)
        return first if not last or last == first else f"{first} to {last}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "school_id": self.school_id,
            "rule": self.rule,
            "rule_name": self.rule_name,
            "severity": self.severity.value,
            "pupil": self.pupil,
            **({"pupil_name": self.pupil_name} if self.pupil_name is not None else {}),
            "first_session": session_label(self.first_session) or None,
            "last_session": session_label(self.last_session) or None,
            "due": self.due.isoformat() if self.due else None,
            "due_note": self.due_note,
            "overdue": self.overdue,
            "due_today": self.due_today,
            "message": self.message,
            "citation": self.citation,
            "fix_hint": self.fix_hint,
            "status": self.status,
            "acknowledged_at": self.acknowledged_at.isoformat() if self.acknowledged_at else None,
            "ack_note": self.ack_note,
            "return": self.return_state,
        }


class SeverityCounts:
    """Counts by severity, for the dataclasses below that declare ``errors``, ``warnings`` and
    ``info``: their total, and one severity's count."""

    errors: int
    warnings: int
    info: int

    @property
    def total(self) -> int:
        return self.errors + self.warnings + self.info

    def count(self, severity: Severity) -> int:
        return {
            Severity.ERROR: self.errors,
            Severity.WARNING: self.warnings,
            Severity.INFO: self.info,
        }[severity]


@dataclass(frozen=True)
class RuleSummary(SeverityCounts):
    """Open findings of one rule at one school, counted by severity."""

    code: str
    name: str
    summary: str  # the rule's one-line description (first line of its docs)
    severity: Severity  # the rule's usual severity
    citation: str
    fix_hint: str
    errors: int = 0
    warnings: int = 0
    info: int = 0
    new: int = 0
    overdue: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.code,
            "name": self.name,
            "severity": self.severity.value,
            "errors": self.errors,
            "warnings": self.warnings,
            "info": self.info,
            "total": self.total,
            "new": self.new,
            "overdue": self.overdue,
        }


@dataclass(frozen=True)
class WeekRate:
    """Attendance over one school week of the term, from the marks of its complete days."""

    week_start: date  # Monday
    school_days: int  # school days of the week with complete registers (up to as_of - 1)
    partial: bool  # the week has school days after the data ends (the current week)
    statistics: SessionStatistics

    @property
    def attendance_rate(self) -> float:
        return self.statistics.attendance_rate

    @property
    def overall_absence_rate(self) -> float:
        return self.statistics.overall_absence_rate

    @property
    def authorised_absence_rate(self) -> float:
        return self.statistics.authorised_absence_rate

    @property
    def unauthorised_absence_rate(self) -> float:
        return self.statistics.unauthorised_absence_rate

    def to_dict(self) -> dict[str, Any]:
        return {
            "week_start": self.week_start.isoformat(),
            "school_days": self.school_days,
            "partial": self.partial,
            **self.statistics.as_dict(),
        }


@dataclass(frozen=True)
class SchoolTerm:
    """The school term the report's weekly figures cover (autumn, spring or summer)."""

    name: str  # 'Autumn term 2025'
    start: date
    end: date


@dataclass(frozen=True)
class NAgeBucket:
    """Sessions still coded N, by how many school days ago they were."""

    label: str  # '0-2', '3-5', '6-10', '>10'
    min_days: int
    max_days: int | None  # None: no upper bound
    sessions: int
    pupils: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "min_days": self.min_days,
            "max_days": self.max_days,
            "sessions": self.sessions,
            "pupils": self.pupils,
        }


@dataclass(frozen=True)
class DueBucket(SeverityCounts):
    """Open findings whose due date is ``min_days``..``max_days`` days before the report day
    (negative: still to come), counted by severity. ``reports.deadlines`` makes them."""

    label: str  # 'due today', '1-7 days overdue', ...
    min_days: int
    max_days: int | None  # None: no upper bound
    errors: int = 0
    warnings: int = 0
    info: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "min_days": self.min_days,
            "max_days": self.max_days,
            "errors": self.errors,
            "warnings": self.warnings,
            "info": self.info,
            "total": self.total,
        }


@dataclass(frozen=True)
class SchoolReport:
    school_id: str
    name: str
    urn: str | None
    term: SchoolTerm | None
    weeks: tuple[WeekRate, ...]
    term_statistics: SessionStatistics | None  # the term so far, all weeks together
    rules: tuple[RuleSummary, ...]  # every rule, in registry order (zero counts included)
    findings: tuple[FindingRow, ...]  # open findings: errors, then warnings, then info
    n_ages: tuple[NAgeBucket, ...]
    findings_updated_at: datetime | None  # the latest scan result stored for the school
    notes: tuple[str, ...] = ()  # what the report could not show, and why
    # The last school day sync pulled cleanly (None: unknown); never_synced: nothing in the
    # store, so no counts are shown; stale: SYN001 (registers behind the previous school day).
    registers_complete_to: date | None = None
    never_synced: bool = False
    stale: bool = False
    resolved_late: int = 0  # LAR findings resolved by a return made after its due date
    # Findings by days overdue (and the week to come): the chart a data manager acts on.
    due_buckets: tuple[DueBucket, ...] = ()
    include_names: bool = False  # pupils' names are shown (--include-names or the config)

    def by_severity(self, severity: Severity) -> tuple[FindingRow, ...]:
        return tuple(f for f in self.findings if f.severity is severity)

    def count(self, severity: Severity) -> int:
        return sum(1 for f in self.findings if f.severity is severity)

    @property
    def overdue(self) -> int:
        return sum(1 for f in self.findings if f.overdue)

    @property
    def new(self) -> int:
        return sum(1 for f in self.findings if f.status == STATUS_NEW)

    def n_sessions_older_than(self, school_days: int) -> int:
        """Sessions still coded N that are more than ``school_days`` old (whole buckets only)."""
        return sum(b.sessions for b in self.n_ages if b.min_days > school_days)

    @property
    def rules_with_findings(self) -> tuple[RuleSummary, ...]:
        return tuple(r for r in self.rules if r.total)

    def to_dict(self) -> dict[str, Any]:
        return {
            "school_id": self.school_id,
            "name": self.name,
            "urn": self.urn,
            "counts": {
                "error": self.count(Severity.ERROR),
                "warning": self.count(Severity.WARNING),
                "info": self.count(Severity.INFO),
                "overdue": self.overdue,
                "new": self.new,
                "open": len(self.findings),
            },
            "term": None
            if self.term is None
            else {
                "name": self.term.name,
                "start": self.term.start.isoformat(),
                "end": self.term.end.isoformat(),
            },
            "term_statistics": None
            if self.term_statistics is None
            else self.term_statistics.as_dict(),
            "weeks": [w.to_dict() for w in self.weeks],
            "rules": [r.to_dict() for r in self.rules_with_findings],
            "n_ages": [b.to_dict() for b in self.n_ages],
            "due_buckets": [b.to_dict() for b in self.due_buckets],
            "include_names": self.include_names,
            "findings_updated_at": self.findings_updated_at.isoformat()
            if self.findings_updated_at
            else None,
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class ReportData:
    as_of: date  # the report day: registers are complete up to the day before
    generated_at: datetime
    schools: tuple[SchoolReport, ...]
    include_names: bool = False  # some school's pupils are named (see SchoolReport)
    last_scan_at: datetime | None = None  # the latest scan run recorded in the store
    last_scan_outcome: str | None = None  # 'ok', 'failed', 'crashed'; None: did not finish

    @property
    def data_end(self) -> date:
        return self.as_of - timedelta(days=1)

    def count(self, severity: Severity) -> int:
        return sum(s.count(severity) for s in self.schools)

    @property
    def named_schools(self) -> tuple[SchoolReport, ...]:
        """The schools whose pupils the report names."""
        return tuple(s for s in self.schools if s.include_names)

    @property
    def open_findings(self) -> int:
        return sum(len(s.findings) for s in self.schools)

    def to_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "generated_at": self.generated_at.isoformat(),
            "last_scan": None
            if self.last_scan_at is None
            else {"started_at": self.last_scan_at.isoformat(), "outcome": self.last_scan_outcome},
            "schools": [s.to_dict() for s in self.schools],
        }
