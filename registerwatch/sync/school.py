"""One school's sync: plan, fetch, then write everything in one transaction (see the package
docstring)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

from registerwatch.adapters.base import Adapter, Batch
from registerwatch.calendar import calendar_for, school_year_of
from registerwatch.config import SchoolSettings
from registerwatch.errors import CalendarError, RegisterwatchError
from registerwatch.gcpause import collector_paused
from registerwatch.logging import get_logger, redact_text
from registerwatch.schema import Amendment, Calendar, Mark, Pupil, Register
from registerwatch.store import Connection, MarkDiff, MarkKey, Store
from registerwatch.sync.quarantine import log_quarantined, settle
from registerwatch.sync.summary import (
    RESOURCES,
    WINDOWED,
    EmptyPullError,
    ProgressCallback,
    Resource,
    ResourceFetched,
    SchoolFinished,
    SchoolStarted,
    SchoolSyncResult,
    Window,
)
from registerwatch.sync.window import (
    FULL_PULL_BOOKMARK,
    _plan,
    _require_terms_for,
    parse_bookmark,
)

log = get_logger("registerwatch.sync")  # one logger name for the whole of sync

# At most this many dates are named in an empty-pull error; the rest are counted.
EMPTY_DATES_NAMED = 5


# -- one school --------------------------------------------------------------------------------


@dataclass
class _Pulled:
    pupils: Batch[Pupil]
    registers: Batch[Register]
    marks: Batch[Mark]
    amendments: Batch[Amendment]
    # What this MIS exposes, for the scan: REG002/REG003 need register events, AMD002 needs
    # the MIS's own amendment records.
    capabilities: dict[str, bool] = field(default_factory=dict)


def sync_school(
    store: Store,
    school: SchoolSettings,
    adapter: Adapter,
    *,
    as_of: date,
    trailing_school_days: int = 10,
    clock: Callable[[], datetime] | None = None,
    progress: ProgressCallback | None = None,
    fetch_slot: AbstractContextManager[Any] | None = None,
    write_lock: AbstractContextManager[Any] | None = None,
    full_repull_days: int | None = None,
) -> SchoolSyncResult:
    """Sync one school through ``adapter`` (which the caller owns and closes).

    ``full_repull_days``: re-pull the whole school year when the last whole-year pull is that
    many days old (None: only ever the trailing window after the first sync).

    Returns a result with status "failed" and the error's message when the MIS, the calendar
    or the store refuses (any RegisterwatchError); the store is then as it was before. Other
    exceptions are bugs and propagate. ``fetch_slot`` is held while the MIS is being read and
    ``write_lock`` while the store is written (``sync_all`` passes its per-vendor limit and its
    single-writer lock).
    """
    started = time.monotonic()
    read_clock = clock or utc_now
    emit = progress or (lambda _event: None)
    result = SchoolSyncResult(school_id=school.id, vendor=_vendor(school))
    try:
        calendar = calendar_for(school)
        _require_terms_for(calendar, as_of)
        windows = _plan(
            store, school.id, calendar, as_of, trailing_school_days, result, full_repull_days
        )
        result.window = windows["marks"]
        emit(
            SchoolStarted(
                school.id,
                result.vendor,
                windows["marks"].start if windows["marks"] else None,
                as_of,
            )
        )
        log.info(
            "sync.school_started",
            school=school.id,
            vendor=result.vendor,
            start=windows["marks"].start if windows["marks"] else None,
            end=as_of,
            first_sync=windows["marks"].first_sync if windows["marks"] else None,
        )
        adapter.begin_sync(as_of)
        # A first sync holds the school year's marks, records and ledger payloads at once;
        # automatic collections rescanning them cost about a quarter of its time.
        with collector_paused():
            with fetch_slot or nullcontext():
                pulled = _fetch(adapter, school.id, windows, result, emit)
                result.warnings.extend(compare_mis_terms(adapter, school.to_calendar()))
            with write_lock or nullcontext():
                # One instant for everything this run writes: "when sync first saw it".
                marks_window = windows["marks"]
                whole_year = (
                    marks_window is not None
                    and marks_window.start <= calendar.school_year_start(school_year_of(as_of))
                )
                _write(
                    store,
                    school,
                    pulled,
                    windows,
                    as_of,
                    read_clock(),
                    result,
                    whole_year=whole_year,
                )
    except RegisterwatchError as exc:
        result.status, result.error = "failed", redact_text(str(exc))
        result.seconds = time.monotonic() - started
        record_failure(store, school.id, result.error, read_clock())
        log.warning(
            "sync.school_failed",
            school=school.id,
            vendor=result.vendor,
            error_type=type(exc).__name__,
            error=str(exc),
        )
        emit(SchoolFinished(school.id, "failed", result.error))
        return result
    result.seconds = time.monotonic() - started
    log.info(
        "sync.school_finished",
        school=school.id,
        vendor=result.vendor,
        seconds=round(result.seconds, 2),
        marks_new=result.marks_new,
        marks_changed=result.marks_changed,
        marks_deleted=result.marks_deleted,
        amendments_new=result.amendments_new,
        ledger_entries=result.ledger_entries,
        quarantined=len(result.quarantined),
    )
    emit(SchoolFinished(school.id, "ok"))
    return result


def utc_now() -> datetime:
    return datetime.now(UTC)


def _vendor(school: SchoolSettings) -> str:
    return str(school.mis.vendor.value)


def _fetch(
    adapter: Adapter,
    school_id: str,
    windows: Mapping[str, Window | None],
    result: SchoolSyncResult,
    emit: ProgressCallback,
) -> _Pulled:
    def fetched(resource: Resource, batch: Batch[Any]) -> None:
        # The duplicate policy first: conflicting versions become quarantine entries.
        result.warnings.extend(
            settle(batch, school=school_id, vendor=result.vendor, resource=resource)
        )
        log_quarantined(
            batch.quarantined, school=school_id, vendor=result.vendor, resource=resource
        )
        result.fetched[resource] = len(batch.records)
        log.info(
            "sync.resource_fetched",
            school=school_id,
            resource=resource,
            records=len(batch.records),
            quarantined=len(batch.quarantined),
            requests=batch.requests,
        )
        emit(ResourceFetched(school_id, resource, len(batch.records), len(batch.quarantined)))

    def windowed(resource: Resource, pull: Callable[[date, date], Batch[Any]]) -> Batch[Any]:
        window = windows[resource]
        batch: Batch[Any] = Batch() if window is None else pull(window.start, window.end)
        fetched(resource, batch)
        return batch

    pupils = adapter.pupils()
    fetched("pupils", pupils)
    registers = windowed("registers", adapter.registers)
    marks = windowed("marks", adapter.marks)
    amendments = windowed("amendments", adapter.amendments)
    capabilities = {
        "registers": bool(getattr(adapter, "exposes_registers", False)),
        "amendments": bool(getattr(adapter, "exposes_amendments", False)),
        "social_worker": bool(getattr(adapter, "exposes_social_worker", False)),
    }
    return _Pulled(pupils, registers, marks, amendments, capabilities)


def compare_mis_terms(adapter: Adapter, configured: Calendar) -> list[str]:
    """Warnings when the MIS's own term dates disagree with the config's.

    The config stays the source of truth (rules count school days from it); a mismatch is
    reported, never applied. Only MIS terms that overlap the configured span are compared (an
    MIS keeps years the config does not list). A calendar the MIS will not serve is no reason
    to fail the sync: it is logged and nothing is compared.
    """
    try:
        theirs = adapter.calendar()
    except RegisterwatchError as exc:
        log.info(
            "sync.mis_calendar_unavailable",
            school=configured.school_id,
            error_type=type(exc).__name__,
        )
        return []
    if theirs is None or not configured.terms:
        return []
    first, last = configured.terms[0].start, configured.terms[-1].end
    mis = {(t.start, t.end) for t in theirs.terms if t.start <= last and t.end >= first}
    ours = {(t.start, t.end) for t in configured.terms}
    log.info(
        "sync.mis_terms_read",
        school=configured.school_id,
        terms=[f"{a}..{b}" for a, b in sorted(mis)],
    )
    if not mis or mis == ours:
        return []
    only_mis = ", ".join(f"{a}..{b}" for a, b in sorted(mis - ours)) or "none"
    only_ours = ", ".join(f"{a}..{b}" for a, b in sorted(ours - mis)) or "none"
    return [
        f"the MIS's term dates differ from the config's (only in the MIS: {only_mis}; "
        f"only in the config: {only_ours}) — check [schools.calendar] terms"
    ]


def _write(
    store: Store,
    school: SchoolSettings,
    pulled: _Pulled,
    windows: Mapping[str, Window | None],
    as_of: date,
    now: datetime,
    result: SchoolSyncResult,
    *,
    whole_year: bool = False,
) -> None:
    school_id = school.id
    marks_window = windows["marks"]
    warnings: list[str] = []  # reported only if the transaction commits
    with store.transaction() as tx:
        store.upsert_school(school.to_school(), at=now, conn=tx)
        store.upsert_calendar(school.to_calendar(), at=now, conn=tx)
        store.upsert_pupils(pulled.pupils.records, at=now, conn=tx)
        store.upsert_registers(pulled.registers.records, at=now, conn=tx)

        diff, deleted = MarkDiff(), []
        if marks_window is not None:
            # Read inside the transaction, so what is compared is what is overwritten.
            stored = store.mark_keys(school_id, marks_window.start, marks_window.end, conn=tx)
            _refuse_empty_days(school_id, result.vendor, pulled.marks.records, stored, marks_window)
            diff = store.upsert_marks(pulled.marks.records, school_id, at=now, conn=tx)
            # Nothing stored (a first sync): nothing can be missing, and the pulled keys (a
            # tuple per mark) need not be built.
            missing = stored - _keys_of(pulled.marks.records) if stored else set()
            if missing and pulled.marks.quarantined:
                # A quarantined mark is still in the MIS; its key is unknown (the record would
                # not map), so no absence in this pull can be trusted to be a deletion.
                warnings.append(
                    f"{len(missing)} stored marks were not in this pull but were not flagged "
                    f"deleted, because {len(pulled.marks.quarantined)} marks were quarantined; "
                    "the next clean pull will decide"
                )
            elif missing:
                deleted = store.mark_deleted(school_id, missing, at=now, conn=tx)

        recorded = store.record_changes(
            school_id, diff, deleted, pulled.amendments.records, at=now, conn=tx
        )

        batches: dict[str, Batch[Any]] = {
            "pupils": pulled.pupils,
            "registers": pulled.registers,
            "marks": pulled.marks,
            "amendments": pulled.amendments,
        }
        quarantined = [
            q if q.resource else replace(q, resource=resource)
            for resource in RESOURCES
            for q in batches[resource].quarantined
        ]
        for q in quarantined:
            store.quarantine(
                school_id,
                q.resource,
                q.reason,
                record_ref=q.record_ref,
                field=q.field,
                raw=q.raw,
                at=now,
                conn=tx,
            )

        for resource in RESOURCES:
            window = windows.get(resource)
            count = len(batches[resource].quarantined)
            held = window is not None and count > 0
            if count:
                again = (
                    f"{window} will be pulled again until the MIS serves them cleanly"
                    if held
                    else "pulled in full every run"
                )
                warnings.append(f"{resource}: {count} records quarantined; {again}")
            _move_bookmark(store, school_id, resource, as_of, window if held else None, now, tx)
        store.set_capabilities(school_id, pulled.capabilities, at=now, conn=tx)
        # Registers complete to the school day before as_of (as_of's own registers may still be
        # open); a pull that held a bookmark leaves it where it was (scan.freshness).
        held_any = any(windows.get(r) is not None and batches[r].quarantined for r in WINDOWED)
        complete_to = None if held_any or marks_window is None else _complete_to(school, as_of)
        store.record_sync_success(school_id, complete_to, at=now, conn=tx)
        if whole_year:
            store.set_bookmark(school_id, FULL_PULL_BOOKMARK, as_of.isoformat(), at=now, conn=tx)

    changed = recorded.marks_changed
    result.warnings.extend(warnings)
    result.amendments_new = recorded.amendments_new
    result.marks_new = len(diff.new)
    result.marks_changed = changed
    # A mark whose only difference is the MIS's record id counts as unchanged.
    result.marks_unchanged = len(diff.unchanged) + len(diff.changed) - changed
    result.marks_deleted = len(deleted)
    result.ledger_entries = len(recorded.records)
    result.quarantined = quarantined


def _keys_of(marks: Sequence[Mark]) -> set[MarkKey]:
    return {MarkKey(m.pupil_id, m.date, m.session) for m in marks}


def _complete_to(school: SchoolSettings, as_of: date) -> date | None:
    try:
        return calendar_for(school).previous_school_day(as_of)
    except CalendarError:  # as_of is the first school day of the configured terms
        return None


def record_failure(store: Store, school_id: str, error: str, at: datetime) -> None:
    """Record a failed sync for the scan and ``status``; a store that refuses it must not hide
    the sync's own error, which the caller reports."""
    try:
        store.record_sync_failure(school_id, error, at=at)
    except Exception as exc:
        log.warning("sync.status_not_recorded", school=school_id, error_type=type(exc).__name__)


def _move_bookmark(
    store: Store,
    school_id: str,
    resource: str,
    as_of: date,
    hold: Window | None,
    now: datetime,
    conn: Connection,
) -> None:
    """Advance the bookmark to ``as_of`` (never backwards: a rerun for an earlier --as-of must
    not make the next run skip days), or, when ``hold`` is given, keep it at that window's
    start: the pull set records aside whose dates are unknown, so the next run must pull the
    same dates again or the records would be lost once they fell out of the trailing window.
    """
    current = parse_bookmark(store.get_bookmark(school_id, resource, conn=conn))
    if hold is not None:
        value = hold.start if current is None else min(current, hold.start)
    else:
        value = as_of if current is None else max(current, as_of)
    store.set_bookmark(school_id, resource, value.isoformat(), at=now, conn=conn)


def _refuse_empty_days(
    school_id: str, vendor: str, marks: Sequence[Mark], stored: set[MarkKey], window: Window
) -> None:
    """Raise EmptyPullError when a date that has stored marks came back with none at all.

    One pupil's mark going missing is a deletion; a whole day (or the whole window) going
    missing is what a permission gap or a vendor's empty 200 looks like, and flagging every
    mark of it as deleted would put false AMD003 breaches and ledger entries that can never be
    taken back into a legal record.
    """
    if not stored:
        return
    stored_by_day = Counter(k.date for k in stored)
    pulled_days = {m.date for m in marks}
    empty = sorted(day for day in stored_by_day if day not in pulled_days)
    if not empty:
        return
    count = sum(stored_by_day[day] for day in empty)
    if not marks:
        where = str(window)
    else:
        where = ", ".join(d.isoformat() for d in empty[:EMPTY_DATES_NAMED])
        if len(empty) > EMPTY_DATES_NAMED:
            where += f" and {len(empty) - EMPTY_DATES_NAMED} more dates"
    raise EmptyPullError(
        f"school {school_id!r}: {vendor} returned no marks for {where} where {count} were "
        "stored: check the API user's permissions; nothing was changed"
    )
