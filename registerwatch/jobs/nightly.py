"""The night's work as plain steps, shared by ``registerwatch nightly`` and ``registerwatch run``.

A **step** is a function ``(ctx: NightContext) -> StepResult``: it does one thing (sync, scan,
report, the LA returns, the DfE daily return, submit) for every school, and says how it went.
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

``registerwatch nightly`` (one-shot, for cron) runs everything once: sync → scan → report →
la-returns (when ``as_of`` is a school day) → dfe-daily → submit. Its DfE daily return is for
**the day just finished** (``as_of`` minus one calendar day), when that was a school day: run at
02:00 on Saturday it sends Friday's; on Monday it sends nothing, because Sunday was no school
day. (The daemon sends the same return at 16:00 on the day itself; the outbox's idempotency key
is the school and the day, so running both never sends a day twice.)

School days are each school's own (its terms, closures and England bank holidays): on a day
that is a school day for one school but not another, only the first one's returns are made.

Nothing here prints or exits; the CLI (``registerwatch.cli.running``) does. Log events carry
job and step names, school ids and counts, never pupil data; error texts stored in the run
history are cut to their first line and scrubbed of UPN-shaped tokens, because an XSD error
list can quote the values it refused.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from registerwatch.calendar import LONDON, calendar_for
from registerwatch.errors import RegisterwatchError
from registerwatch.logging import UPN_PATTERN, get_logger, redact_text

if TYPE_CHECKING:
    from registerwatch.config import SchoolSettings, Settings
    from registerwatch.store import Store

log = get_logger("registerwatch.jobs.nightly")

Outcome = Literal["ok", "partial", "failed", "interrupted"]
OUTCOMES: tuple[Outcome, ...] = ("ok", "partial", "failed", "interrupted")

# Step names, as recorded in the run history ("<job>:<step>").
SYNC, SCAN, REPORT, LA_RETURNS, DFE_DAILY, SUBMIT = (
    "sync",
    "scan",
    "report",
    "la-returns",
    "dfe-daily",
    "submit",
)

# An error text in the run history is one line of at most this many characters.
ERROR_TEXT_LIMIT = 500
# Where returns go inside the night's output folder.
RETURNS_FOLDER = "returns"
# Default output folder, next to the config file, when --output is not given.
DEFAULT_OUTPUT_FOLDER = "output"


# -- results -------------------------------------------------------------------------------------


@dataclass
class StepResult:
    """How one step went: ``outcome``, what it counted, and one line per failure."""

    name: str
    outcome: Outcome
    counts: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    run_id: int | None = None  # its row in the runs table (None when it could not be recorded)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.name,
            "outcome": self.outcome,
            "counts": dict(self.counts),
            "errors": list(self.errors),
            "run_id": self.run_id,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class JobResult:
    """How one job went: its steps in order, and the steps a stop request skipped."""

    name: str
    trigger: str  # "nightly" (one-shot) or "run" (the daemon)
    as_of: date
    outcome: Outcome
    steps: list[StepResult]
    skipped: list[str] = field(default_factory=list)
    run_id: int | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def failed(self) -> bool:
        """Any step failed, in whole or for some school: what makes ``nightly`` exit 1."""
        return any(s.outcome in ("failed", "partial") for s in self.steps)

    def to_dict(self) -> dict[str, Any]:
        return {
            "job": self.name,
            "trigger": self.trigger,
            "as_of": self.as_of.isoformat(),
            "outcome": self.outcome,
            "run_id": self.run_id,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "steps": [s.to_dict() for s in self.steps],
            "skipped": list(self.skipped),
        }


def combine(outcomes: Sequence[Outcome], *, interrupted: bool = False) -> Outcome:
    """One outcome for many: interrupted beats everything; all ok is ok; all failed is failed;
    anything else is partial. Nothing at all is ok (there was nothing to do)."""
    if interrupted:
        return "interrupted"
    if all(o == "ok" for o in outcomes):
        return "ok"
    if all(o == "failed" for o in outcomes):
        return "failed"
    return "partial"


def _outcome_of(done: int, failed: int) -> Outcome:
    """A step over several schools or items: ``done`` succeeded, ``failed`` did not."""
    if not failed:
        return "ok"
    return "failed" if not done else "partial"


def error_text(exc: BaseException | str) -> str:
    """An error as one line fit for the run history and logs: the first line only (a
    validation error's list of problems can quote pupil data), UPN-shaped tokens removed."""
    text = exc if isinstance(exc, str) else (str(exc) or type(exc).__name__)
    if not isinstance(exc, str) and not isinstance(exc, RegisterwatchError):
        text = (
            f"internal error {type(exc).__name__}: {text} (a bug: rerun with --debug and report it)"
        )
    first = text.strip().splitlines()[0] if text.strip() else text
    first = redact_text(UPN_PATTERN.sub("[redacted]", first))
    return first if len(first) <= ERROR_TEXT_LIMIT else first[: ERROR_TEXT_LIMIT - 1] + "…"


# -- the context steps run in ----------------------------------------------------------------------


def default_output_dir(settings: Settings) -> Path:
    """``output/`` beside the config file (beside the working directory when built in code)."""
    base = settings.source_path.parent if settings.source_path is not None else Path.cwd()
    return base / DEFAULT_OUTPUT_FOLDER


@dataclass
class NightContext:
    """Everything a step needs: the settings, the store, the day, and the clock.

    ``as_of`` is the day the night's work is for (sync up to it, scan "today, before
    registration", the report day); ``clock`` gives the instants recorded and stamped.
    The factories default to the real adapters and transports; tests pass fakes.
    """

    settings: Settings
    store: Store
    as_of: date
    output_dir: Path
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    environ: Mapping[str, str] | None = None
    adapter_factory: Callable[..., Any] | None = None
    transport_factory: Callable[..., Any] | None = None
    accept_broken_ledger: str | None = None  # the reason to sync onto a broken ledger

    def now(self) -> datetime:
        return self.clock().astimezone(UTC)

    @property
    def night_dir(self) -> Path:
        """This night's folder: ``<output>/<as_of>/`` (report files, and ``returns/``)."""
        return self.output_dir / self.as_of.isoformat()

    def is_school_day(self, school: SchoolSettings, day: date | None = None) -> bool:
        return calendar_for(school).is_school_day(day or self.as_of)


# -- the steps -----------------------------------------------------------------------------------
# Each step imports the module it drives when it runs, so a module that fails to import (a
# broken install, a half-landed change) fails that step alone and the rest of the night goes on.


def sync_step(ctx: NightContext) -> StepResult:
    """Pull every school's registers up to ``as_of`` (sync isolates schools itself)."""
    from registerwatch.sync import sync_all

    kwargs: dict[str, Any] = {"as_of": ctx.as_of, "environ": ctx.environ, "clock": ctx.clock}
    kwargs["accept_broken_ledger"] = ctx.accept_broken_ledger
    if ctx.adapter_factory is not None:
        kwargs["adapter_factory"] = ctx.adapter_factory
    summary = sync_all(ctx.settings, ctx.store, **kwargs)
    failed = summary.failed
    errors = [error_text(r.error or f"school {r.school_id!r} failed") for r in failed]
    return StepResult(
        SYNC, _outcome_of(len(summary.schools) - len(failed), len(failed)), summary.totals(), errors
    )


def scan_step(ctx: NightContext) -> StepResult:
    """Run every rule over every synced school and save the findings."""
    from registerwatch.scan import run_scan

    result = run_scan(ctx.store, ctx.settings, as_of=ctx.as_of, clock=ctx.clock)
    errors: list[str] = []
    bad = 0
    for school in result.schools:
        if school.status == "failed":
            errors.append(error_text(school.error or f"school {school.school_id!r} failed"))
        for code, problem in sorted(school.failed_rules.items()):
            errors.append(error_text(f"school {school.school_id!r}: rule {code} failed: {problem}"))
        bad += not school.ok
    return StepResult(SCAN, _outcome_of(len(result.schools) - bad, bad), result.counts(), errors)


def report_step(ctx: NightContext) -> StepResult:
    """Write the report (report.html, findings.csv, summary.csv) into this night's folder."""
    from registerwatch.reports import write_report

    files = write_report(
        ctx.store, ctx.settings, ctx.night_dir, as_of=ctx.as_of, generated_at=ctx.now()
    )
    summary = files.to_dict()
    return StepResult(REPORT, "ok", {**summary["counts"], "html": str(files.html)})


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
                _log_failure(failure.error, step=name, school_id=school.id, return_kind=kind)
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
                    _log_failure(exc, step=name, school_id=school.id, return_kind=kind)
                    continue
                counts["rendered"] += 1
                counts["records"] += item.rendered.record_count
                counts["queued"] += sum(q.created for q in queued)
                counts["already_queued"] += sum(not q.created for q in queued)
            counts["failed"] += failed
            # A kind counts as done when anything of it went through, or nothing failed.
            done += bool(made.exported) or not failed
    return StepResult(name, _outcome_of(done, counts["failed"]), counts, errors)


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
    return StepResult(SUBMIT, _outcome_of(good, len(bad)), counts, errors)


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
        Step(REPORT, report_step),
        Step(LA_RETURNS, la_returns_step),
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


def run_step(step: Step, ctx: NightContext, *, job: str, job_run: int | None) -> StepResult:
    """Run one step, recording it as ``<job>:<step>``; an exception becomes a failed step."""
    started = time.monotonic()
    run_id = _record_start(ctx, f"{job}:{step.name}")
    log.info("nightly.step_started", job=job, step=step.name, as_of=ctx.as_of.isoformat())
    try:
        result = step.run(ctx)
    except Exception as exc:
        _log_failure(exc, job=job, step=step.name)
        result = StepResult(step.name, "failed", {}, [error_text(exc)])
    result.name = step.name
    result.run_id = run_id
    result.seconds = time.monotonic() - started
    _record_finish(
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
        },
    )
    log.info(
        "nightly.step_finished",
        job=job,
        step=step.name,
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
    job_run = _record_start(ctx, job.name)
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
    _record_finish(
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


def _record_start(ctx: NightContext, command: str) -> int | None:
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


def _record_finish(
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


def _log_failure(exc: BaseException, **context: Any) -> None:
    if isinstance(exc, RegisterwatchError):
        log.warning(
            "nightly.failed", error_type=type(exc).__name__, error=error_text(exc), **context
        )
    else:  # a bug: keep the traceback for the log (the redactor still scrubs it)
        log.error("nightly.crashed", error_type=type(exc).__name__, exc_info=exc, **context)


def today(clock: Callable[[], datetime] | None = None) -> date:
    """Today in Europe/London, by ``clock`` (default: now)."""
    now = clock() if clock is not None else datetime.now(UTC)
    return now.astimezone(LONDON).date()


__all__ = [
    "DEFAULT_OUTPUT_FOLDER",
    "ONE_SHOT",
    "OUTCOMES",
    "SCHEDULED",
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
    "report_step",
    "run_job",
    "run_step",
    "scan_step",
    "submit_step",
    "sync_step",
    "today",
]
