"""What the scan reads from the store: one school's records as a ScanContext.

``load_context`` builds one school's :class:`~registerwatch.validators.ScanContext` from the store
(pupils, registers, live marks, amendment records, observed changes, notifications, what the MIS
exposed at its last sync) and the calendar from the config, which is the authority on term dates.

Everything here goes through public ``Store`` methods: the observed changes are
``Store.ledger(kinds=OBSERVED_KINDS)`` (sync writes one ``observed_new`` entry per mark, so the
whole ledger is as large as the marks table; the rules need only the changes and deletions, found
through the ledger's (school_id, kind) index), and a finding's lifecycle beyond
``save_findings`` is ``Store.reopen_findings`` / ``Store.clear_acknowledgements``.
"""

from __future__ import annotations

from datetime import date

from registerwatch.calendar import calendar_for
from registerwatch.config import SchoolSettings
from registerwatch.gcpause import collector_paused
from registerwatch.store import OBSERVED_KINDS, Connection, Store
from registerwatch.validators import (
    DEFAULT_SETTINGS,
    ObservedChange,
    RuleSettings,
    ScanContext,
    observed_changes_from_ledger,
)

__all__ = ["load_context", "observed_ledger"]


def observed_ledger(
    store: Store, school_id: str, *, conn: Connection | None = None
) -> list[ObservedChange]:
    """The school's observed changes and deletions from the ledger, in ledger order."""
    return observed_changes_from_ledger(store.ledger(school_id, kinds=OBSERVED_KINDS, conn=conn))


def load_context(
    store: Store,
    school: SchoolSettings,
    as_of: date,
    *,
    settings: RuleSettings = DEFAULT_SETTINGS,
    conn: Connection | None = None,
) -> ScanContext:
    """One school's records as a ScanContext for a scan on ``as_of``.

    Marks flagged deleted are left out (``Store.marks`` reads live marks only): a deletion
    reaches the rules as an observed change (AMD003). Before the first sync with capability
    records, the MIS is taken to expose neither register events nor amendment records, so REG001
    and AMD002 each say once what could not be checked instead of reporting breaches.
    Raises CalendarError when the school's configured calendar has no terms.
    """
    calendar = calendar_for(school)
    capabilities = store.capabilities(school.id, conn=conn)
    with collector_paused():
        return ScanContext.build(
            calendar=calendar,
            as_of=as_of,
            school_id=school.id,
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
