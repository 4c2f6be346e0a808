"""Returns: the ones already made (notifications, which the rules check against) and the
artefacts waiting to be sent (the outbox: one row per idempotency key, so a rerun never sends
twice)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from registerwatch.errors import StoreError
from registerwatch.schema import Notification
from registerwatch.store import tables as t
from registerwatch.store.base import (
    IN_LIST_LIMIT,
    UNSET,
    StoreBase,
    chunks,
    dialect_insert,
    sha256_key,
    upsert,
)
from registerwatch.store.ledger import instant_text
from registerwatch.store.records import OutboxItem


def notification_key(notification: Notification) -> str:
    """The natural key that makes recording the same return twice a no-op."""
    return sha256_key(
        [
            str(notification.kind),
            notification.pupil_id,
            notification.episode_start.isoformat() if notification.episode_start else None,
            instant_text(notification.made_at),
            notification.channel,
            notification.reference,
        ]
    )


class OutboxStore(StoreBase):
    def add_notifications(
        self,
        notifications: Iterable[Notification],
        *,
        at: datetime | None = None,
        conn: sa.Connection | None = None,
    ) -> int:
        """Record returns already made; one already recorded is left alone. Returns how many
        were new."""
        now = self._at(at)
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        for n in notifications:
            key = notification_key(n)
            rows[(n.school_id, key)] = n.model_dump(mode="python") | {
                "kind": str(n.kind),
                "natural_key": key,
                "recorded_at": now,
            }
        if not rows:
            return 0
        nt = t.notifications
        with self._write(conn) as c:
            known: set[tuple[str, str]] = set()
            for batch in chunks(sorted(rows), IN_LIST_LIMIT):
                known.update(
                    (s, k)
                    for s, k in c.execute(
                        sa.select(nt.c.school_id, nt.c.natural_key).where(
                            sa.tuple_(nt.c.school_id, nt.c.natural_key).in_(batch)
                        )
                    )
                )
            upsert(c, nt, list(rows.values()), keys=["school_id", "natural_key"])
        return len(rows.keys() - known)

    def add_notification(
        self,
        notification: Notification,
        *,
        at: datetime | None = None,
        conn: sa.Connection | None = None,
    ) -> bool:
        """Record one return already made; False if it was already recorded."""
        return self.add_notifications([notification], at=at, conn=conn) == 1

    def notifications(
        self,
        school_id: str,
        *,
        kind: str | None = None,
        pupil_id: str | None = None,
        conn: sa.Connection | None = None,
    ) -> list[Notification]:
        nt = t.notifications
        fields = tuple(Notification.model_fields)
        query = sa.select(*(nt.c[name] for name in fields)).where(nt.c.school_id == school_id)
        if kind is not None:
            query = query.where(nt.c.kind == str(kind))
        if pupil_id is not None:
            query = query.where(nt.c.pupil_id == pupil_id)
        query = query.order_by(nt.c.made_at, nt.c.id)
        with self._read(conn) as c:
            rows = c.execute(query).all()
        return [Notification.model_validate(dict(row._mapping)) for row in rows]

    # -- outbox --------------------------------------------------------------------------------

    def enqueue_outbox(
        self,
        *,
        return_kind: str,
        school_id: str,
        idempotency_key: str,
        payload: bytes,
        sha256: str | None = None,
        pupil_id: str | None = None,
        episode: str | None = None,
        artefact_path: str | None = None,
        at: datetime | None = None,
        conn: sa.Connection | None = None,
    ) -> tuple[OutboxItem, bool]:
        """Queue an artefact once per idempotency key: returns (item, created). A key already
        queued returns the stored item untouched and created=False, so a rerun never sends
        twice."""
        digest = hashlib.sha256(payload).hexdigest()
        if sha256 is not None and sha256.lower() != digest:
            raise StoreError(
                f"outbox item {idempotency_key!r}: sha256 {sha256} does not match the payload "
                f"({digest}); re-render the artefact"
            )
        now = self._at(at)
        row = {
            "return_kind": return_kind,
            "school_id": school_id,
            "pupil_id": pupil_id,
            "episode": episode,
            "idempotency_key": idempotency_key,
            "sha256": digest,
            "artefact_path": artefact_path,
            "payload": bytes(payload),
            "state": "queued",
            "attempts": 0,
            "last_error": None,
            "receipt": None,
            "created_at": now,
            "updated_at": now,
        }
        with self._write(conn) as c:
            stmt = (
                dialect_insert(c, t.outbox)
                .values(row)
                .on_conflict_do_nothing(index_elements=["idempotency_key"])
                .returning(t.outbox.c.id)
            )
            # A row comes back only when this call inserted it (rowcount is not reliable here).
            created = c.execute(stmt).first() is not None
            item = self.outbox_item(idempotency_key=idempotency_key, conn=c)
        assert item is not None
        return item, created

    def outbox_item(
        self,
        item_id: int | None = None,
        *,
        idempotency_key: str | None = None,
        conn: sa.Connection | None = None,
    ) -> OutboxItem | None:
        o = t.outbox
        if (item_id is None) == (idempotency_key is None):
            raise TypeError("give exactly one of item_id or idempotency_key")
        where = o.c.id == item_id if item_id is not None else o.c.idempotency_key == idempotency_key
        with self._read(conn) as c:
            row = c.execute(sa.select(o).where(where)).first()
        return None if row is None else OutboxItem(**dict(row._mapping))

    def outbox_items(
        self,
        *,
        state: str | None = None,
        school_id: str | None = None,
        conn: sa.Connection | None = None,
    ) -> list[OutboxItem]:
        o = t.outbox
        query = sa.select(o).order_by(o.c.id)
        if state is not None:
            query = query.where(o.c.state == state)
        if school_id is not None:
            query = query.where(o.c.school_id == school_id)
        with self._read(conn) as c:
            return [OutboxItem(**dict(row._mapping)) for row in c.execute(query)]

    def update_outbox(
        self,
        item_id: int,
        *,
        state: str,
        expected_state: str | None = None,
        last_error: str | None = UNSET,
        receipt: str | None = UNSET,
        remote: tuple[int | None, str | None, str | None] | None = UNSET,
        attempted: bool = False,
        at: datetime | None = None,
        conn: sa.Connection | None = None,
    ) -> bool:
        """Move an item to ``state`` (optionally only if it is still in ``expected_state``, so
        two workers cannot both claim it). ``attempted`` counts a submission attempt;
        ``last_error``, ``receipt`` and ``remote`` (the receiver's last answer as data: status
        code, classification, SHA-256 of its body; None clears it) change only when given.
        Returns whether it was updated."""
        if state not in t.OUTBOX_STATES:
            raise StoreError(f"outbox state {state!r} is not one of {', '.join(t.OUTBOX_STATES)}")
        o = t.outbox
        values: dict[str, Any] = {"state": state, "updated_at": self._at(at)}
        if last_error is not UNSET:
            values["last_error"] = last_error
        if receipt is not UNSET:
            values["receipt"] = receipt
        if remote is not UNSET:
            status, classification, digest = remote if remote is not None else (None, None, None)
            values.update(remote_status=status, remote_class=classification, remote_sha256=digest)
        if attempted:
            values["attempts"] = o.c.attempts + 1
        stmt = sa.update(o).where(o.c.id == item_id).values(**values)
        if expected_state is not None:
            stmt = stmt.where(o.c.state == expected_state)
        with self._write(conn) as c:
            return c.execute(stmt).rowcount == 1
