"""The sync step: pull the registers up to ``as_of``, for every school or one."""

from __future__ import annotations

from typing import Any

from registerwatch.jobs.context import NightContext
from registerwatch.jobs.results import StepResult, error_text, outcome_of

SYNC = "sync"


def sync_step(
    ctx: NightContext, school_id: str | None = None, *, ledger_checked: bool = False
) -> StepResult:
    """Pull every school's registers (or only ``school_id``'s) up to ``as_of``; sync isolates
    schools itself. ``ledger_checked``: the night verified the ledger already (see sync_all)."""
    from registerwatch.sync import sync_all

    kwargs: dict[str, Any] = {"as_of": ctx.as_of, "environ": ctx.environ, "clock": ctx.clock}
    if ctx.adapter_factory is not None:
        kwargs["adapter_factory"] = ctx.adapter_factory
    if school_id is not None:
        kwargs["school_id"] = school_id
    if ledger_checked:
        kwargs["ledger_checked"] = True
    kwargs["accept_broken_ledger"] = ctx.accept_broken_ledger
    summary = sync_all(ctx.settings, ctx.store, **kwargs)
    failed = summary.failed
    errors = [error_text(r.error or f"school {r.school_id!r} failed") for r in failed]
    return StepResult(
        SYNC, outcome_of(len(summary.schools) - len(failed), len(failed)), summary.totals(), errors
    )
