"""The store: SQLAlchemy Core tables, Alembic migrations and the queries sync, scan and the
exports use. SQLite by default, PostgreSQL for a trust or an LA.

    store = Store.open("sqlite:///registerwatch.db")
    with store.transaction() as tx:
        diff = store.upsert_marks(marks, "wenlock", conn=tx)
        store.record_changes("wenlock", diff, deleted=[], mis_amendments=[], conn=tx)

No SQL outside this package: what another part needs from the database is a method here.
"""

from registerwatch.store.base import Connection
from registerwatch.store.bookmarks import CAPABILITIES_BOOKMARK, RawRecord
from registerwatch.store.changes import LEDGERED_FIELDS
from registerwatch.store.ledger import (
    GENESIS_HASH,
    KINDS,
    OBSERVED_KINDS,
    LedgerCheck,
    LedgerEntry,
    LedgerKind,
    LedgerRecord,
    LedgerReport,
)
from registerwatch.store.locks import PgAdvisoryLock
from registerwatch.store.migrate import current_revision, head_revision, upgrade
from registerwatch.store.records import (
    DeletedMark,
    FindingEvent,
    MarkChange,
    MarkDiff,
    MarkKey,
    OutboxItem,
    QuarantineEntry,
    RunRecord,
    StoredFinding,
    SyncStatus,
)
from registerwatch.store.registers import amendment_key, dedupe_amendments
from registerwatch.store.rule_state import SCHOOL_ROW, RuleState
from registerwatch.store.store import RecordedChanges, Store
from registerwatch.store.summary import ScanState, SummaryUpdate
from registerwatch.store.tables import metadata
from registerwatch.store.users import ROLES, AuditEntry, UserRecord, normalise_email

__all__ = [
    "CAPABILITIES_BOOKMARK",
    "GENESIS_HASH",
    "KINDS",
    "LEDGERED_FIELDS",
    "OBSERVED_KINDS",
    "ROLES",
    "SCHOOL_ROW",
    "AuditEntry",
    "Connection",
    "DeletedMark",
    "FindingEvent",
    "LedgerCheck",
    "LedgerEntry",
    "LedgerKind",
    "LedgerRecord",
    "LedgerReport",
    "MarkChange",
    "MarkDiff",
    "MarkKey",
    "OutboxItem",
    "PgAdvisoryLock",
    "QuarantineEntry",
    "RawRecord",
    "RecordedChanges",
    "RuleState",
    "RunRecord",
    "ScanState",
    "Store",
    "StoredFinding",
    "SummaryUpdate",
    "SyncStatus",
    "UserRecord",
    "amendment_key",
    "current_revision",
    "dedupe_amendments",
    "head_revision",
    "metadata",
    "normalise_email",
    "upgrade",
]
