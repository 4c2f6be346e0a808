"""The night on a task queue: procrastinate, on the PostgreSQL store itself.

Why procrastinate: a trust that shares one PostgreSQL store already runs the only server the
queue needs (no broker to install, secure and watch); its jobs are rows in that database, so a
worker on any machine that reaches the store can take them; it has the per-key ``lock`` and
``queueing_lock`` a school needs, retries with backoff, and worker heartbeats from which a job
left ``doing`` by a worker that died can be found and put back.

- :func:`opened_queue`: the night's procrastinate app (``registerwatch.jobs.tasks``) connected
  to a store's database;
- :func:`apply_queue_schema`: procrastinate's tables, created once (idempotent, under an
  advisory lock so two workers starting together do not both create them);
- :func:`enqueue_night`: the ``nightly`` record and one ``sync_school`` task per school;
- :func:`run_worker`: a worker until SIGTERM/SIGINT, with the stalled-job check;
- :func:`night_record`: the night's record, for ``nightly --queue --follow``.

The SQLite store has no queue: :func:`require_postgres` says so (a ConfigError: exit 2), and
``nightly`` and ``run`` then work in-process as they always have.

Nothing here prints or exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import procrastinate
from procrastinate.exceptions import AlreadyEnqueued

from registerwatch.errors import ConfigError
from registerwatch.jobs.tasks import (
    WorkerContext,
    app,
    school_lock,
    sync_school,
    whole_job,
)
from registerwatch.logging import get_logger
from registerwatch.store import PgAdvisoryLock
from registerwatch.store.engine import parse_url, safe_url

if TYPE_CHECKING:
    from registerwatch.config import Settings
    from registerwatch.store import Store
    from registerwatch.store.records import RunRecord

log = get_logger("registerwatch.jobs.queue")

# A worker that has not sent a heartbeat for this long is taken for dead, and the jobs it was
# doing are put back for another worker. Heartbeats go every HEARTBEAT_SECONDS.
HEARTBEAT_SECONDS = 5.0
STALLED_AFTER_SECONDS = 30.0
# How often each worker looks for such jobs.
STALLED_CHECK_SECONDS = 15.0


def require_postgres(store_url: str, what: str) -> None:
    """Raise ConfigError unless the store is PostgreSQL (the queue lives in it)."""
    if parse_url(store_url).get_backend_name() != "postgresql":
        raise ConfigError(
            f"{what} needs a PostgreSQL store (the task queue lives in it); the store is "
            f"{safe_url(store_url)}. With SQLite, run `registerwatch nightly` or "
            "`registerwatch run`, which do the night in one process"
        )


def is_postgres(store_url: str) -> bool:
    return parse_url(store_url).get_backend_name() == "postgresql"


def conninfo(store_url: str) -> str:
    """The libpq connection string psycopg wants, from the store's SQLAlchemy URL."""
    url = parse_url(store_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def _connector(store_url: str) -> procrastinate.PsycopgConnector:
    require_postgres(store_url, "the task queue")
    return procrastinate.PsycopgConnector(conninfo=conninfo(store_url), min_size=1, max_size=4)


@contextlib.contextmanager
def opened_queue(store_url: str) -> Iterator[procrastinate.App]:
    """The night's procrastinate app, connected to the store's database while in the block."""
    with app.replace_connector(_connector(store_url)) as connected, connected.open():
        yield connected


def apply_queue_schema(store_url: str) -> bool:
    """Create procrastinate's tables in the store's database unless they exist; whether it
    created them. Safe to call from many workers at once (an advisory lock orders them)."""
    import psycopg

    from registerwatch.jobs.tasks import LOCK_POLL_SECONDS

    require_postgres(store_url, "the task queue")
    lock = PgAdvisoryLock(store_url, kind="procrastinate-schema")
    try:
        while not lock.try_acquire("db upgrade (task queue)"):
            time.sleep(LOCK_POLL_SECONDS)
        with psycopg.connect(conninfo(store_url), autocommit=True) as conn:
            found = conn.execute("SELECT to_regclass('procrastinate_jobs')").fetchone()
            if found is not None and found[0] is not None:
                return False
        with opened_queue(store_url) as queue:
            queue.schema_manager.apply_schema()
        log.info("queue.schema_applied", store=safe_url(store_url))
        return True
    finally:
        lock.release()


@dataclass(frozen=True)
class QueuedNight:
    """A night put on the queue: its record in the runs table, and what was queued."""

    run_id: int
    as_of: date
    schools: tuple[str, ...]
    already_queued: tuple[str, ...]  # schools whose sync from an earlier night still waits

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "as_of": self.as_of.isoformat(),
            "queued": list(self.schools),
            "already_queued": list(self.already_queued),
        }


def enqueue_night(
    settings: Settings,
    store: Store,
    as_of: date,
    *,
    kind: str = "nightly",
    clock: Callable[[], datetime] | None = None,
) -> QueuedNight:
    """Record the night (``nightly``, outcome blank until its last task ends) and queue one
    ``sync_school`` per school. ``kind`` "nightly" is ``registerwatch nightly``'s whole night;
    "run" is the daemon's 02:00 job (sync, scan, report)."""
    from registerwatch.errors import LedgerIntegrityError
    from registerwatch.jobs.results import error_text
    from registerwatch.sync.run import refuse_broken_ledger

    url = str(settings.store.url)
    now = (clock or (lambda: datetime.now(UTC)))()
    run_id = store.start_run("nightly", at=now)
    try:
        # Once for the whole night: each school's sync task then skips the walk of the chain.
        refuse_broken_ledger(store, None)
    except LedgerIntegrityError as exc:
        store.finish_run(
            run_id,
            "failed",
            {
                "trigger": "queue" if kind == "nightly" else "run",
                "as_of": as_of.isoformat(),
                "steps": {},
                "skipped": ["sync", "scan"],
                "errors": [error_text(exc)],
            },
            at=now,
        )
        raise
    queued: list[str] = []
    waiting: list[str] = []
    with opened_queue(url):
        for school in settings.schools:
            try:
                sync_school.configure(
                    lock=school_lock(school.id), queueing_lock=f"sync:{school.id}"
                ).defer(night=run_id, as_of=as_of.isoformat(), kind=kind, school_id=school.id)
                queued.append(school.id)
            except AlreadyEnqueued:
                waiting.append(school.id)
    log.info("queue.night_queued", run_id=run_id, schools=len(queued), waiting=len(waiting))
    if not queued:
        store.finish_run(
            run_id,
            "failed",
            {
                "trigger": "queue",
                "as_of": as_of.isoformat(),
                "steps": {},
                "skipped": [],
                "errors": 1,
                "lock_error": "every school's sync from an earlier night is still queued",
            },
            at=now,
        )
    return QueuedNight(run_id, as_of, tuple(queued), tuple(waiting))


def enqueue_job(store_url: str, job: str, as_of: date) -> None:
    """Queue one of the daemon's other jobs (``returns``, ``dfe-daily``) to run whole."""
    with opened_queue(store_url):
        whole_job.configure(queueing_lock=f"job:{job}:{as_of.isoformat()}").defer(
            job=job, as_of=as_of.isoformat()
        )


def night_record(store: Store, run_id: int) -> RunRecord | None:
    return next((r for r in store.runs(command="nightly", limit=1000) if r.id == run_id), None)


def wait_for_night(
    store: Store,
    run_id: int,
    *,
    should_stop: Callable[[], bool] = lambda: False,
    poll_seconds: float = 2.0,
) -> RunRecord | None:
    """Wait until the night's record is finished (by whichever worker finishes it)."""
    while not should_stop():
        record = night_record(store, run_id)
        if record is None or record.finished_at is not None:
            return record
        time.sleep(poll_seconds)
    return night_record(store, run_id)


async def _put_back_stalled(app: procrastinate.App, stalled_after: float, every: float) -> None:
    """Put back (to ``todo``) the jobs of workers whose heartbeat stopped: a worker killed
    mid-school leaves its job ``doing``; another worker then takes it."""
    while True:
        await asyncio.sleep(every)
        try:
            stalled = await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=stalled_after)
            for job in stalled:
                with contextlib.suppress(Exception):  # another worker may have put it back
                    await app.job_manager.retry_job(job)
                    log.warning("queue.stalled_job_retried", job_id=job.id, task=job.task_name)
        except Exception as exc:  # the check must not end the worker; the next one retries
            log.warning("queue.stalled_check_failed", error_type=type(exc).__name__)


def run_worker(
    settings: Settings,
    *,
    output_dir: Path,
    concurrency: int = 1,
    name: str | None = None,
    heartbeat_seconds: float = HEARTBEAT_SECONDS,
    stalled_after_seconds: float = STALLED_AFTER_SECONDS,
    stalled_check_seconds: float = STALLED_CHECK_SECONDS,
) -> None:
    """Run a worker until SIGTERM or SIGINT (the job running then is finished first).

    ``concurrency`` jobs run at once, each in a thread: sync waits on the MIS and the database,
    while the scan is Python and holds the GIL, so for more CPU run more workers (processes).
    """
    url = str(settings.store.url)
    apply_queue_schema(url)
    worker_name = name or f"{socket.gethostname()}-{os.getpid()}"
    context = WorkerContext(settings=settings, output_dir=output_dir, worker_name=worker_name)

    async def main() -> None:
        async with app.open_async():
            watcher = asyncio.create_task(
                _put_back_stalled(app, stalled_after_seconds, stalled_check_seconds)
            )
            try:
                await app.run_worker_async(
                    concurrency=concurrency,
                    name=worker_name,
                    additional_context={"registerwatch": context},
                    update_heartbeat_interval=heartbeat_seconds,
                    stalled_worker_timeout=stalled_after_seconds,
                    fetch_job_polling_interval=1.0,
                    wait=True,
                )
            finally:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher

    log.info("queue.worker_started", worker=worker_name, concurrency=concurrency)
    with app.replace_connector(_connector(url)):
        asyncio.run(main())
    log.info("queue.worker_stopped", worker=worker_name)


__all__ = [
    "HEARTBEAT_SECONDS",
    "STALLED_AFTER_SECONDS",
    "STALLED_CHECK_SECONDS",
    "QueuedNight",
    "apply_queue_schema",
    "conninfo",
    "enqueue_job",
    "enqueue_night",
    "is_postgres",
    "night_record",
    "opened_queue",
    "require_postgres",
    "run_worker",
    "wait_for_night",
]
