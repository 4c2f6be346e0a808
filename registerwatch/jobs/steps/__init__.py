"""The night's steps, one module each: ``sync``, ``scan``, ``report``, ``returns`` (the LA returns
and the DfE daily return) and ``submit``.

A step is a function ``(ctx: NightContext) -> StepResult``. The in-process night
(``registerwatch.jobs.nightly.run_job``) and the queued night's tasks
(``registerwatch.jobs.tasks``) call these same functions: the sync and scan steps also take a
``school_id``, so a worker can do one school of them.

Each step imports the module it drives when it runs, so a module that fails to import (a broken
install, a half-landed change) fails that step alone and the rest of the night goes on.
"""

from registerwatch.jobs.steps.report import REPORT, report_step
from registerwatch.jobs.steps.returns import DFE_DAILY, LA_RETURNS, dfe_daily_step, la_returns_step
from registerwatch.jobs.steps.scan import SCAN, scan_step
from registerwatch.jobs.steps.submit import SUBMIT, submit_step
from registerwatch.jobs.steps.sync import SYNC, sync_step

__all__ = [
    "DFE_DAILY",
    "LA_RETURNS",
    "REPORT",
    "SCAN",
    "SUBMIT",
    "SYNC",
    "dfe_daily_step",
    "la_returns_step",
    "report_step",
    "scan_step",
    "submit_step",
    "sync_step",
]
