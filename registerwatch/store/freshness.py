"""How fresh each school's registers are: what sync last achieved (``sync_status``).

``registers_complete_to`` is the last school day whose sessions a sync pulled cleanly; the scan
judges nothing after it. A failed attempt is recorded beside it (when, and the error) without
moving it, so the scan can say how stale the data is and why.
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa

from registerwatch.store import tables as t
from registerwatch.store.base import StoreBase, upsert
from registerwatch.store.records import SyncStatus


class FreshnessStore(StoreBase):
    def record_sync_success(
        self,
        school_id: str,
        complete_to: date | None,
        *,
        at: datetime | None = None,
        conn: sa.Connection | None = None,
    ) -> None:
        """A clean sync: registers complete to ``complete_to`` (never moved backwards, so a
        rerun for an earlier --as-of does not make the scan forget days it has seen; None keeps
        the stored day, for a pull that held its bookmark)."""
        now = self._at(at)
        with self._write(conn) as c:
            before = self.sync_status(school_id, conn=c)
            kept = before.registers_complete_to if before is not None else None
            if complete_to is None or (kept is not None and kept > complete_to):
                complete_to = kept
            row = {
                "school_id": school_id,
                "registers_complete_to": complete_to,
                "last_success_at": now,
                "last_attempt_at": now,
                "last_outcome": "ok",
                "last_error": None,
            }
            upsert(c, t.sync_status, [row], keys=["school_id"], update=list(row)[1:])

    def record_sync_failure(
        self,
        school_id: str,
        error: str,
        *,
        at: datetime | None = None,
        conn: sa.Connection | None = None,
    ) -> None:
        """A failed sync attempt: its time and error; registers complete to is kept."""
        row = {
            "school_id": school_id,
            "last_attempt_at": self._at(at),
            "last_outcome": "failed",
            "last_error": error,
        }
        with self._write(conn) as c:
            upsert(c, t.sync_status, [row], keys=["school_id"], update=list(row)[1:])

    def sync_status(
        self, school_id: str, *, conn: sa.Connection | None = None
    ) -> SyncStatus | None:
        """What sync last achieved for the school (None: no sync recorded for it)."""
        s = t.sync_status
        with self._read(conn) as c:
            r = c.execute(sa.select(s).where(s.c.school_id == school_id)).first()
        if r is None:
            return None
        return SyncStatus(
            school_id=r.school_id,
            registers_complete_to=r.registers_complete_to,
            last_success_at=r.last_success_at,
            last_attempt_at=r.last_attempt_at,
            last_outcome=r.last_outcome,
            last_error=r.last_error,
        )
