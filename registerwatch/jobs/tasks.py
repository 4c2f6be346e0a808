"""The queued night's tasks (procrastinate), run by ``registerwatch worker``.

A queued night is one ``nightly`` row in the runs table (made by :func:`~registerwatch.jobs.
queue.enqueue_night`) and these tasks, which record their steps against it as the in-process
night does (``nightly:sync``, ``nightly:scan`` … with ``job_run`` naming the night), whichever
worker does them:

* ``sync_school`` (one per school): the sync step for that school; then it queues the school's
  scan. A failed sync is retried with exponential backoff (:data:`SCHOOL_RETRY`); after the last
  attempt the scan is queued all the same, because the scan on what the store holds is what
  opens SYN001 for a school whose MIS cannot be reached (as in the in-process night);
* ``scan_school`` (one per school): the scan step for that school; then it queues
  ``finish_night``;
* ``finish_night``: once every school of the night has been scanned, the rest of the night's
  steps in order (the LA returns, the report, the DfE daily return, submit), then the night's
  own record. Earlier calls find schools still to scan and do nothing; the night's record being
  finished makes a late duplicate do nothing too.
* ``whole_job``: one of ``registerwatch run``'s other jobs (``returns``, ``dfe-daily``) run
  whole on a worker, under the store's work lock.

Two workers never sync or scan the same school at once: the tasks of a school share the
procrastinate ``lock`` ``school:<id>`` (a school's jobs run one at a time, in the order queued),
and the task itself holds the store's PostgreSQL advisory lock for the school
(:class:`~registerwatch.store.PgAdvisoryLock`, kind ``school:<id>``), which also holds off any
other process of any machine working on that school. The server releases an advisory lock when
its holder's connection ends, so a worker killed mid-school leaves no lock behind; its job is
put back by the surviving workers' stalled-job check (``registerwatch.jobs.queue``).

The settings, the store URL and the output folder come from the worker (procrastinate's
``additional_context``): every worker of a store must run with the same config.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import procrastinate
from procrastinate import JobContext, RetryStrategy
from procrastinate.exceptions import AlreadyEnqueued

from registerwatch.errors import RegisterwatchError
from registerwatch.jobs.context import NightContext
from registerwatch.jobs.nightly import (
    ONE_SHOT,
    SCAN,
    SCHEDULED,
    SYNC,
    Step,
    StepResult,
    combine,
    error_text,
    record_finish,
    run_job,
    run_step,
)
from registerwatch.jobs.steps.scan import send_morning_email
from registerwatch.logging import get_logger
from registerwatch.store import PgAdvisoryLock

if TYPE_CHECKING:
    from registerwatch.config import Settings
    from registerwatch.store import Store

log = get_logger("registerwatch.jobs.tasks")

# The app the tasks belong to. Its connector is a placeholder that never connects:
# ``registerwatch.jobs.queue.opened_queue`` puts in the store's for as long as it is used.
app = procrastinate.App(connector=procrastinate.PsycopgConnector())

# A failed school is tried 4 times in all, waiting 8, 64 and 512 s between tries
# (procrastinate waits exponential_wait ** attempts): a MIS down for a few minutes at 02:00 is
# still synced that night, and one down all night gives up within ten minutes.
SCHOOL_RETRY = RetryStrategy(max_attempts=4, exponential_wait=8)
SCHOOL_ATTEMPTS = 4

# The steps after the per-school sync and scan, by the kind of night: the one-shot night
# (``nightly --queue``) does everything ``registerwatch nightly`` does; the daemon's 02:00 night
# only reports (its returns and submit are the 07:00 job's).
AFTER_SCAN: dict[str, tuple[str, ...]] = {
    "nightly": tuple(s.name for s in ONE_SHOT.steps if s.name not in (SYNC, SCAN)),
    "run": tuple(s.name for s in SCHEDULED["nightly"].steps if s.name not in (SYNC, SCAN)),
}

# How often a task asks again for a school's advisory lock held elsewhere.
LOCK_POLL_SECONDS = 0.5


class SchoolSyncFailed(RegisterwatchError):
    """A school's sync failed and will be tried again (procrastinate retries the task)."""


@dataclass(frozen=True)
class WorkerContext:
    """What every task of one worker shares: the settings and where the night's files go."""

    settings: Settings
    output_dir: Path
    worker_name: str

    @property
    def store_url(self) -> str:
        return str(self.settings.store.url)


def school_lock(school_id: str) -> str:
    """The procrastinate lock (and advisory lock kind) that serialises one school's tasks."""
    return f"school:{school_id}"


def _worker(context: JobContext) -> WorkerContext:
    found = context.additional_context.get("registerwatch")
    if not isinstance(found, WorkerContext):
        raise RuntimeError("task run outside `registerwatch worker` (no worker context)")
    return found


@contextmanager
def _night(worker: WorkerContext, as_of: str) -> Iterator[NightContext]:
    from registerwatch.store import Store

    with Store(worker.store_url) as store:
        yield NightContext(
            settings=worker.settings,
            store=store,
            as_of=date.fromisoformat(as_of),
            output_dir=worker.output_dir,
            clock=lambda: datetime.now(UTC),
        )


@contextmanager
def _school_held(store_url: str, school_id: str) -> Iterator[None]:
    """Hold the store's advisory lock for ``school_id`` (waiting for it), then let it go."""
    lock = PgAdvisoryLock(store_url, kind=school_lock(school_id))
    try:
        while not lock.try_acquire(f"worker {school_lock(school_id)}"):
            time.sleep(LOCK_POLL_SECONDS)
        yield
    finally:
        lock.release()


def _attempt(context: JobContext) -> int:
    return (context.job.attempts if context.job is not None else 0) + 1


@app.task(name="registerwatch.sync_school", pass_context=True, retry=SCHOOL_RETRY)
def sync_school(context: JobContext, night: int, as_of: str, kind: str, school_id: str) -> str:
    """Sync one school for the night ``night``; queue its scan (now, or after the last try)."""
    worker = _worker(context)
    attempt = _attempt(context)
    with _school_held(worker.store_url, school_id), _night(worker, as_of) as ctx:
        result = run_step(
            Step(SYNC, partial(_sync_one, school_id=school_id)),
            ctx,
            job="nightly",
            job_run=night,
            school_id=school_id,
            extra={"worker": worker.worker_name, "attempt": attempt},
        )
    if result.outcome == "failed" and attempt < SCHOOL_ATTEMPTS:
        raise SchoolSyncFailed(
            f"school {school_id!r}: sync failed (try {attempt} of {SCHOOL_ATTEMPTS}); "
            f"it will be tried again: {result.errors[0] if result.errors else 'see the log'}"
        )
    _defer(scan_school, school_lock(school_id), None, night, as_of, kind, school_id=school_id)
    return result.outcome


def _sync_one(ctx: NightContext, *, school_id: str) -> StepResult:
    from registerwatch.jobs.steps import sync_step

    # The ledger was verified once when the night was queued (enqueue_night), not per school:
    # a walk of the whole chain per school would make the night quadratic in the trust's size.
    return sync_step(ctx, school_id=school_id, ledger_checked=True)


def _scan_one(ctx: NightContext, *, school_id: str) -> StepResult:
    from registerwatch.jobs.steps import scan_step

    return scan_step(ctx, school_id=school_id)


@app.task(name="registerwatch.scan_school", pass_context=True)
def scan_school(context: JobContext, night: int, as_of: str, kind: str, school_id: str) -> str:
    """Scan one school for the night ``night``; then see whether the night can be finished."""
    worker = _worker(context)
    with _school_held(worker.store_url, school_id), _night(worker, as_of) as ctx:
        result = run_step(
            Step(SCAN, partial(_scan_one, school_id=school_id)),
            ctx,
            job="nightly",
            job_run=night,
            school_id=school_id,
            extra={"worker": worker.worker_name},
        )
    _defer(finish_night, f"night:{night}", f"finish:{night}", night, as_of, kind)
    return result.outcome


def _defer(
    task: Any, lock: str | None, queueing_lock: str | None, *args: Any, **kwargs: Any
) -> None:
    names = ("night", "as_of", "kind")
    try:
        task.configure(lock=lock, queueing_lock=queueing_lock).defer(
            **dict(zip(names, args, strict=True)), **kwargs
        )
    except AlreadyEnqueued:  # a finish_night already waits: it will see this school's scan
        log.info("queue.already_queued", task=task.name, queueing_lock=queueing_lock)


def night_steps(store: Store, night: int, step: str, schools: int) -> dict[str, Any]:
    """The night's finished ``nightly:<step>`` records by school (the latest try of each).

    Only the newest records are read: the night's own are among them (a few nights' worth, in
    case nights overlap), and the history of a trust grows by thousands of rows a month."""
    found: dict[str, Any] = {}
    newest = max(1_000, 4 * schools * (SCHOOL_ATTEMPTS + 1))
    for record in store.runs(command=f"nightly:{step}", limit=newest):
        counts = record.counts or {}
        if counts.get("job_run") != night or record.outcome is None:
            continue
        school = counts.get("school")
        if isinstance(school, str) and (school not in found or record.id > found[school].id):
            found[school] = record
    return found


@app.task(name="registerwatch.finish_night", pass_context=True)
def finish_night(context: JobContext, night: int, as_of: str, kind: str) -> str:
    """Once every school is scanned: the night's remaining steps, then its record."""
    worker = _worker(context)
    schools = [s.id for s in worker.settings.schools]
    with _night(worker, as_of) as ctx:
        record = next(
            (r for r in ctx.store.runs(command="nightly", limit=1000) if r.id == night), None
        )
        if record is None or record.finished_at is not None:
            return "already finished"
        scanned = night_steps(ctx.store, night, SCAN, len(schools))
        waiting = [s for s in schools if s not in scanned]
        if waiting:
            return f"waiting for {len(waiting)} schools"
        synced = night_steps(ctx.store, night, SYNC, len(schools))
        send_morning_email(ctx)
        by_name = {step.name: step for step in ONE_SHOT.steps}
        results = [
            run_step(
                by_name[name],
                ctx,
                job="nightly",
                job_run=night,
                extra={"worker": worker.worker_name},
            )
            for name in AFTER_SCAN[kind]
        ]
        steps: dict[str, Any] = {
            SYNC: combine([synced[s].outcome for s in schools if s in synced]),
            SCAN: combine([scanned[s].outcome for s in schools]),
            **{r.name: r.outcome for r in results},
        }
        errors = sum(len(r.counts.get("errors", [])) for r in (*synced.values(), *scanned.values()))
        record_finish(
            ctx,
            night,
            combine(list(steps.values())),
            {
                "trigger": "queue" if kind == "nightly" else "run",
                "as_of": as_of,
                "steps": steps,
                "skipped": [],
                "schools": len(schools),
                "step_runs": [r.run_id for r in results],
                "errors": errors + sum(len(r.errors) for r in results),
            },
        )
    log.info("queue.night_finished", night=night, steps=steps)
    return str(combine(list(steps.values())))


@app.task(name="registerwatch.whole_job", pass_context=True, lock="whole-job")
def whole_job(context: JobContext, job: str, as_of: str) -> str:
    """One of ``registerwatch run``'s jobs (``returns``, ``dfe-daily``), run whole, in order,
    under the store's work lock (it touches every school)."""
    from registerwatch.jobs.lock import store_lock

    worker = _worker(context)
    lock = store_lock(worker.store_url, f"worker {job}", wait=True)
    if not lock.acquire():
        return "not run"
    try:
        with _night(worker, as_of) as ctx:
            result = run_job(SCHEDULED[job], ctx, trigger="queue")
    finally:
        lock.release()
    return result.outcome


__all__ = [
    "AFTER_SCAN",
    "SCHOOL_ATTEMPTS",
    "SCHOOL_RETRY",
    "SchoolSyncFailed",
    "WorkerContext",
    "app",
    "error_text",
    "finish_night",
    "night_steps",
    "scan_school",
    "school_lock",
    "sync_school",
    "whole_job",
]
