"""The report step: report.html, findings.csv and summary.csv in the night's folder.

It runs after the LA returns step, so the report shows the returns queued that night as
queued ("will be sent"), not as returns still to make.
"""

from __future__ import annotations

from registerwatch.jobs.context import NightContext
from registerwatch.jobs.results import StepResult

REPORT = "report"


def report_step(ctx: NightContext) -> StepResult:
    """Write the report (report.html, findings.csv, summary.csv) into this night's folder."""
    from registerwatch.reports import write_report

    files = write_report(
        ctx.store, ctx.settings, ctx.night_dir, as_of=ctx.as_of, generated_at=ctx.now()
    )
    summary = files.to_dict()
    return StepResult(REPORT, "ok", {**summary["counts"], "html": str(files.html)})
