"""The scan step: every rule over every synced school (or one), findings saved."""

from __future__ import annotations

from registerwatch.jobs.context import NightContext
from registerwatch.jobs.results import StepResult, error_text, outcome_of

SCAN = "scan"


def scan_step(ctx: NightContext, school_id: str | None = None) -> StepResult:
    """Run every rule over every synced school (or only ``school_id``) and save the findings."""
    from registerwatch.scan import run_scan

    result = run_scan(
        ctx.store, ctx.settings, as_of=ctx.as_of, clock=ctx.clock, school_id=school_id
    )
    if school_id is None:  # a queued night sends it once, when its last school is scanned
        send_morning_email(ctx)
    errors: list[str] = []
    bad = 0
    for school in result.schools:
        if school.status == "failed":
            errors.append(error_text(school.error or f"school {school.school_id!r} failed"))
        for code, problem in sorted(school.failed_rules.items()):
            errors.append(error_text(f"school {school.school_id!r}: rule {code} failed: {problem}"))
        bad += not school.ok
    return StepResult(SCAN, outcome_of(len(result.schools) - bad, bad), result.counts(), errors)


def send_morning_email(ctx: NightContext) -> None:
    """The web app's morning email (issue 13): only to users who asked; never fails the night."""
    from registerwatch.web.morning import after_scan

    after_scan(ctx.store, ctx.settings, today=ctx.as_of, clock=ctx.clock, environ=ctx.environ)
