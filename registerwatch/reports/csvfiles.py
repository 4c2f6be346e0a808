"""The report's CSV files, for spreadsheets: one row per open finding, one per school and rule.

Written as UTF-8 with a byte-order mark and CRLF line ends (RFC 4180), which is what Excel needs
to read accented names and dashes correctly; every other spreadsheet accepts it too. A text cell
that a spreadsheet would run as a formula (it starts with = + - @ or a tab) is prefixed with an
apostrophe (OWASP "CSV injection"): messages, notes and MIS ids are not ours to trust.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

from registerwatch.files import spreadsheet_safe
from registerwatch.reports.model import ReportData, session_label

CSV_ENCODING = "utf-8-sig"

FINDINGS_COLUMNS: tuple[str, ...] = (
    "school_id", "school_name", "rule", "rule_name", "severity", "pupil", "first_session",
    "last_session", "due", "overdue", "status", "message", "citation", "fix_hint",
    "acknowledged_at", "ack_note", "fingerprint",
)
# With include_names, the pupil's name follows the MIS id.
PUPIL_NAME_COLUMN = "pupil_name"

SUMMARY_COLUMNS: tuple[str, ...] = (
    "school_id", "school_name", "rule", "rule_name", "rule_severity", "errors", "warnings",
    "info", "total", "new", "overdue",
)

def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = str(value)
    return spreadsheet_safe(text)


def _csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([_cell(v) for v in row] for row in rows)
    return buffer.getvalue()


def findings_columns(data: ReportData) -> tuple[str, ...]:
    if not data.include_names:
        return FINDINGS_COLUMNS
    at = FINDINGS_COLUMNS.index("pupil") + 1
    return FINDINGS_COLUMNS[:at] + (PUPIL_NAME_COLUMN,) + FINDINGS_COLUMNS[at:]


def findings_csv(data: ReportData) -> str:
    """One row per open finding, in the order of the HTML report."""
    rows: list[list[object]] = []
    for school in data.schools:
        for f in school.findings:
            row: list[object] = [
                school.school_id, school.name, f.rule, f.rule_name, f.severity.value, f.pupil,
                session_label(f.first_session), session_label(f.last_session),
                f.due.isoformat() if f.due else None, f.overdue, f.status, f.message,
                f.citation, f.fix_hint,
                f.acknowledged_at.isoformat() if f.acknowledged_at else None, f.ack_note,
                f.fingerprint,
            ]
            if data.include_names:
                row.insert(FINDINGS_COLUMNS.index("pupil") + 1, f.pupil_name)
            rows.append(row)
    return _csv(findings_columns(data), rows)


def summary_csv(data: ReportData) -> str:
    """One row per school and rule (every registered rule, zeros included)."""
    rows = [
        [school.school_id, school.name, r.code, r.name, r.severity.value, r.errors, r.warnings,
         r.info, r.total, r.new, r.overdue]
        for school in data.schools for r in school.rules
    ]
    return _csv(SUMMARY_COLUMNS, rows)
