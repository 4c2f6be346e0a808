"""Findings as machine output: JSON documents and CSV for spreadsheets (pure functions).

Pupils are named by their MIS id (``pupil``) and UPN; a name (``pupil_name``) appears only when
the caller asks for names, so a report that is mailed or archived carries no more pupil data
than it needs. The terminal table lives in the CLI; its order (``table_order``) is here so
that every human-facing view sorts the same way.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any

from registerwatch.scan.pipeline import STATUS_ORDER, ScanFinding, ScanResult, SchoolScan
from registerwatch.schema import SEVERITY_RANK, SessionRef
from registerwatch.validators import Rule, all_rules

__all__ = ["CSV_COLUMNS", "finding_record", "findings_csv", "findings_document",
           "scan_document", "school_record", "table_order"]

CSV_COLUMNS = (
    "school", "rule", "name", "severity", "status", "pupil", "upn", "first_date",
    "first_session", "last_date", "last_session", "due", "message", "citation", "fix_hint",
    "first_seen", "resolved_at", "acknowledged_at", "ack_note", "fingerprint",
)
# Spreadsheets run a cell that starts with one of these as a formula (CSV injection): such
# text cells get a leading apostrophe, which spreadsheets show as text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _rules_by_code() -> dict[str, Rule]:
    return {rule.code: rule for rule in all_rules(include_removed=True)}


def _session(ref: SessionRef | None) -> dict[str, str] | None:
    return None if ref is None else {"date": ref.date.isoformat(), "session": str(ref.session)}


def _instant(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def finding_record(item: ScanFinding, *, include_names: bool = False,
                   rules: dict[str, Rule] | None = None) -> dict[str, Any]:
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
        "acknowledged": None if item.acknowledged_at is None else {
            "at": _instant(item.acknowledged_at), "note": item.ack_note},
        "resolved_at": _instant(f.resolved_at),
    }
    return record


def school_record(school: SchoolScan) -> dict[str, Any]:
    return {
        "school": school.school_id, "status": school.status, "error": school.error,
        "exposes_registers": school.exposes_registers,
        "exposes_amendments": school.exposes_amendments,
        "failed_rules": dict(sorted(school.failed_rules.items())),
        "new": school.counts["new"], "open": school.counts["open"],
        "resolved": school.counts["resolved"],
    }


def scan_document(result: ScanResult, *, include_names: bool = False) -> dict[str, Any]:
    """``registerwatch scan --format json``: ``as_of``, ``schools`` and ``findings``."""
    rules = _rules_by_code()
    return {
        "as_of": result.as_of.isoformat(),
        "schools": [school_record(s) for s in result.schools],
        "findings": [finding_record(f, include_names=include_names, rules=rules)
                     for f in result.findings],
    }


def findings_document(findings: Sequence[ScanFinding], *, status: str,
                      include_names: bool = False) -> dict[str, Any]:
    """``registerwatch findings list --format json``."""
    rules = _rules_by_code()
    return {"status": status,
            "findings": [finding_record(f, include_names=include_names, rules=rules)
                         for f in findings]}


def _text_cell(value: str | None) -> str:
    if not value:
        return ""
    return "'" + value if value.startswith(_FORMULA_START) else value


def findings_csv(findings: Iterable[ScanFinding], *, include_names: bool = False) -> str:
    """CSV with a header row (CSV_COLUMNS, plus ``pupil_name`` after ``upn`` when names are
    asked for); dates ISO, instants UTC ISO, empty cells for missing values."""
    columns = list(CSV_COLUMNS)
    if include_names:
        columns.insert(columns.index("upn") + 1, "pupil_name")
    rules = _rules_by_code()
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for item in findings:
        f = item.finding
        rule = rules.get(f.rule)
        first, last = f.first_session, f.last_session
        row: dict[str, Any] = {
            "school": f.school_id, "rule": f.rule, "name": rule.name if rule else "",
            "severity": str(f.severity), "status": item.status,
            "pupil": item.pupil.mis_id if item.pupil else "",
            "upn": (item.pupil.upn or "") if item.pupil else "",
            "pupil_name": _text_cell(item.pupil.name if item.pupil else None),
            "first_date": first.date.isoformat() if first else "",
            "first_session": str(first.session) if first else "",
            "last_date": last.date.isoformat() if last else "",
            "last_session": str(last.session) if last else "",
            "due": f.due.isoformat() if f.due else "",
            "message": _text_cell(f.message),
            "citation": _text_cell(rule.citation if rule else None),
            "fix_hint": _text_cell(rule.fix_hint if rule else None),
            "first_seen": _instant(f.first_seen) or "",
            "resolved_at": _instant(f.resolved_at) or "",
            "acknowledged_at": _instant(item.acknowledged_at) or "",
            "ack_note": _text_cell(item.ack_note),
            "fingerprint": f.fingerprint or "",
        }
        writer.writerow([row[c] for c in columns])
    return buffer.getvalue()


def table_order(item: ScanFinding) -> tuple[Any, ...]:
    """People read new findings first, then by severity, then the nearest deadline."""
    f = item.finding
    first = f.first_session
    return (STATUS_ORDER[item.status], -SEVERITY_RANK[f.severity],
            f.due or date.max, f.school_id, f.rule, item.pupil.mis_id if item.pupil else "",
            first.date if first else date.min, str(first.session) if first else "")
