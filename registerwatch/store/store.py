"""The store: one place where synced registers, the ledger, findings and the outbox live.

:class:`Store` is a facade: each aggregate's reads and writes live in a module of their own,
and ``Store`` composes them, so callers keep calling ``store.marks(...)``,
``store.append_ledger(...)`` and so on. Where to look:

- ``base``: opening the database, ``transaction()`` / ``snapshot()``, the clock, the upsert helper;
- ``people``: schools, calendars, pupils;
- ``marks``: marks; ``mark_rows``: rows to Marks (the fast Mark builder) and back;
  ``bulk``: the tuple inserts sync's writes use; ``registers``: registers and amendment records;
- ``ledger`` (the entries and their hash chain), ``ledger_table`` (appending, reading, verifying)
  and ``changes`` (which changes sync ledgers);
- ``findings``; ``outbox`` (and the returns already made); ``runs``;
- ``bookmarks``: bookmarks, capabilities and quarantine; ``freshness``: registers complete to;
- ``locks``: the PostgreSQL advisory lock behind the run lock;
- ``users``: the web app's accounts, audit trail and failed sign-ins.
- ``lean``: the scan's read of marks as tokens; ``summary``: the incremental scan's per-pupil
  summary and scan state; ``rule_state``: what incremental rules carry between scans;
  ``scan_delta``: the nightly scan's reads of what changed.

Every method takes an optional ``conn``: pass the connection from :meth:`Store.transaction` to
make several calls one atomic unit. Without it a writer runs in a transaction of its own and a
reader on a fresh connection.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from registerwatch.schema import Amendment, Mark
from registerwatch.store.bookmarks import BookmarksStore
from registerwatch.store.changes import ledger_entries, ledgered_changes, observed_amendments
from registerwatch.store.findings import FindingsStore
from registerwatch.store.freshness import FreshnessStore
from registerwatch.store.lean import LeanMarksStore
from registerwatch.store.ledger import LedgerRecord
from registerwatch.store.ledger_table import LedgerStore
from registerwatch.store.marks import MarksStore
from registerwatch.store.outbox import OutboxStore
from registerwatch.store.people import PeopleStore
from registerwatch.store.records import MarkDiff
from registerwatch.store.registers import RegistersStore, dedupe_amendments
from registerwatch.store.rule_state import RuleStateStore
from registerwatch.store.runs import RunsStore
from registerwatch.store.scan_delta import ScanDeltaStore
from registerwatch.store.summary import SummaryStore
from registerwatch.store.users import UsersStore


@dataclass(frozen=True)
class RecordedChanges:
    """What :meth:`Store.record_changes` wrote."""

    records: list[LedgerRecord]  # the ledger entries, as stored
    amendments_new: int  # MIS amendment records the store did not hold before
    marks_changed: int  # changes to a register entry (not a mere change of the MIS's record id)


class Store(
    PeopleStore,
    MarksStore,
    RegistersStore,
    LedgerStore,
    FindingsStore,
    OutboxStore,
    RunsStore,
    BookmarksStore,
    FreshnessStore,
    UsersStore,
    LeanMarksStore,
    SummaryStore,
    RuleStateStore,
    ScanDeltaStore,
):
    """The registerwatch store (SQLite file or PostgreSQL database), at the current schema.

    ``Store(url)`` opens an existing store and raises StoreError if it is missing or at an older
    schema revision; ``Store.open(url)`` (``create=True``) also creates and initialises an empty
    one, such as a new SQLite file.
    """

    @classmethod
    def open(cls, url: str | sa.URL, create: bool = True, **kwargs: Any) -> Store:
        """Open the store at ``url``; with ``create`` (the default) initialise an empty one."""
        return cls(url, create=create, **kwargs)

    def record_changes(
        self,
        school_id: str,
        diff: MarkDiff,
        deleted: Sequence[Mark],
        mis_amendments: Iterable[Amendment],
        *,
        at: datetime | None = None,
        conn: sa.Connection | None = None,
    ) -> RecordedChanges:
        """Ledger what one sync saw, after its marks are written: one entry per pupil listing
        the marks seen first, one per changed and deleted mark and per MIS amendment record not
        held before; store the MIS's records
        and, for each observed code change or deletion, an amendment record of source
        "observed" (so the rules compare one model), whose source_ref is its ledger entry.
        Call inside the sync's transaction."""
        now = self._at(at)
        with self._write(conn) as c:
            mis = dedupe_amendments(mis_amendments)
            new_mis = self.new_amendments(school_id, mis, conn=c)
            amendments_new = self.insert_amendments(mis, school_id, at=now, conn=c)
            records = self.append_ledger(
                ledger_entries(school_id, diff, deleted, new_mis, now), conn=c
            )
            self.insert_amendments(observed_amendments(records, diff), school_id, at=now, conn=c)
        return RecordedChanges(records, amendments_new, len(ledgered_changes(diff)))
