"""The night's work as plain steps, shared by ``registerwatch nightly`` and ``registerwatch run``.

A **step** is a function ``(ctx: NightContext) -> StepResult``: it does one thing (sync, scan,
the LA returns, report, the DfE daily return, submit) for every school, and says how it went.
A **job** is a named list of steps; :func:`run_job` runs one, recording the job and each step in
the store's ``runs`` table, isolating failures, and stopping at a safe point when asked.

Failure isolation, at two levels:

* inside a step, each school (and each return of a school) succeeds or fails on its own: a
  school whose MIS refuses its password does not stop the others being synced, scanned, or
  reported on. A step where some schools failed is ``partial``; where all failed, ``failed``;
* between steps, a step that fails, or crashes with a bug, is recorded and the next step still
  runs: the scan and the report work on what the store already holds (each school's data is
  consistent as of its last good sync), and the outbox's idempotency keys stop a return from
  being sent twice whatever order things happen in.

What the jobs are (times from ``[schedule]``, Europe/London wall clock):

=============  ========  ===========================================================
job            default   steps
=============  ========  ===========================================================
``nightly``    02:00     sync → scan → report
``returns``    07:00     la-returns (school days only) → submit
``dfe-daily``  16:00     sync → dfe-daily for today (school days only) → submit
=============  ========  ===========================================================

``registerwatch nightly`` (one-shot, for cron) runs everything once: sync → scan → la-returns
(when ``as_of`` is a school day) → report → dfe-daily → submit. The report comes after the LA
returns so that it shows the returns queued that night as queued, not as still to make. Its DfE daily return is for
**the day just finished** (``as_of`` minus one calendar day), when that was a school day: run at
02:00 on Saturday it sends Friday's; on Monday it sends nothing, because Sunday was no school
day. (The daemon sends the same return at 16:00 on the day itself; the outbox's idempotency key
is the school and the day, so running both never sends a day twice.)

School days are each school's own (its terms, closures and England bank holidays): on a day
that is a school day for one school but not another, only the first one's returns are made.

The steps themselves live in ``registerwatch.jobs.steps`` (one module each), the results in
``registerwatch.jobs.results`` and the context in ``registerwatch.jobs.context``; the queued
night (``registerwatch.jobs.tasks``) calls the same step functions, a school at a time.

Nothing here prints or exits; the CLI (``registerwatch.cli.running``) does. Log events carry
job and step names, school ids and counts, never pupil data.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from registerwatch.calendar import LONDON
from registerwatch.jobs.context import (
    DEFAULT_OUTPUT_FOLDER,
    RETURNS_FOLDER,
    NightContext,
    default_output_dir,
)
from registerwatch.jobs.results import (
    ERROR_TEXT_LIMIT,
    OUTCOMES,
    JobResult,
    Outcome,
    StepResult,
    combine,
    error_text,
    log_failure,
)
from registerwatch.jobs.steps import (
    DFE_DAILY,
    LA_RETURNS,
    REPORT,
    SCAN,
    SUBMIT,
    SYNC,
    dfe_daily_step,
    la_returns_step,
    report_step,
    scan_step,
    submit_step,
    sync_step,
)
from registerwatch.logging import get_logger

log = get_logger("registerwatch.jobs.nightly")


# -- jobs ----------------------------------------------------------------------------------------

StepFunction = Callable[[NightContext], StepResult]


@dataclass(frozen=True)
class Step:
    name: str
    run: StepFunction


@dataclass(frozen=True)
class Job:
    """A named list of steps, run in order."""

    name: str
    steps: tuple[Step, ...]

    @property
    def step_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.steps)


def _dfe_daily_today(ctx: NightContext) -> StepResult:
    # After the afternoon registers close the day itself is complete: its return goes today.
    return dfe_daily_step(ctx, day=ctx.as_of)


ONE_SHOT = Job(
    "nightly",
    (
        Step(SYNC, sync_step),
        Step(SCAN, scan_step),
        Step(LA_RETURNS, la_returns_step),
        Step(REPORT, report_step),
        Step(DFE_DAILY, dfe_daily_step),
        Step(SUBMIT, submit_step),
    ),
)
"""``registerwatch nightly``: the whole night once."""

SCHEDULED: dict[str, Job] = {
    "nightly": Job(
        "nightly", (Step(SYNC, sync_step), Step(SCAN, scan_step), Step(REPORT, report_step))
    ),
    "returns": Job("returns", (Step(LA_RETURNS, la_returns_step), Step(SUBMIT, submit_step))),
    "dfe-daily": Job(
        "dfe-daily",
        (Step(SYNC, sync_step), Step(DFE_DAILY, _dfe_daily_today), Step(SUBMIT, submit_step)),
    ),
}
"""``registerwatch run``'s jobs, by the ``[schedule]`` key that times them (``dfe_daily`` →
``dfe-daily``)."""


def run_step(
    step: Step,
    ctx: NightContext,
    *,
    job: str,
    job_run: int | None,
    school_id: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> StepResult:
    """Run one step, recording it as ``<job>:<step>``; an exception becomes a failed step.

    ``school_id`` names the one school a queued task did the step for (kept in the record's
    counts as ``school``); ``extra`` adds to the recorded counts (a worker's name, an attempt).
    """
    started = time.monotonic()
    run_id = record_start(ctx, f"{job}:{step.name}")
    log.info(
        "nightly.step_started",
        job=job,
        step=step.name,
        as_of=ctx.as_of.isoformat(),
        school_id=school_id,
    )
    try:
        result = step.run(ctx)
    except Exception as exc:
        log_failure(exc, job=job, step=step.name)
        result = StepResult(step.name, "failed", {}, [error_text(exc)])
    result.name = step.name
    result.run_id = run_id
    result.seconds = time.monotonic() - started
    record_finish(
        ctx,
        run_id,
        result.outcome,
        {
            **result.counts,
            "errors": result.errors,
            "job": job,
            "job_run": job_run,
            "as_of": ctx.as_of.isoformat(),
            "seconds": round(result.seconds, 3),
            **({"school": school_id} if school_id is not None else {}),
            **dict(extra or {}),
        },
    )
    log.info(
        "nightly.step_finished",
        job=job,
        step=step.name,
        school_id=school_id,
        outcome=result.outcome,
        errors=len(result.errors),
        seconds=round(result.seconds, 2),
    )
    return result


def run_job(
    job: Job,
    ctx: NightContext,
    *,
    trigger: str,
    should_stop: Callable[[], bool] = lambda: False,
    on_step: Callable[[str, StepResult | None], None] | None = None,
) -> JobResult:
    """Run ``job``'s steps in order, each isolated and recorded; the job is recorded too.

    ``should_stop`` is asked before each step: once it says yes (a SIGTERM), the remaining
    steps are skipped, listed in the job's record, and the job's outcome is ``interrupted``.
    The step already running is never cut short. ``on_step(name, None)`` is called as each step
    starts and ``on_step(name, result)`` when it ends, for a live display.
    """
    started_at = ctx.now()
    job_run = record_start(ctx, job.name)
    log.info(
        "nightly.job_started",
        job=job.name,
        trigger=trigger,
        as_of=ctx.as_of.isoformat(),
        steps=list(job.step_names),
    )
    results: list[StepResult] = []
    skipped: list[str] = []
    for index, step in enumerate(job.steps):
        if should_stop():
            skipped = [s.name for s in job.steps[index:]]
            log.info("nightly.job_stopping", job=job.name, skipped=skipped)
            break
        if on_step is not None:
            on_step(step.name, None)
        results.append(run_step(step, ctx, job=job.name, job_run=job_run))
        if on_step is not None:
            on_step(step.name, results[-1])
    outcome = combine([r.outcome for r in results], interrupted=bool(skipped))
    finished_at = ctx.now()
    record_finish(
        ctx,
        job_run,
        outcome,
        {
            "trigger": trigger,
            "as_of": ctx.as_of.isoformat(),
            "steps": {r.name: r.outcome for r in results},
            "skipped": skipped,
            "step_runs": [r.run_id for r in results],
            "errors": sum(len(r.errors) for r in results),
        },
    )
    log.info("nightly.job_finished", job=job.name, outcome=outcome, skipped=skipped)
    return JobResult(
        job.name, trigger, ctx.as_of, outcome, results, skipped, job_run, started_at, finished_at
    )


def record_start(ctx: NightContext, command: str) -> int | None:
    # The run history must not become the reason the night's work is not done: a store that
    # refuses the row is logged, and the work goes on (the steps will say if the store is down).
    try:
        return ctx.store.start_run(command, at=ctx.now())
    except Exception as exc:
        log.warning(
            "nightly.record_failed",
            command=command,
            error_type=type(exc).__name__,
            error=error_text(exc),
        )
        return None


def record_finish(
    ctx: NightContext, run_id: int | None, outcome: Outcome, counts: Mapping[str, Any]
) -> None:
    if run_id is None:
        return
    try:
        ctx.store.finish_run(run_id, outcome, dict(counts), at=ctx.now())
    except Exception as exc:
        log.warning(
            "nightly.record_failed",
            run_id=run_id,
            error_type=type(exc).__name__,
            error=error_text(exc),
        )


def today(clock: Callable[[], datetime] | None = None) -> date:
    """Today in Europe/London, by ``clock`` (default: now)."""
    now = clock() if clock is not None else datetime.now(UTC)
    return now.astimezone(LONDON).date()


__all__ = [
    "DEFAULT_OUTPUT_FOLDER",
    "DFE_DAILY",
    "ERROR_TEXT_LIMIT",
    "LA_RETURNS",
    "ONE_SHOT",
    "OUTCOMES",
    "REPORT",
    "RETURNS_FOLDER",
    "SCAN",
    "SCHEDULED",
    "SUBMIT",
    "SYNC",
    "Job",
    "JobResult",
    "NightContext",
    "Outcome",
    "Step",
    "StepResult",
    "combine",
    "default_output_dir",
    "dfe_daily_step",
    "error_text",
    "la_returns_step",
    "record_finish",
    "record_start",
    "report_step",
    "run_job",
    "run_step",
    "scan_step",
    "submit_step",
    "sync_step",
    "today",
]
