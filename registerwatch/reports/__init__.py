"""Reports people read: one HTML page per run (self-contained, charts inline) and CSV files.

Public API::

    from registerwatch.reports import build_report_data, render_html, write_report

    data = build_report_data(store, settings, as_of=date(2025, 12, 2),
                             generated_at=datetime(2025, 12, 2, 7, 0, tzinfo=UTC))
    html = render_html(data)                      # str, deterministic
    files = write_report(store, settings, "out/", as_of=..., generated_at=...)

``build_report_data`` reads only the store (findings as the scan saved them, marks as sync stored
them) and the school calendars; the renderers read only its result.
"""

from registerwatch.reports.build import build_report_data
from registerwatch.reports.csvfiles import (
    FINDINGS_COLUMNS,
    SUMMARY_COLUMNS,
    findings_csv,
    summary_csv,
)
from registerwatch.reports.deadlines import DUE_BUCKETS
from registerwatch.reports.figures import N_AGE_BUCKETS, school_term
from registerwatch.reports.html import render_html
from registerwatch.reports.model import (
    DueBucket,
    FindingRow,
    NAgeBucket,
    ReportData,
    RuleSummary,
    SchoolReport,
    SchoolTerm,
    WeekRate,
)
from registerwatch.reports.write import (
    FINDINGS_FILE,
    HTML_FILE,
    SUMMARY_FILE,
    ReportFiles,
    write_report,
)

__all__ = [
    "DUE_BUCKETS",
    "FINDINGS_COLUMNS",
    "FINDINGS_FILE",
    "HTML_FILE",
    "N_AGE_BUCKETS",
    "SUMMARY_COLUMNS",
    "SUMMARY_FILE",
    "DueBucket",
    "FindingRow",
    "NAgeBucket",
    "ReportData",
    "ReportFiles",
    "RuleSummary",
    "SchoolReport",
    "SchoolTerm",
    "WeekRate",
    "build_report_data",
    "findings_csv",
    "render_html",
    "school_term",
    "summary_csv",
    "write_report",
]
