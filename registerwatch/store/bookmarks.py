"""What sync keeps between runs for each school: its bookmarks (how far each resource was
pulled), what the MIS exposed (its capabilities), and the records that would not map
(quarantine), kept with the field, the reason and the raw record."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from registerwatch.errors import InvalidRecord, StoreError
from registerwatch.store import tables as t
from registerwatch.store.base import StoreBase, upsert
from registerwatch.store.ledger import canonical_json
from registerwatch.store.records import QuarantineEntry

# The bookmark under which a school's capabilities are kept (a JSON object of booleans).
CAPABILITIES_BOOKMARK = "capabilities"

# A quarantined record as it arrived: text, bytes, or parsed JSON (kept as canonical JSON text).
RawRecord = str | bytes | Mapping[str, Any] | Sequence[Any] | None


def _raw_text(raw: RawRecord) -> str | None:
    if raw is None or isinstance(raw, str):
        return raw
    if isinstance(raw, bytes | bytearray):
        return bytes(raw).decode("utf-8", errors="replace")
    return canonical_json(raw) if isinstance(raw, Mapping | list | tuple) else str(raw)


# The ledger tip sync's last check verified ("SEQ:HASH"), kept as a store-wide bookmark (no
# school): see LedgerStore.check_ledger_since_verified.
_VERIFIED_LEDGER_TIP = ("", "ledger_verified_tip")


def verified_ledger_tip(c: sa.Connection) -> tuple[int, str] | None:
    """(seq, hash) of the ledger tip sync's last check verified, or None."""
    b = t.bookmarks
    school_id, resource = _VERIFIED_LEDGER_TIP
    value = c.scalar(
        sa.select(b.c.value).where(b.c.school_id == school_id, b.c.resource == resource)
    )
    seq, _, digest = str(value or "").partition(":")
    return (int(seq), digest) if seq.isdigit() and digest else None


def set_verified_ledger_tip(c: sa.Connection, seq: int, digest: str, at: datetime) -> None:
    school_id, resource = _VERIFIED_LEDGER_TIP
    row = {"school_id": school_id, "resource": resource, "value": f"{seq}:{digest}"}
    upsert(
        c,
        t.bookmarks,
        [{**row, "updated_at": at}],
        keys=["school_id", "resource"],
        update=["value", "updated_at"],
    )


class BookmarksStore(StoreBase):
    def get_bookmark(
        self, school_id: str, resource: str, *, conn: sa.Connection | None = None
    ) -> str | None:
        b = t.bookmarks
        with self._read(conn) as c:
            return c.scalar(
                sa.select(b.c.value).where(b.c.school_id == school_id, b.c.resource == resource)
            )

    def set_bookmark(
        self,
        school_id: str,
        resource: str,
        value: str,
        *,
        at: datetime | None = None,
        conn: sa.Connection | None = None,
    ) -> None:
        if not isinstance(value, str):
            raise TypeError(f"bookmark values are strings, got {type(value).__name__}")
        row = {
            "school_id": school_id,
            "resource": resource,
            "value": value,
            "updated_at": self._at(at),
        }
        with self._write(conn) as c:
            upsert(
                c,
                t.bookmarks,
                [row],
                keys=["school_id", "resource"],
                update=["value", "updated_at"],
            )

    # -- capabilities --------------------------------------------------------------------------

    def capabilities(self, school_id: str, *, conn: sa.Connection | None = None) -> dict[str, bool]:
        """What the school's MIS exposed at its last sync ({} before the first): for the scan,
        REG002/REG003 need register events and AMD002 the MIS's own amendment records."""
        raw = self.get_bookmark(school_id, CAPABILITIES_BOOKMARK, conn=conn)
        return json.loads(raw) if raw else {}

    def set_capabilities(
        self,
        school_id: str,
        capabilities: Mapping[str, bool],
        *,
        at: datetime | None = None,
        conn: sa.Connection | None = None,
    ) -> None:
        self.set_bookmark(
            school_id,
            CAPABILITIES_BOOKMARK,
            json.dumps(dict(capabilities), sort_keys=True),
            at=at,
            conn=conn,
        )

    # -- quarantine ----------------------------------------------------------------------------

    def quarantine(
        self,
        school_id: str,
        resource: str,
        reason: str,
        *,
        record_ref: str | None = None,
        field: str | None = None,
        raw: RawRecord = None,
        at: datetime | None = None,
        conn: sa.Connection | None = None,
    ) -> None:
        """Keep a record that would not map, with the field and reason. The same record and
        field seen again updates the entry (reason, raw, last_seen_at, occurrences) instead of
        adding another."""
        now = self._at(at)
        row = {
            "school_id": school_id,
            "resource": resource,
            "record_ref": record_ref or "",
            "field": field or "",
            "reason": reason,
            "raw": _raw_text(raw),
            "occurrences": 1,
            "first_seen_at": now,
            "last_seen_at": now,
        }
        q = t.quarantine
        with self._write(conn) as c:
            upsert(
                c,
                q,
                [row],
                keys=["school_id", "resource", "record_ref", "field"],
                update=["reason", "raw", "last_seen_at"],
                update_exprs=lambda _stmt: {"occurrences": q.c.occurrences + 1},
            )

    def quarantine_error(
        self,
        school_id: str,
        error: InvalidRecord,
        *,
        resource: str | None = None,
        raw: RawRecord = None,
        at: datetime | None = None,
        conn: sa.Connection | None = None,
    ) -> None:
        """Quarantine the record an InvalidRecord was raised for."""
        name = resource or error.resource
        if not name:
            raise StoreError("quarantine needs the resource the record came from")
        self.quarantine(
            school_id,
            name,
            error.reason,
            record_ref=error.record_ref,
            field=error.field,
            raw=raw,
            at=at,
            conn=conn,
        )

    def quarantined(
        self,
        school_id: str | None = None,
        *,
        resource: str | None = None,
        conn: sa.Connection | None = None,
    ) -> list[QuarantineEntry]:
        q = t.quarantine
        query = sa.select(q).order_by(q.c.school_id, q.c.resource, q.c.record_ref, q.c.field)
        if school_id is not None:
            query = query.where(q.c.school_id == school_id)
        if resource is not None:
            query = query.where(q.c.resource == resource)
        with self._read(conn) as c:
            rows = c.execute(query).all()
        return [
            QuarantineEntry(
                school_id=r.school_id,
                resource=r.resource,
                record_ref=r.record_ref or None,
                field=r.field or None,
                reason=r.reason,
                raw=r.raw,
                occurrences=r.occurrences,
                first_seen_at=r.first_seen_at,
                last_seen_at=r.last_seen_at,
            )
            for r in rows
        ]
