"""The store: SQLAlchemy Core tables, Alembic migrations and the queries sync, scan and the
exports use. SQLite by default, PostgreSQL for a trust or an LA.

    store = Store.open("sqlite:///registerwatch.db")
    with store.transaction() as tx:
        diff = store.upsert_marks(marks, "wenlock", conn=tx)
        store.append_ledger(entries_for(diff), conn=tx)
"""

from registerwatch.store.ledger import GENESIS_HASH, LedgerEntry, LedgerRecord, LedgerReport
from registerwatch.store.migrate import current_revision, head_revision, upgrade
from registerwatch.store.records import (
    DeletedMark,
    MarkChange,
    MarkDiff,
    MarkKey,
    OutboxItem,
    QuarantineEntry,
    RunRecord,
    StoredFinding,
)
from registerwatch.store.store import Store
from registerwatch.store.tables import metadata

__all__ = [
    "GENESIS_HASH", "DeletedMark", "LedgerEntry", "LedgerRecord", "LedgerReport", "MarkChange",
    "MarkDiff", "MarkKey", "OutboxItem", "QuarantineEntry", "RunRecord", "Store",
    "StoredFinding", "current_revision", "head_revision", "metadata", "upgrade",
]
