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
from registerwatch.reports.model import ReportData
from registerwatch.scan.output import FINDINGS_CSV_COLUMNS, FindingCsvRow, write_findings_csv

CSV_ENCODING = "utf-8-sig"

# The same columns as `registerwatch scan --format csv`: one writer makes both.
FINDINGS_COLUMNS: tuple[str, ...] = FINDINGS_CSV_COLUMNS

SUMMARY_COLUMNS: tuple[str, ...] = (
    "school_id",
    "school_name",
    "rule",
    "rule_name",
    "rule_severity",
    "errors",
    "warnings",
    "info",
    "total",
    "new",
    "overdue",
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


def findings_csv(data: ReportData) -> str:
    """One row per open finding, in the order of the HTML report."""
    rows = [
        FindingCsvRow(
            school_id=school.school_id,
            school_name=school.name,
            rule=f.rule,
            rule_name=f.rule_name,
            severity=f.severity.value,
            status=f.status,
            pupil=f.pupil,
            upn=f.upn,
            pupil_name=f.pupil_name,
            first_session=f.first_session,
            last_session=f.last_session,
            due=f.due,
            overdue=f.overdue,
            message=f.message,
            citation=f.citation,
            fix_hint=f.fix_hint,
            first_seen=f.first_seen,
            resolved_at=None,
            acknowledged_at=f.acknowledged_at,
            ack_note=f.ack_note,
            fingerprint=f.fingerprint,
        )
        for school in data.schools
        for f in school.findings
    ]
    return write_findings_csv(rows, include_names=data.include_names)


def summary_csv(data: ReportData) -> str:
    """One row per school and rule (every registered rule, zeros included)."""
    rows = [
        [
            school.school_id,
            school.name,
            r.code,
            r.name,
            r.severity.value,
            r.errors,
            r.warnings,
            r.info,
            r.total,
            r.new,
            r.overdue,
        ]
        for school in data.schools
        for r in school.rules
    ]
    return _csv(SUMMARY_COLUMNS, rows)
