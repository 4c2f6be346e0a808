"""The returns steps: the LA notifications that open LAR findings call for (``la-returns``) and
the DfE daily return (``dfe-daily``), made, written and queued in the outbox for each school for
which the day is a school day. Sending is the submit step's.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import TYPE_CHECKING

from registerwatch.calendar import calendar_for
from registerwatch.jobs.context import RETURNS_FOLDER, NightContext
from registerwatch.jobs.results import StepResult, error_text, log_failure, outcome_of
from registerwatch.logging import get_logger

if TYPE_CHECKING:
    from registerwatch.config import SchoolSettings

log = get_logger("registerwatch.jobs.nightly")

LA_RETURNS, DFE_DAILY = "la-returns", "dfe-daily"


def la_returns_step(ctx: NightContext) -> StepResult:
    """Render and queue the LA notifications that open LAR findings call for, for each school
    for which ``as_of`` is a school day."""
    from registerwatch.exports.registry import LA_RETURNS as kinds

    return _returns_step(ctx, kinds, name=LA_RETURNS, day=None)


def dfe_daily_step(ctx: NightContext, day: date | None = None) -> StepResult:
    """Render and queue the DfE daily return for ``day`` (default: the day just finished,
    ``as_of`` minus one), for each school for which ``day`` was a school day."""
    return _returns_step(
        ctx, ("dfe-daily",), name=DFE_DAILY, day=day or ctx.as_of - timedelta(days=1)
    )


# What the returns steps call the returns they make, in messages.
_RETURN_LABELS = {LA_RETURNS: "LA return", DFE_DAILY: "DfE daily return"}


def _returns_step(
    ctx: NightContext, kinds: Sequence[str], *, name: str, day: date | None
) -> StepResult:
    """Make, write and queue ``kinds`` for every school for which ``day`` (default ``as_of``)
    is a school day; the exports builders decide what is due, and ``export_school`` how a
    failing return is isolated (each return stands alone)."""
    from registerwatch.exports.registry import ExportRequest
    from registerwatch.jobs.returns import export_school
    from registerwatch.outbox import queue_return

    counts = {
        "schools_not_school_day": 0,
        "rendered": 0,
        "records": 0,
        "queued": 0,
        "already_queued": 0,
        "failed": 0,
    }
    errors: list[str] = []
    done = 0
    folder = ctx.night_dir / RETURNS_FOLDER
    gate_day = day or ctx.as_of
    for school in ctx.settings.schools:
        if not ctx.is_school_day(school, gate_day):
            counts["schools_not_school_day"] += 1
            log.info(
                "nightly.returns_not_due",
                step=name,
                school_id=school.id,
                day=gate_day.isoformat(),
                reason="not_a_school_day",
            )
            continue
        if ctx.store.school(school.id) is None:
            # Never synced: an empty store would render a return saying the school has no
            # pupils, which is false, so none is made and the night says why.
            counts["failed"] += 1
            errors.append(
                f"school {school.id!r} has not been synced yet, so no "
                f"{_RETURN_LABELS[name]} was made (see the sync step)"
            )
            log.warning(
                "nightly.returns_not_made", step=name, school_id=school.id, reason="not_synced"
            )
            continue
        stale = _stale_reason(ctx, school)
        if stale is not None:
            # Returns built from stale registers would tell the LA something the school has not
            # checked: none is made, the step is partial and says why (SYN001 is open).
            counts["failed"] += 1
            errors.append(f"school {school.id!r}: no {_RETURN_LABELS[name]} made: {stale}")
            log.warning("nightly.returns_not_made", step=name, school_id=school.id, reason="stale")
            continue
        for kind in kinds:
            request = ExportRequest(
                school=school, store=ctx.store, as_of=ctx.as_of, generated_at=ctx.now(), day=day
            )
            made = export_school(kind, request, folder)
            failed = 0
            for failure in made.failures:
                failed += 1
                errors.append(
                    error_text(_name_school(failure.error, school.id, kind, failure.artefact))
                )
                log_failure(failure.error, step=name, school_id=school.id, return_kind=kind)
            for item in made.exported:
                try:
                    queued = queue_return(
                        ctx.store, item.rendered, artefact_path=item.written.xml_path, at=ctx.now()
                    )
                except Exception as exc:  # one return that will not queue must not stop the rest
                    failed += 1
                    errors.append(
                        error_text(_name_school(exc, school.id, kind, item.rendered.file_stem))
                    )
                    log_failure(exc, step=name, school_id=school.id, return_kind=kind)
                    continue
                counts["rendered"] += 1
                counts["records"] += item.rendered.record_count
                counts["queued"] += sum(q.created for q in queued)
                counts["already_queued"] += sum(not q.created for q in queued)
            counts["failed"] += failed
            # A kind counts as done when anything of it went through, or nothing failed.
            done += bool(made.exported) or not failed
    return StepResult(name, outcome_of(done, counts["failed"]), counts, errors)


def _stale_reason(ctx: NightContext, school: SchoolSettings) -> str | None:
    """Why the school's registers are too old to build returns from (None: fresh enough)."""
    from registerwatch.scan.freshness import freshness_of

    fresh = freshness_of(ctx.store, school.id, calendar_for(school), ctx.as_of)
    if not fresh.stale or fresh.registers_complete_to is None:
        return None
    status = fresh.status
    error = f"; last sync failed: {status.last_error}" if status and status.last_error else ""
    return error_text(
        f"registers complete to {fresh.registers_complete_to.isoformat()} only{error}"
    )


def _name_school(exc: BaseException, school_id: str, kind: str, artefact: str | None = None) -> str:
    text = error_text(exc)
    if artefact is not None:
        text = f"{artefact}: {text}"
    return text if school_id in text else f"school {school_id!r}, {kind}: {text}"


__all__ = ["DFE_DAILY", "LA_RETURNS", "dfe_daily_step", "la_returns_step"]
