"""Sync: pull each school's MIS through its adapter into the store, and record every change.

One school's sync (``sync_school``):

1. **Plan** a window per resource from its bookmark. The first sync pulls from the first term
   day of the school year; later syncs pull from the earlier of the last bookmark and the date
   ``trailing_school_days`` school days before ``as_of`` (DESIGN §5: no MIS has a usable change
   feed, so a trailing window is re-pulled every run and late amendments are still seen).
2. **Fetch** pupils (always in full), registers, marks and MIS amendment records for the window.
   Nothing is written yet; an API failure here leaves the store untouched.
3. **Write**, in one transaction: the school and its calendar, pupils, registers, marks (diffed
   against the store: ``MarkDiff``), marks that disappeared from the MIS within the window
   (flagged, never deleted: registers are kept 6 years), MIS amendment records, quarantined
   records, one ledger entry per change, and the bookmarks. Bookmarks move in the same
   transaction as the data, so a run killed at any point leaves the school exactly as the last
   finished run left it, and the rerun pulls the same window again. A pull that quarantined
   records holds its bookmark, so the same dates are pulled until the MIS serves them cleanly.

``sync_all`` runs every configured school: fetches run concurrently (a thread pool, at most
``VENDOR_CONCURRENCY`` at a time per vendor), writes one school at a time (SQLite has one
writer), and each school succeeds or fails on its own.

Only ``cli.py`` prints; progress reaches it through the ``progress`` callback. Log events carry
school ids and counts, never pupil data.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any, Literal

from registerwatch.adapters.base import Adapter, Batch, Quarantined
from registerwatch.adapters.registry import build_adapter
from registerwatch.calendar import LONDON, SchoolCalendar, calendar_for, school_year_of
from registerwatch.config import SchoolSettings, Settings, SyncSettings
from registerwatch.errors import CalendarError, FatalApiError, RegisterwatchError
from registerwatch.logging import get_logger, redact_text
from registerwatch.schema import Amendment, Calendar, Mark, Pupil, Register
from registerwatch.store import Connection, LedgerCheck, MarkDiff, MarkKey, Store
from registerwatch.store.engine import is_sqlite_memory

log = get_logger("registerwatch.sync")

Resource = Literal["pupils", "registers", "marks", "amendments"]
RESOURCES: tuple[Resource, ...] = ("pupils", "registers", "marks", "amendments")
# Resources pulled for a date window (pupils are always pulled in full).
WINDOWED: tuple[Resource, ...] = ("registers", "marks", "amendments")

# How many schools of one vendor are fetched at the same time. INFERRED: no vendor publishes a
# per-customer concurrency limit; iSAMS throttles per key and Arbor and GO 4 Schools rate-limit
# with 429s (mis-apis.md), so two at a time keeps a trust's nightly run well clear of them.
# Change it here. A CTF school reads local files, so only the pool size limits it.
VENDOR_CONCURRENCY: Mapping[str, int | None] = {
    "arbor": 2,
    "isams": 2,
    "go4schools": 2,
    "ctf": None,
}

# At most this many dates are named in an empty-pull error; the rest are counted.
EMPTY_DATES_NAMED = 5


class EmptyPullError(FatalApiError):
    """The MIS returned no marks for dates on which the store holds marks: almost always a
    missing API permission (an empty 200), so nothing is changed rather than flagging every
    mark as deleted. Check the API user's permissions and rerun."""


# -- progress events (for the CLI's progress display) ------------------------------------------


@dataclass(frozen=True)
class SchoolStarted:
    school_id: str
    vendor: str
    start: date | None  # first date of the marks window (None: no school days to pull)
    end: date


@dataclass(frozen=True)
class ResourceFetched:
    school_id: str
    resource: Resource
    records: int
    quarantined: int


@dataclass(frozen=True)
class SchoolFinished:
    school_id: str
    status: Literal["ok", "failed"]
    error: str | None = None


SyncEvent = SchoolStarted | ResourceFetched | SchoolFinished
ProgressCallback = Callable[[SyncEvent], None]


# -- results -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """The dates a windowed resource is pulled for, both inclusive."""

    start: date
    end: date
    first_sync: bool  # no bookmark yet: pulled from the start of the school year

    def __str__(self) -> str:
        return f"{self.start.isoformat()}..{self.end.isoformat()}"


@dataclass
class SchoolSyncResult:
    """What one school's sync fetched, changed and set aside; ``status`` ok or failed."""

    school_id: str
    vendor: str
    status: Literal["ok", "failed"] = "ok"
    error: str | None = None
    window: Window | None = None  # the marks window
    fetched: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RESOURCES, 0))
    marks_new: int = 0
    marks_changed: int = 0
    marks_deleted: int = 0
    marks_unchanged: int = 0
    amendments_new: int = 0
    ledger_entries: int = 0
    quarantined: list[Quarantined] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON output. Quarantined records are listed without their raw text,
        which may hold pupil data."""
        return {
            "school": self.school_id,
            "vendor": self.vendor,
            "status": self.status,
            "error": self.error,
            "window": None
            if self.window is None
            else {
                "start": self.window.start.isoformat(),
                "end": self.window.end.isoformat(),
                "first_sync": self.window.first_sync,
            },
            "fetched": dict(self.fetched),
            "marks": {
                "new": self.marks_new,
                "changed": self.marks_changed,
                "deleted": self.marks_deleted,
                "unchanged": self.marks_unchanged,
            },
            "amendments_new": self.amendments_new,
            "ledger_entries": self.ledger_entries,
            "quarantined": [
                {
                    "resource": q.resource,
                    "record": q.record_ref,
                    "field": q.field,
                    "reason": q.reason,
                }
                for q in self.quarantined
            ],
            "warnings": list(self.warnings),
            "seconds": round(self.seconds, 3),
        }


@dataclass
class SyncSummary:
    """Every school's result, in config order."""

    as_of: date
    schools: list[SchoolSyncResult]

    @property
    def failed(self) -> list[SchoolSyncResult]:
        return [r for r in self.schools if not r.ok]

    @property
    def ok(self) -> bool:
        return not self.failed

    def totals(self) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for r in self.schools:
            for resource, n in r.fetched.items():
                counts[f"fetched_{resource}"] += n
            counts["marks_new"] += r.marks_new
            counts["marks_changed"] += r.marks_changed
            counts["marks_deleted"] += r.marks_deleted
            counts["amendments_new"] += r.amendments_new
            counts["ledger_entries"] += r.ledger_entries
            counts["quarantined"] += len(r.quarantined)
        counts["schools_ok"] = sum(r.ok for r in self.schools)
        counts["schools_failed"] = len(self.failed)
        return dict(counts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "ok": self.ok,
            "schools": [r.to_dict() for r in self.schools],
            "totals": self.totals(),
        }


# -- windows -----------------------------------------------------------------------------------


def parse_bookmark(value: str | None) -> date | None:
    """A bookmark is the ISO date the last finished sync ran to (its ``as_of``)."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def plan_window(
    calendar: SchoolCalendar, bookmark: date | None, as_of: date, trailing_school_days: int
) -> Window | None:
    """The dates to pull: see the module docstring. None when there is nothing to pull yet
    (``as_of`` falls before the school year's first term day).

    The trailing window starts ``trailing_school_days`` school days before ``as_of``, so it
    holds those days and ``as_of`` itself (today's morning register may already be in). When the
    configured terms do not reach that far back, it starts at the first configured term day.
    """
    if bookmark is None:
        start = calendar.school_year_start(school_year_of(as_of))
        first_sync = True
    else:
        try:
            trailing = calendar.add_school_days(as_of, -trailing_school_days)
        except CalendarError:
            trailing = calendar.first_day
        # The bookmark's own day is pulled again: its afternoon may not have been in yet.
        start = min(bookmark, trailing)
        first_sync = False
    if start > as_of:
        return None
    return Window(start, as_of, first_sync)


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
    read_clock = clock or _utc_now
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
                store, school, pulled, windows, as_of, read_clock(), result, whole_year=whole_year
            )
    except RegisterwatchError as exc:
        result.status, result.error = "failed", redact_text(str(exc))
        result.seconds = time.monotonic() - started
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


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _vendor(school: SchoolSettings) -> str:
    return str(school.mis.vendor.value)


FULL_PULL_BOOKMARK = "full_pull"


def _require_terms_for(calendar: SchoolCalendar, as_of: date) -> None:
    """Refuse to sync into a school year the config has no terms for.

    Without them every date looks like a holiday: sync would pull an empty window and the scan
    would find nothing, silently. Before 1 September (the summer holiday) a missing new year
    is not yet an error.
    """
    year = school_year_of(as_of)
    if as_of < date(year, 9, 1) or school_year_of(calendar.last_day) >= year:
        return
    raise CalendarError(
        f"school {calendar.school_id!r}: the configured terms end on {calendar.last_day}, "
        f"but registers are being synced to {as_of}: add the {year}/{(year + 1) % 100:02d} "
        "terms to [schools.calendar] terms in the config"
    )


def full_pull_due(store: Store, school_id: str, as_of: date, full_repull_days: int | None) -> bool:
    """Is it time to re-pull the whole school year (not just the trailing window)?

    Without a change feed, a trailing window never sees an entry that vanished or changed
    further back; registers are legal documents kept 6 years, so every ``full_repull_days``
    the whole year is compared again (AMD002/AMD003 then see old changes within that delay).
    """
    if full_repull_days is None:
        return False
    last = parse_bookmark(store.get_bookmark(school_id, FULL_PULL_BOOKMARK))
    return last is None or (as_of - last).days >= full_repull_days or as_of < last


def _plan(
    store: Store,
    school_id: str,
    calendar: SchoolCalendar,
    as_of: date,
    trailing: int,
    result: SchoolSyncResult,
    full_repull_days: int | None = None,
) -> dict[str, Window | None]:
    windows: dict[str, Window | None] = {}
    whole_year = full_pull_due(store, school_id, as_of, full_repull_days)
    for resource in WINDOWED:
        raw = store.get_bookmark(school_id, resource)
        bookmark = parse_bookmark(raw)
        if raw is not None and bookmark is None:
            # Treated as a first sync: re-pulling the whole year is safe, only slower.
            result.warnings.append(
                f"{resource} bookmark {raw!r} is not a date; pulled the whole school year"
            )
        window = plan_window(calendar, bookmark, as_of, trailing)
        if whole_year and window is not None and not window.first_sync:
            year_start = calendar.school_year_start(school_year_of(as_of))
            window = Window(min(window.start, year_start), as_of, first_sync=False)
        windows[resource] = window
    return windows


def _fetch(
    adapter: Adapter,
    school_id: str,
    windows: Mapping[str, Window | None],
    result: SchoolSyncResult,
    emit: ProgressCallback,
) -> _Pulled:
    def fetched(resource: Resource, batch: Batch[Any]) -> None:
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
            pulled_keys = {MarkKey(m.pupil_id, m.date, m.session) for m in pulled.marks.records}
            missing = stored - pulled_keys
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

        quarantined = [
            q if q.resource else replace(q, resource=resource)
            for resource, batch in zip(
                RESOURCES,
                (pulled.pupils, pulled.registers, pulled.marks, pulled.amendments),
                strict=True,
            )
            for q in batch.quarantined
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

        batches = {
            "pupils": pulled.pupils,
            "registers": pulled.registers,
            "marks": pulled.marks,
            "amendments": pulled.amendments,
        }
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
) -> SyncSummary:
    """Sync every configured school (or only ``school_id``) into ``store``.

    ``as_of`` defaults to today in Europe/London. Each school is fetched concurrently (up to
    ``[sync] concurrency``, at most ``VENDOR_CONCURRENCY`` per vendor) and written alone, in its
    own transaction; a school that fails (bad credentials, an API that gives up, an empty pull)
    is recorded in the summary and the others go on. Raises ConfigError for an unknown
    ``school_id``.
    """
    schools = [settings.school(school_id)] if school_id is not None else list(settings.schools)
    day = as_of or datetime.now(LONDON).date()
    sync = settings.sync
    write_lock = threading.Lock()
    progress_lock = threading.Lock()
    slots = {
        vendor: threading.BoundedSemaphore(limit) if limit else None
        for vendor, limit in VENDOR_CONCURRENCY.items()
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
            return _failed(school, exc, started, emit)
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
            return _failed(school, exc, started, emit, internal=True)
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
    store.finish_run(run_id, "ok" if summary.ok else "failed", summary.totals())
    return summary


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


# -- ledger verification -----------------------------------------------------------------------


__all__ = [
    "RESOURCES",
    "VENDOR_CONCURRENCY",
    "EmptyPullError",
    "LedgerCheck",
    "ProgressCallback",
    "ResourceFetched",
    "SchoolFinished",
    "SchoolStarted",
    "SchoolSyncResult",
    "SyncEvent",
    "SyncSummary",
    "Window",
    "parse_bookmark",
    "plan_window",
    "sync_all",
    "sync_school",
]
