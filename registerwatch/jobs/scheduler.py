"""The daemon behind ``registerwatch run``: the night's jobs at their times, unattended.

Three daily jobs (``registerwatch.jobs.nightly.SCHEDULED``), timed by ``[schedule]`` in Europe/London
wall-clock time: ``nightly`` (02:00: sync, scan, report), ``returns`` (07:00: the LA returns that
are due, then submit) and ``dfe-daily`` (16:00, after the afternoon registers close: sync, the
day's DfE return, submit). The returns jobs only make returns on each school's school days.

The loop is the ``schedule`` package's (``Scheduler.run_pending`` and its job list), with one
change: ``schedule`` can only keep a time zone through ``pytz``, which registerwatch does not
depend on, and a job timed in the machine's local zone would drift by an hour twice a year on a
server kept in UTC. :class:`LondonDailyJob` therefore works out each next run from the London
wall clock with :mod:`zoneinfo` and hands ``schedule`` the same instant in the machine's local
time, which is what ``schedule`` compares with. On the day the clocks change a job keeps its wall
time (02:00 stays 02:00); a time inside the hour skipped in March runs an hour later, and a time
inside the hour repeated in October runs once, in its first (BST) pass.

A job that comes due while another is still running (a sync slow enough to pass 07:00) runs as
soon as the first ends, once. A job missed while the daemon was not running is not made up on
start: run ``registerwatch nightly`` by hand for a missed night.

Each job takes the store's work lock (``registerwatch.jobs.lock``), waiting for a ``sync`` started
by hand to finish, and each job and step is recorded in the ``runs`` table, as is the daemon's
own life (command ``run``).

On a PostgreSQL store the CLI gives the daemon an ``enqueue`` callable: each job is then put
on the task queue at its time (``registerwatch.jobs.queue``: the 02:00 night a school at a time,
the others whole) for the ``registerwatch worker``s, and the daemon runs nothing itself.

Shutdown: SIGTERM or SIGINT asks the daemon to stop (:class:`StopFlag`). Between jobs it stops at
once. During a job, the step running finishes and is recorded, the job's remaining steps are
skipped (the job is recorded ``interrupted``, naming them), then the daemon exits. A second
signal is noted in the log and changes nothing: stopping half-way through a step is what the
store's transactions survive, not what a polite stop should do. Only the CLI exits.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as wall_time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import schedule

from registerwatch import netguard
from registerwatch.calendar import LONDON
from registerwatch.errors import RegisterwatchError, RunLockedError
from registerwatch.jobs.nightly import (
    SCHEDULED,
    Job,
    JobResult,
    NightContext,
    error_text,
    run_job,
    today,
)
from registerwatch.logging import get_logger

if TYPE_CHECKING:
    from registerwatch.config import Settings
    from registerwatch.jobs.lock import RunLock
    from registerwatch.store import Store

log = get_logger("registerwatch.jobs.scheduler")

# How long a job waits for the work lock (a long `registerwatch sync` started by hand) before it
# is recorded as failed for this day. Long enough for any sync; short enough that tomorrow's
# run is not queued behind a hung one.
JOB_LOCK_TIMEOUT_SECONDS = 3 * 60 * 60
# The longest the loop sleeps between checks: a clock that jumps (a suspended VM, NTP) is noticed
# within a minute. Stop requests are noticed within STOP_POLL_SECONDS.
MAX_IDLE_SECONDS = 60.0
STOP_POLL_SECONDS = 0.5

# [schedule] key -> job name
JOB_KEYS: dict[str, str] = {"nightly": "nightly", "returns": "returns", "dfe_daily": "dfe-daily"}


# -- stopping ------------------------------------------------------------------------------------


class StopFlag:
    """Whether a stop was asked for, and by which signals; asked at safe points.

    A signal handler only appends to :attr:`signals` (no locks, no I/O: a handler that logs can
    interrupt a write to the same stream and break it); the log lines are written by a watcher
    thread (:func:`handle_signals`) or at the next safe point.
    """

    def __init__(self) -> None:
        self.signals: list[str] = []
        self._reasons: list[str] = []

    @property
    def requested(self) -> bool:
        return bool(self.signals or self._reasons)

    def __call__(self) -> bool:
        return self.requested

    def request(self, reason: str) -> None:
        """Ask for a stop without a signal (tests, an embedding program)."""
        self._reasons.append(reason)

    @property
    def reason(self) -> str | None:
        reasons = self.signals or self._reasons
        return reasons[0] if reasons else None

    def sleep(self, seconds: float) -> None:
        """Sleep up to ``seconds``, returning early once a stop is requested."""
        deadline = time.monotonic() + max(0.0, seconds)
        while not self.requested:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(STOP_POLL_SECONDS, left))

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.signals.append(signal.Signals(signum).name)


@contextmanager
def handle_signals(
    stop: StopFlag, signums: Sequence[signal.Signals] = (signal.SIGTERM, signal.SIGINT)
) -> Iterator[StopFlag]:
    """Route SIGTERM and SIGINT to ``stop`` for the duration (main thread only), and log each
    signal as it arrives from a watcher thread; the previous handlers come back afterwards."""

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop._on_signal(signum, frame)
        netguard.cancel_all()  # a request in flight ends now, not at its deadline

    netguard.reset_cancel()
    previous = {s: signal.signal(s, on_signal) for s in signums}
    done = threading.Event()

    def watch() -> None:
        seen = 0
        while not done.wait(0.2):
            while seen < len(stop.signals):
                name = stop.signals[seen]
                seen += 1
                if seen == 1:
                    log.info(
                        "scheduler.stop_requested",
                        signal=name,
                        detail="finishing the current step, then stopping",
                    )
                else:
                    log.warning(
                        "scheduler.signal_repeated",
                        signal=name,
                        count=seen,
                        detail="already stopping; waiting for the current step to end",
                    )

    watcher = threading.Thread(target=watch, name="registerwatch-signals", daemon=True)
    watcher.start()
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        netguard.reset_cancel()  # the stop was for this block; later requests may run
        done.set()
        watcher.join(timeout=1)


# -- times ---------------------------------------------------------------------------------------


def next_occurrence(at: wall_time, after: datetime, tz: ZoneInfo = LONDON) -> datetime:
    """The first instant strictly after ``after`` whose wall-clock time in ``tz`` is ``at``.

    A wall time that does not exist that day (the skipped hour) maps, as zoneinfo does, to the
    instant it would have been under the earlier offset, i.e. an hour later on the clock; a
    repeated one takes its first occurrence (fold=0).
    """
    # Compared in UTC: Python compares two times of one zone by their wall clocks, ignoring
    # which pass of the repeated October hour each is in.
    after_utc = after.astimezone(UTC)
    day = after.astimezone(tz).date()
    for offset in range(3):
        candidate = datetime.combine(day + timedelta(days=offset), at, tzinfo=tz).astimezone(UTC)
        if candidate > after_utc:
            return candidate.astimezone(tz)
    raise AssertionError("unreachable: a daily time recurs within three days")


class LondonDailyJob(schedule.Job):
    """A ``schedule`` job that runs every day at a wall-clock time in ``tz`` (see module docs).

    Only the computation of the next run is replaced; ``schedule`` still keeps the job list,
    decides when a job is due and runs it.
    """

    def __init__(
        self, at: wall_time, scheduler: schedule.Scheduler, tz: ZoneInfo = LONDON, name: str = ""
    ) -> None:
        super().__init__(1, scheduler)
        self.unit = "days"
        self.wall_time = at
        self.tz = tz
        self.name = name

    def _schedule_next_run(self) -> None:
        # schedule compares next_run with datetime.now(): a naive time in the machine's zone.
        now = datetime.now().astimezone()
        self.next_run = (
            next_occurrence(self.wall_time, now, self.tz).astimezone().replace(tzinfo=None)
        )

    @property
    def next_run_at(self) -> datetime | None:
        """The next run as an aware time in ``tz``."""
        return None if self.next_run is None else self.next_run.astimezone(self.tz)

    def __repr__(self) -> str:
        return f"LondonDailyJob({self.name!r} at {self.wall_time:%H:%M} {self.tz.key})"


def job_times(settings: Settings) -> dict[str, wall_time]:
    """Job name -> its wall-clock time from ``[schedule]``, in the order they happen each day."""
    configured = {job: getattr(settings.schedule, key) for key, job in JOB_KEYS.items()}
    return dict(sorted(configured.items(), key=lambda item: item[1]))


# -- the daemon ------------------------------------------------------------------------------------


@dataclass
class DaemonSummary:
    """What one life of the daemon did, for its ``run`` record and the CLI's last line."""

    started_at: datetime
    finished_at: datetime | None = None
    jobs: list[JobResult] = field(default_factory=list)
    lock_failures: list[str] = field(default_factory=list)  # job names that never got the lock
    stopped_by: str | None = None

    @property
    def outcome(self) -> str:
        return "interrupted" if any(j.outcome == "interrupted" for j in self.jobs) else "ok"

    def counts(self) -> dict[str, Any]:
        return {
            "jobs_run": len(self.jobs),
            "jobs_failed": sum(1 for j in self.jobs if j.failed),
            "jobs_interrupted": sum(1 for j in self.jobs if j.outcome == "interrupted"),
            "lock_failures": list(self.lock_failures),
            "stopped_by": self.stopped_by,
        }


class Scheduler:
    """``registerwatch run``: runs the scheduled jobs until stopped.

    ``work_lock(command)`` gives the store's work lock for one job (the CLI passes
    ``runlock.store_lock``); ``clock`` decides each job's ``as_of`` (today in London) and the
    recorded instants; the factories reach the steps (tests pass fakes). The schedule itself
    follows the real clock (``schedule`` reads it), which tests move with time-machine.
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        output_dir: Path,
        stop: StopFlag,
        work_lock: Callable[[str], RunLock],
        jobs: Mapping[str, Job] = SCHEDULED,
        clock: Callable[[], datetime] | None = None,
        environ: Mapping[str, str] | None = None,
        adapter_factory: Callable[..., Any] | None = None,
        transport_factory: Callable[..., Any] | None = None,
        lock_timeout: float = JOB_LOCK_TIMEOUT_SECONDS,
        enqueue: Callable[[Store, str, date], None] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.output_dir = output_dir
        self.stop = stop
        self.work_lock = work_lock
        self.jobs = dict(jobs)
        self.clock = clock or (lambda: datetime.now(UTC))
        self.environ = environ
        self.adapter_factory = adapter_factory
        self.transport_factory = transport_factory
        self.lock_timeout = lock_timeout
        self.enqueue = enqueue
        self.summary = DaemonSummary(started_at=self.clock().astimezone(UTC))
        self.schedule = schedule.Scheduler()
        self.times = job_times(settings)
        for name, at in self.times.items():
            if name not in self.jobs:
                raise KeyError(f"no job called {name!r} (have {', '.join(self.jobs)})")
            LondonDailyJob(at, self.schedule, name=name).do(self._run_due, name)

    @property
    def scheduled(self) -> list[LondonDailyJob]:
        return [job for job in self.schedule.jobs if isinstance(job, LondonDailyJob)]

    def next_runs(self) -> dict[str, datetime]:
        """Job name -> its next run (aware, Europe/London), soonest first."""
        runs = {job.name: job.next_run_at for job in self.scheduled if job.next_run_at}
        return dict(sorted(runs.items(), key=lambda item: item[1]))

    def _run_due(self, name: str) -> JobResult | None:
        """What ``schedule`` calls when a job is due: the job, for the day it was due.

        A 16:00 DfE return held up past midnight (by a long sync started by hand, say) is
        still the return for the day it was due, not for the day it finally ran. ``schedule``
        moves ``next_run`` on only after this returns, so here it is still the due time.
        """
        due = next((j.next_run_at for j in self.scheduled if j.name == name), None)
        return self.run_job(name, as_of=due.date() if due is not None else None)

    def run_job(self, name: str, as_of: date | None = None) -> JobResult | None:
        """Run one job now (``as_of`` default: today in London), under the work lock.

        Never raises: the daemon must outlive any one night. Returns None when the job did
        not run (the lock was not had, or a stop came while waiting for it).
        """
        job = self.jobs[name]
        day = as_of or today(self.clock)
        if self.enqueue is not None:
            self._enqueue(name, day)
            return None
        try:
            lock = self.work_lock(name)
            got = lock.acquire(wait=True, timeout=self.lock_timeout, should_stop=self.stop)
        except RunLockedError as exc:
            self._lock_failed(job, exc, day)
            return None
        except RegisterwatchError as exc:  # the store cannot be reached to take the lock
            log.warning(
                "scheduler.job_not_started",
                job=name,
                error_type=type(exc).__name__,
                error=error_text(exc),
            )
            return None
        except Exception as exc:
            log.exception("scheduler.job_crashed", job=name, error_type=type(exc).__name__)
            return None
        if not got:
            log.info("scheduler.job_not_started", job=name, reason="stopping")
            return None
        try:
            ctx = NightContext(
                settings=self.settings,
                store=self.store,
                as_of=day,
                output_dir=self.output_dir,
                clock=self.clock,
                environ=self.environ,
                adapter_factory=self.adapter_factory,
                transport_factory=self.transport_factory,
            )
            result = run_job(job, ctx, trigger="run", should_stop=self.stop)
        except Exception as exc:  # run_job isolates steps; this is a bug in the runner itself
            log.exception("scheduler.job_crashed", job=name, error_type=type(exc).__name__)
            return None
        finally:
            lock.release()
        self.summary.jobs.append(result)
        return result

    def _enqueue(self, name: str, day: date) -> None:
        """Put the job on the task queue for the workers (PostgreSQL stores); never raises."""
        assert self.enqueue is not None
        try:
            self.enqueue(self.store, name, day)
            log.info("scheduler.job_queued", job=name, as_of=day.isoformat())
        except Exception as exc:  # the daemon must outlive a queue that is down for a night
            log.warning(
                "scheduler.job_not_queued",
                job=name,
                error_type=type(exc).__name__,
                error=error_text(exc),
            )

    def _lock_failed(self, job: Job, exc: RunLockedError, day: date) -> None:
        # Recorded like any job, so `registerwatch runs` shows the night that did not happen.
        self.summary.lock_failures.append(job.name)
        log.warning("scheduler.job_locked_out", job=job.name, error=error_text(exc))
        try:
            run_id = self.store.start_run(job.name, at=self.clock())
            self.store.finish_run(
                run_id,
                "failed",
                {
                    "trigger": "run",
                    "as_of": day.isoformat(),
                    "steps": {},
                    "skipped": list(job.step_names),
                    "errors": 1,
                    "lock_error": error_text(exc),
                },
                at=self.clock(),
            )
        except Exception as record_exc:
            log.warning(
                "scheduler.record_failed", job=job.name, error_type=type(record_exc).__name__
            )

    def run_pending(self) -> None:
        """Run every job that is due (``schedule``'s loop body), unless stopping."""
        if not self.stop.requested:
            self.schedule.run_pending()

    def idle_seconds(self) -> float:
        idle = self.schedule.idle_seconds
        return MAX_IDLE_SECONDS if idle is None else max(0.0, min(idle, MAX_IDLE_SECONDS))

    def run_forever(self) -> DaemonSummary:
        """Loop until a stop is requested; record the daemon's life as a ``run`` row."""
        run_id = self._record("start")
        log.info(
            "scheduler.started",
            jobs={n: f"{t:%H:%M}" for n, t in self.times.items()},
            timezone=LONDON.key,
            next_runs={n: t.isoformat() for n, t in self.next_runs().items()},
        )
        try:
            while not self.stop.requested:
                self.run_pending()
                self.stop.sleep(self.idle_seconds())
        finally:
            self.summary.stopped_by = self.stop.reason
            self.summary.finished_at = self.clock().astimezone(UTC)
            self._record("finish", run_id)
            log.info(
                "scheduler.stopped",
                stopped_by=self.summary.stopped_by,
                outcome=self.summary.outcome,
                jobs_run=len(self.summary.jobs),
            )
        return self.summary

    def _record(self, what: str, run_id: int | None = None) -> int | None:
        try:
            if what == "start":
                return self.store.start_run("run", at=self.summary.started_at)
            if run_id is not None:
                self.store.finish_run(
                    run_id, self.summary.outcome, self.summary.counts(), at=self.summary.finished_at
                )
        except Exception as exc:
            log.warning(
                "scheduler.record_failed",
                command="run",
                error_type=type(exc).__name__,
                error=error_text(exc),
            )
        return run_id


__all__ = [
    "JOB_KEYS",
    "DaemonSummary",
    "LondonDailyJob",
    "Scheduler",
    "StopFlag",
    "handle_signals",
    "job_times",
    "next_occurrence",
]
