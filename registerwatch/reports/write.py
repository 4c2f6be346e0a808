"""Write the report's files: report.html, findings.csv and summary.csv, each atomically, 0600."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from registerwatch.config import Settings
from registerwatch.files import write_private
from registerwatch.reports.build import build_report_data
from registerwatch.reports.csvfiles import CSV_ENCODING, findings_csv, summary_csv
from registerwatch.reports.html import render_html
from registerwatch.reports.model import ReportData
from registerwatch.schema import Severity
from registerwatch.store import Store

HTML_FILE = "report.html"
FINDINGS_FILE = "findings.csv"
SUMMARY_FILE = "summary.csv"


@dataclass(frozen=True)
class ReportFiles:
    """Where the report was written, and the data it was made from."""

    html: Path
    findings_csv: Path
    summary_csv: Path
    data: ReportData

    def to_dict(self) -> dict[str, Any]:
        data = self.data
        return {
            "as_of": data.as_of.isoformat(),
            "generated_at": data.generated_at.isoformat(),
            "last_scan": data.to_dict()["last_scan"],
            "files": {
                "html": str(self.html),
                "findings_csv": str(self.findings_csv),
                "summary_csv": str(self.summary_csv),
            },
            "counts": {
                "open": data.open_findings,
                "error": data.count(Severity.ERROR),
                "warning": data.count(Severity.WARNING),
                "info": data.count(Severity.INFO),
                "overdue": sum(s.overdue for s in data.schools),
                "new": sum(s.new for s in data.schools),
            },
            "schools": [s.to_dict() for s in data.schools],
        }


def write_report(
    store: Store,
    settings: Settings,
    output_dir: str | Path,
    *,
    as_of: date,
    generated_at: datetime,
    school_id: str | None = None,
    include_names: bool = False,
) -> ReportFiles:
    """Build the report for the configured schools (or one, ``school_id``) and write its files.

    The folder is created (0700) when missing. Each file is written atomically with mode 0600
    (``write_private``), so a reader never sees half a report and only the owner can read the
    pupil data in it. Raises ConfigError for a ``school_id`` not in the configuration.
    """
    schools = [settings.school(school_id)] if school_id is not None else settings.schools
    data = build_report_data(
        store, schools, as_of=as_of, generated_at=generated_at, include_names=include_names
    )
    folder = Path(output_dir)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    # The CSVs first and the page last: the page names the CSVs as being beside it.
    findings = write_private(folder / FINDINGS_FILE, findings_csv(data), encoding=CSV_ENCODING)
    summary = write_private(folder / SUMMARY_FILE, summary_csv(data), encoding=CSV_ENCODING)
    html = write_private(folder / HTML_FILE, render_html(data), encoding="utf-8")
    return ReportFiles(html=html, findings_csv=findings, summary_csv=summary, data=data)
