"""Sync: pull each school's MIS through its adapter into the store, and record every change.

One school's sync (``sync_school``):

1. **Plan** a window per resource from its bookmark. The first sync pulls from the first term
   day of the school year; later syncs pull from the earlier of the last bookmark and the date
   ``trailing_school_days`` school days before ``as_of`` (no MIS has a usable change
   feed, so a trailing window is re-pulled every run and late amendments are still seen).
2. **Fetch** pupils (always in full), registers, marks and MIS amendment records for the window.
   Nothing is written yet; an API failure here leaves the store untouched.
3. **Write**, in one transaction: the school and its calendar, pupils, registers, marks (diffed
   against the store: ``MarkDiff``), marks that disappeared from the MIS within the window
   (flagged, never deleted: registers are kept 6 years), MIS amendment records, quarantined
   records, the ledger (one entry per pupil for the marks seen first, one per change), and
   the bookmarks. Bookmarks move in the same
   transaction as the data, so a run killed at any point leaves the school exactly as the last
   finished run left it, and the rerun pulls the same window again. A pull that quarantined
   records holds its bookmark, so the same dates are pulled until the MIS serves them cleanly.

``sync_all`` runs every configured school: fetches run concurrently (a thread pool, at most
the vendor's ``FACTS.concurrency`` at a time per vendor), writes one school at a time (SQLite has one
writer), and each school succeeds or fails on its own.

Only ``cli.py`` prints; progress reaches it through the ``progress`` callback. Log events carry
school ids and counts, never pupil data.
"""

from registerwatch.store import LedgerCheck
from registerwatch.sync.run import AdapterFactory, sync_all
from registerwatch.sync.school import compare_mis_terms, sync_school
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
    SyncEvent,
    SyncSummary,
    Window,
)
from registerwatch.sync.window import full_pull_due, parse_bookmark, plan_window

__all__ = [
    "RESOURCES",
    "WINDOWED",
    "AdapterFactory",
    "EmptyPullError",
    "LedgerCheck",
    "ProgressCallback",
    "Resource",
    "ResourceFetched",
    "SchoolFinished",
    "SchoolStarted",
    "SchoolSyncResult",
    "SyncEvent",
    "SyncSummary",
    "Window",
    "compare_mis_terms",
    "full_pull_due",
    "parse_bookmark",
    "plan_window",
    "sync_all",
    "sync_school",
]
