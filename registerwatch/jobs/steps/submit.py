"""The submit step: send every queued return once."""

from __future__ import annotations

from typing import Any

from registerwatch.jobs.context import NightContext
from registerwatch.jobs.results import StepResult, error_text, outcome_of

SUBMIT = "submit"


def submit_step(ctx: NightContext) -> StepResult:
    """Send every queued return once (the outbox isolates items and transports itself)."""
    from registerwatch.outbox import submit

    kwargs: dict[str, Any] = {"environ": ctx.environ, "clock": ctx.clock}
    if ctx.transport_factory is not None:
        kwargs["transport_factory"] = ctx.transport_factory
    report = submit(ctx.settings, ctx.store, **kwargs)
    counts = report.counts()
    bad = report.of("failed") + report.of("deferred")
    errors = [error_text(o.error or f"{o.return_kind} item {o.item_id}: {o.outcome}") for o in bad]
    good = counts["sent"] + counts["acknowledged"]
    return StepResult(SUBMIT, outcome_of(good, len(bad)), counts, errors)
