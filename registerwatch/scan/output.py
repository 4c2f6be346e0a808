"""Findings as machine output: JSON documents and CSV for spreadsheets (pure functions).

Pupils are named by their MIS id (``pupil``) and UPN; a name (``pupil_name``) appears only when
the caller asks for names. ``write_findings_csv`` is the one findings CSV writer: the report's
``findings.csv`` (``reports.csvfiles``) writes through it too, so both have the same columns, so a report that is mailed or archived carries no more pupil data
than it needs. The terminal table lives in the CLI; its order (``table_order``) is here so
that every human-facing view sorts the same way.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from registerwatch.files import spreadsheet_safe
from registerwatch.scan.freshness import SYN001
from registerwatch.scan.pipeline import STATUS_ORDER, ScanFinding, ScanResult, SchoolScan
from registerwatch.schema import SEVERITY_RANK, SessionRef
from registerwatch.validators import Rule, all_rules

__all__ = [
    "FINDINGS_CSV_COLUMNS",
    "PUPIL_NAME_COLUMN",
    "FindingCsvRow",
    "finding_record",
    "findings_csv",
    "findings_csv_columns",
    "findings_document",
    "scan_document",
    "school_record",
    "table_order",
    "write_findings_csv",
]

FINDINGS_CSV_COLUMNS: tuple[str, ...] = (
    "school_id",
    "school_name",
    "rule",
    "rule_name",
    "severity",
    "pupil",
    "upn",
    "first_date",
    "first_session",
    "last_date",
    "last_session",
    "due",
    "overdue",
    "status",
    "message",
    "citation",
    "fix_hint",
    "first_seen",
    "resolved_at",
    "acknowledged_at",
    "ack_note",
    "fingerprint",
)
"""The findings CSV: ``scan --format csv``, ``findings list --format csv`` and the report's
``findings.csv`` all write these columns (docs/scan.md describes them)."""
# With names asked for, the pupil's name follows the MIS id.
PUPIL_NAME_COLUMN = "pupil_name"


@dataclass(frozen=True)
class FindingCsvRow:
    """One finding as a row of the findings CSV, whoever made it (the scan or the report)."""

    school_id: str
    school_name: str | None
    rule: str
    rule_name: str | None
    severity: str
    status: str  # new, open or resolved
    pupil: str | None  # MIS id; None for a school-level finding
    upn: str | None
    pupil_name: str | None
    first_session: SessionRef | None
    last_session: SessionRef | None
    due: date | None
    overdue: bool
    message: str | None
    citation: str | None
    fix_hint: str | None
    first_seen: datetime | None
    resolved_at: datetime | None
    acknowledged_at: datetime | None
    ack_note: str | None
    fingerprint: str


def findings_csv_columns(*, include_names: bool = False) -> tuple[str, ...]:
    if not include_names:
        return FINDINGS_CSV_COLUMNS
    at = FINDINGS_CSV_COLUMNS.index("pupil") + 1
    return FINDINGS_CSV_COLUMNS[:at] + (PUPIL_NAME_COLUMN,) + FINDINGS_CSV_COLUMNS[at:]


def _csv_cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    # MIS ids, messages and notes are not ours to trust (OWASP "CSV injection").
    return spreadsheet_safe(str(value))


def write_findings_csv(rows: Iterable[FindingCsvRow], *, include_names: bool = False) -> str:
    """The one findings CSV writer: a header row, then one row per finding, CRLF line ends
    (RFC 4180); dates ISO, instants UTC ISO, ``yes``/``no``, empty cells for missing values,
    and a text cell a spreadsheet would run as a formula prefixed with an apostrophe."""
    columns = findings_csv_columns(include_names=include_names)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        first, last = row.first_session, row.last_session
        cells: dict[str, object] = {
            **{
                name: getattr(row, name)
                for name in (
                    "school_id",
                    "school_name",
                    "rule",
                    "rule_name",
                    "severity",
                    "pupil",
                    "upn",
                    "pupil_name",
                    "due",
                    "overdue",
                    "status",
                    "message",
                    "citation",
                    "fix_hint",
                    "first_seen",
                    "resolved_at",
                    "acknowledged_at",
                    "ack_note",
                    "fingerprint",
                )
            },
            "first_date": first.date if first else None,
            "first_session": str(first.session) if first else None,
            "last_date": last.date if last else None,
            "last_session": str(last.session) if last else None,
        }
        writer.writerow([_csv_cell(cells[c]) for c in columns])
    return buffer.getvalue()


def _rules_by_code() -> dict[str, Rule]:
    # SYN001 is made by the scan itself (scan.freshness), not a registered rule.
    return {rule.code: rule for rule in [*all_rules(include_removed=True), SYN001]}


def _session(ref: SessionRef | None) -> dict[str, str] | None:
    return None if ref is None else {"date": ref.date.isoformat(), "session": str(ref.session)}


def _instant(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def finding_record(
    item: ScanFinding, *, include_names: bool = False, rules: dict[str, Rule] | None = None
) -> dict[str, Any]:
    """One finding as a JSON object (docs/scan.md describes every key)."""
    rules = rules if rules is not None else _rules_by_code()
    f = item.finding
    rule = rules.get(f.rule)
    record: dict[str, Any] = {
        "rule": f.rule,
        "name": rule.name if rule else None,
        "severity": str(f.severity),
        "school": f.school_id,
        "pupil": item.pupil.mis_id if item.pupil else None,
        "upn": item.pupil.upn if item.pupil else None,
    }
    if include_names:
        record["pupil_name"] = item.pupil.name if item.pupil else None
    record |= {
        "first_session": _session(f.first_session),
        "last_session": _session(f.last_session),
        "due": f.due.isoformat() if f.due else None,
        "message": f.message,
        "citation": rule.citation if rule else None,
        "status": item.status,
        "first_seen": _instant(f.first_seen),
        "fingerprint": f.fingerprint,
        "fix_hint": rule.fix_hint if rule else None,
        "acknowledged": None
        if item.acknowledged_at is None
        else {"at": _instant(item.acknowledged_at), "note": item.ack_note},
        "resolved_at": _instant(f.resolved_at),
        # 'late': resolved by a return made after its due date (counted, never hidden).
        "resolution": item.resolution,
        "return": item.return_state.to_dict() if item.return_state else None,
    }
    if item.return_state is not None and item.return_state.state == "queued":
        record["fix_hint"] = (
            "the return is queued and will be sent by registerwatch: do not make it by hand"
        )
    return record


def school_record(school: SchoolScan) -> dict[str, Any]:
    return {
        "school": school.school_id,
        "status": school.status,
        "error": school.error,
        "exposes_registers": school.exposes_registers,
        "exposes_amendments": school.exposes_amendments,
        "failed_rules": dict(sorted(school.failed_rules.items())),
        "new": school.counts["new"],
        "open": school.counts["open"],
        "resolved": school.counts["resolved"],
        "resolved_late": school.counts["resolved_late"],  # by a return made after its due date
        "registers_complete_to": school.registers_complete_to.isoformat()
        if school.registers_complete_to
        else None,
        "judged_to": school.judged_to.isoformat() if school.judged_to else None,
        "never_synced": school.status == "not_synced",
        "stale": school.stale,
        "last_sync": None
        if school.last_sync_at is None
        else {
            "at": _instant(school.last_sync_at),
            "outcome": school.last_sync_outcome,
            "error": school.last_sync_error,
        },
    }


def scan_document(result: ScanResult, *, include_names: bool = False) -> dict[str, Any]:
    """``registerwatch scan --format json``: ``as_of``, ``schools`` and ``findings``."""
    rules = _rules_by_code()
    return {
        "as_of": result.as_of.isoformat(),
        "read_only": result.read_only,
        "schools": [school_record(s) for s in result.schools],
        "findings": [
            finding_record(f, include_names=include_names, rules=rules) for f in result.findings
        ],
    }


def findings_document(
    findings: Sequence[ScanFinding], *, status: str, include_names: bool = False
) -> dict[str, Any]:
    """``registerwatch findings list --format json``."""
    rules = _rules_by_code()
    return {
        "status": status,
        "resolved_late": sum(1 for f in findings if f.late),
        "findings": [finding_record(f, include_names=include_names, rules=rules) for f in findings],
    }


def findings_csv(
    findings: Iterable[ScanFinding],
    *,
    as_of: date,
    school_names: Mapping[str, str] | None = None,
    include_names: bool = False,
) -> str:
    """Scan findings as the findings CSV; ``overdue``: unresolved and past due on ``as_of``
    (the scan day, or today for stored findings)."""
    rules = _rules_by_code()
    names = school_names or {}
    rows = []
    for item in findings:
        f = item.finding
        rule = rules.get(f.rule)
        rows.append(
            FindingCsvRow(
                school_id=f.school_id,
                school_name=names.get(f.school_id),
                rule=f.rule,
                rule_name=rule.name if rule else None,
                severity=str(f.severity),
                status=item.status,
                pupil=item.pupil.mis_id if item.pupil else None,
                upn=item.pupil.upn if item.pupil else None,
                pupil_name=item.pupil.name if item.pupil else None,
                first_session=f.first_session,
                last_session=f.last_session,
                due=f.due,
                overdue=item.status != "resolved" and f.due is not None and as_of > f.due,
                message=f.message,
                citation=rule.citation if rule else None,
                fix_hint=rule.fix_hint if rule else None,
                first_seen=f.first_seen,
                resolved_at=f.resolved_at,
                acknowledged_at=item.acknowledged_at,
                ack_note=item.ack_note,
                fingerprint=f.fingerprint or "",
            )
        )
    return write_findings_csv(rows, include_names=include_names)


def table_order(item: ScanFinding) -> tuple[Any, ...]:
    """People read new findings first, then by severity, then the nearest deadline."""
    f = item.finding
    first = f.first_session
    return (
        STATUS_ORDER[item.status],
        -SEVERITY_RANK[f.severity],
        f.due or date.max,
        f.school_id,
        f.rule,
        item.pupil.mis_id if item.pupil else "",
        first.date if first else date.min,
        str(first.session) if first else "",
    )
