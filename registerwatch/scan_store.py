"""What the scan reads from and writes to the store beyond the findings API.

``load_context`` builds one school's :class:`~registerwatch.validators.ScanContext` from the store
(pupils, registers, live marks, amendment records, observed changes, notifications, what the MIS
exposed at its last sync) and the calendar from the config, which is the authority on term dates.

Two store operations the scan needs have no public ``Store`` method yet; until they do they live
here, each one statement over the store's own tables (asked for in the scan's hand-over report):

- ``observed_ledger``: only the ledger entries that are observed changes. ``Store.ledger`` reads
  every entry, and sync writes one ``observed_new`` entry per mark it first sees, so the whole
  ledger is as large as the marks table; the rules need only the changes and deletions.
- ``reopen_findings`` / ``lapse_acknowledgements``: ``Store.save_findings`` keeps ``first_seen``
  and the acknowledgement of a stored finding on purpose, but a finding that comes back after it
  was resolved is a new breach (a new ``first_seen``, no acknowledgement), and an acknowledgement
  given to a warning does not cover the error it becomes once its deadline passes.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import date, datetime

import sqlalchemy as sa

from registerwatch.calendar import SchoolCalendar
from registerwatch.config.settings import SchoolSettings
from registerwatch.store import Store
from registerwatch.store import tables as t
from registerwatch.sync import read_capabilities
from registerwatch.validators import (
    DEFAULT_SETTINGS,
    ObservedChange,
    RuleSettings,
    ScanContext,
    observed_changes_from_ledger,
)

__all__ = ["OBSERVED_KINDS", "lapse_acknowledgements", "load_context", "observed_ledger",
           "reopen_findings"]

# The ledger kinds that are changes to a register entry (validators.context maps them).
OBSERVED_KINDS = ("observed_change", "observed_deleted")

# Fingerprints per UPDATE ... WHERE fingerprint IN (...): well under SQLite's variable limit.
_IN_BATCH = 500


def observed_ledger(store: Store, school_id: str, *,
                    conn: sa.Connection | None = None) -> list[ObservedChange]:
    """The school's observed changes and deletions from the ledger, in ledger order."""
    lg = t.ledger
    query = (sa.select(lg.c.pupil_id, lg.c.date, lg.c.session, lg.c.kind, lg.c.original_code,
                       lg.c.new_code, lg.c.observed_at)
             .where(lg.c.school_id == school_id, lg.c.kind.in_(OBSERVED_KINDS))
             .order_by(lg.c.seq))
    if conn is not None:
        return observed_changes_from_ledger(conn.execute(query))
    with store.engine.connect() as own:
        return observed_changes_from_ledger(own.execute(query))


def load_context(store: Store, school: SchoolSettings, as_of: date, *,
                 settings: RuleSettings = DEFAULT_SETTINGS,
                 conn: sa.Connection | None = None) -> ScanContext:
    """One school's records as a ScanContext for a scan on ``as_of``.

    Marks flagged deleted are left out (``Store.marks`` reads live marks only): a deletion
    reaches the rules as an observed change (AMD003). Before the first sync with capability
    records, the MIS is taken to expose neither register events nor amendment records, so REG001
    and AMD002 each say once what could not be checked instead of reporting breaches.
    Raises CalendarError when the school's configured calendar has no terms.
    """
    calendar = SchoolCalendar(school.to_calendar())
    capabilities = read_capabilities(store, school.id)
    with _collector_paused():
        return ScanContext.build(
            calendar=calendar, as_of=as_of, school_id=school.id,
            pupils=store.pupils(school.id, conn=conn),
            registers=store.registers(school.id, conn=conn),
            marks=store.marks(school.id, conn=conn),
            amendments=store.amendments(school.id, conn=conn),
            observed_changes=observed_ledger(store, school.id, conn=conn),
            notifications=store.notifications(school.id, conn=conn),
            exposes_registers=bool(capabilities.get("registers", False)),
            exposes_amendments=bool(capabilities.get("amendments", False)),
            # A store synced before this capability was recorded: judge as before.
            exposes_social_worker=bool(capabilities.get("social_worker", True)),
            settings=settings,
        )


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a school year of marks is read.

    Reading builds ~570k Mark objects that all stay alive; every automatic collection on the
    way rescans all of those read so far, which more than doubled the read in
    bench/bench_scan.py. Reading creates no reference cycles, so nothing is left for the
    collector; its state is restored (validators.registry does the same around the rules).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _batches(fingerprints: Iterable[str]) -> Iterable[list[str]]:
    items = sorted(set(fingerprints))
    for start in range(0, len(items), _IN_BATCH):
        yield items[start:start + _IN_BATCH]


def reopen_findings(conn: sa.Connection, fingerprints: Iterable[str], at: datetime) -> None:
    """Findings that were resolved and are seen again: first seen now, not acknowledged.
    Call after ``save_findings`` has reopened them, in the same transaction."""
    fd = t.findings
    for batch in _batches(fingerprints):
        conn.execute(sa.update(fd).where(fd.c.fingerprint.in_(batch))
                     .values(first_seen=at, acknowledged_at=None, ack_note=None))


def lapse_acknowledgements(conn: sa.Connection, fingerprints: Iterable[str]) -> None:
    """Withdraw the acknowledgement of findings whose severity rose since (a warning that
    became an error): the new severity has not been seen by anyone."""
    fd = t.findings
    for batch in _batches(fingerprints):
        conn.execute(sa.update(fd).where(fd.c.fingerprint.in_(batch))
                     .values(acknowledged_at=None, ack_note=None))
