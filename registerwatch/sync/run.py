"""Every school: fetched concurrently (at most each vendor's concurrency at a time), written one
at a time, each succeeding or failing on its own."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime

from registerwatch.adapters.base import Adapter
from registerwatch.adapters.registry import build_adapter, vendor_facts
from registerwatch.calendar import LONDON
from registerwatch.config import SchoolSettings, Settings, SyncSettings
from registerwatch.errors import LedgerIntegrityError, RegisterwatchError
from registerwatch.logging import get_logger, redact_text
from registerwatch.store import Store
from registerwatch.store.engine import is_sqlite_memory
from registerwatch.sync.school import _vendor, record_failure, sync_school, utc_now
from registerwatch.sync.summary import (
    ProgressCallback,
    SchoolFinished,
    SchoolSyncResult,
    SyncEvent,
    SyncSummary,
)

log = get_logger("registerwatch.sync")  # one logger name for the whole of sync


# -- every school ------------------------------------------------------------------------------


AdapterFactory = Callable[[SchoolSettings, SyncSettings, Mapping[str, str] | None], Adapter]


def sync_all(
    settings: Settings,
    store: Store,
    *,
    school_id: str | None = None,
    as_of: date | None = None,
    environ: Mapping[str, str] | None = None,
    adapter_factory: AdapterFactory = build_adapter,
    progress: ProgressCallback | None = None,
    clock: Callable[[], datetime] | None = None,
    accept_broken_ledger: str | None = None,
    ledger_checked: bool = False,
) -> SyncSummary:
    """Sync every configured school (or only ``school_id``) into ``store``.

    ``as_of`` defaults to today in Europe/London. Each school is fetched concurrently (up to
    ``[sync] concurrency``, at most each vendor's ``FACTS.concurrency`` per vendor) and written alone, in its
    own transaction; a school that fails (bad credentials, an API that gives up, an empty pull)
    is recorded in the summary and the others go on. Raises ConfigError for an unknown
    ``school_id``.

    Raises LedgerIntegrityError, before fetching anything, when the ledger does not verify
    (appending would bury the break under new entries), unless ``accept_broken_ledger`` gives
    the reason to go on; that reason is then kept in the run record. ``ledger_checked`` True
    skips that walk of the whole chain: the caller verified it already for this night (the
    queued night verifies once when it is queued, not once per school).
    """
    # The ledger's keys and tip sink ([ledger]) sign what this sync appends and witness the tip.
    store.use_ledger(
        settings.ledger.keys(environ), settings.ledger.tip_sink(str(store.url), environ)
    )
    accepted = None if ledger_checked else refuse_broken_ledger(store, accept_broken_ledger)
    schools = [settings.school(school_id)] if school_id is not None else list(settings.schools)
    day = as_of or datetime.now(LONDON).date()
    sync = settings.sync
    write_lock = threading.Lock()
    progress_lock = threading.Lock()
    # Each vendor's FACTS says how many of its schools may be fetched at once.
    limits = {_vendor(s): vendor_facts(_vendor(s)).concurrency for s in schools}
    slots = {
        vendor: threading.BoundedSemaphore(limit) if limit else None
        for vendor, limit in limits.items()
    }

    def emit(event: SyncEvent) -> None:
        if progress is not None:
            with progress_lock:  # callbacks come from worker threads; the CLI draws one at a time
                progress(event)

    def run(school: SchoolSettings) -> SchoolSyncResult:
        started = time.monotonic()
        vendor = _vendor(school)
        try:
            adapter = adapter_factory(school, sync, environ)
        except RegisterwatchError as exc:  # a credential that cannot be read
            failed = _failed(school, exc, started, emit)
            record_failure(store, school.id, failed.error or str(exc), (clock or utc_now)())
            return failed
        try:
            return sync_school(
                store,
                school,
                adapter,
                as_of=day,
                trailing_school_days=sync.trailing_school_days,
                full_repull_days=sync.full_repull_days or None,
                clock=clock,
                progress=emit,
                fetch_slot=slots.get(vendor),
                write_lock=write_lock,
            )
        except Exception as exc:  # a bug in one adapter must not stop the other schools
            log.exception(
                "sync.school_crashed",
                school=school.id,
                vendor=vendor,
                error_type=type(exc).__name__,
            )
            failed = _failed(school, exc, started, emit, internal=True)
            record_failure(store, school.id, failed.error or str(exc), (clock or utc_now)())
            return failed
        finally:
            adapter.close()

    run_id = store.start_run("sync")
    workers = max(1, min(sync.concurrency, len(schools)))
    if is_sqlite_memory(store.url):
        # An in-memory SQLite store is one shared connection: a second thread reading while
        # the first writes would see (and disturb) its open transaction.
        workers = 1
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sync") as pool:
        results = list(pool.map(run, schools))
    summary = SyncSummary(as_of=day, schools=results)
    counts: dict[str, object] = dict(summary.totals())
    if accepted is not None:
        counts = {**counts, "accepted_broken_ledger": accepted}
    store.finish_run(run_id, "ok" if summary.ok else "failed", counts)
    return summary


def refuse_broken_ledger(store: Store, reason: str | None) -> dict[str, object] | None:
    """Verify the chain before appending to it; a break is fatal unless a reason is given.

    Only the entries appended since the tip the last check verified are walked (the cost of a
    night's sync, not of the store's whole history); a break found falls back to the whole
    walk for its report. ``registerwatch ledger verify`` walks everything."""
    check = store.check_ledger_since_verified()
    if check.ok:
        store.keep_verified_tip(check)
        return None
    where = f"ledger broken at entry {check.broken_seq} (school {check.broken_school_id or '?'})"
    if not reason or not reason.strip():
        raise LedgerIntegrityError(
            f"{where}: {check.reason}; sync will not append to a chain that does not verify. "
            "Investigate (registerwatch ledger verify), or run again with "
            "--accept-broken-ledger --reason TEXT"
        )
    log.warning("sync.broken_ledger_accepted", broken_seq=check.broken_seq)
    return {
        "broken_seq": check.broken_seq,
        "broken_to": check.broken_to,
        "why_broken": check.reason,
        "reason": reason,
    }


def _failed(
    school: SchoolSettings,
    exc: BaseException,
    started: float,
    emit: ProgressCallback,
    *,
    internal: bool = False,
) -> SchoolSyncResult:
    message = redact_text(
        f"school {school.id!r}: internal error {type(exc).__name__}: {exc} (a bug: "
        "rerun with --debug and report it)"
        if internal
        else str(exc)
    )
    result = SchoolSyncResult(
        school_id=school.id,
        vendor=_vendor(school),
        status="failed",
        error=message,
        seconds=time.monotonic() - started,
    )
    if not internal:
        log.warning(
            "sync.school_failed",
            school=school.id,
            vendor=result.vendor,
            error_type=type(exc).__name__,
            error=message,
        )
    emit(SchoolFinished(school.id, "failed", message))
    return result
