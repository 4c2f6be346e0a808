"""Registers (who took which register, when) and amendment records (the MIS's own, and the
"observed" ones sync derives from the changes it sees)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa

from registerwatch.schema import Amendment, AmendmentSource, Register, Session
from registerwatch.schema.construct import trusted_constructor
from registerwatch.store import tables as t
from registerwatch.store.base import (
    IN_LIST_LIMIT,
    SESSIONS,
    StoreBase,
    chunks,
    sha256_key,
    upsert,
)
from registerwatch.store.ledger import instant_text

_REGISTER_FIELDS = tuple(Register.model_fields)
# What sync may update on a known register; a change to any of them moves its changed_at.
_REGISTER_CONTENT = ("opened_at", "completed_at", "taken_by", "source_ref")


def _register_changed_at(stmt: Any) -> dict[str, Any]:
    """``changed_at`` = now when the incoming register differs from the stored one, else kept:
    a nightly scan rereads only the sessions whose registers changed (``changed_registers``)."""
    r = t.registers
    differs = sa.or_(
        *(r.c[name].is_distinct_from(stmt.excluded[name]) for name in _REGISTER_CONTENT)
    )
    return {
        "changed_at": sa.case((differs, stmt.excluded.changed_at), else_=r.c.changed_at),
    }


_AMENDMENT_FIELDS = tuple(Amendment.model_fields)
# Registers and amendments as stored rows become models without validation: sync validated them
# on the way in, and a school year holds tens of thousands of registers.
_stored_register = trusted_constructor(
    Register,
    {
        "school_id": "probe",
        "group": "7A",
        "date": date(2025, 9, 3),
        "session": Session.AM,
        "opened_at": datetime(2025, 9, 3, 8, 40, tzinfo=UTC),
        "completed_at": None,
        "taken_by": "probe",
        "source_ref": None,
    },
)
_stored_amendment = trusted_constructor(
    Amendment,
    {
        "pupil_id": "probe:1",
        "date": date(2025, 9, 3),
        "session": Session.AM,
        "original_code": "N",
        "amended_code": "I",
        "reason": "probe",
        "amended_at": datetime(2025, 9, 4, 8, 40, tzinfo=UTC),
        "amended_by_name": "probe",
        "amended_by_position": None,
        "source": AmendmentSource.MIS,
        "source_ref": None,
    },
)


def amendment_key(amendment: Amendment) -> str:
    """The natural key that makes a reload of the same MIS amendment idempotent.

    The MIS's own reference when it gives one; otherwise the fields that identify the change
    (not the reason or the amender's position, which an MIS may fill in later: a later pull that
    adds them updates the record instead of duplicating it).
    """
    if amendment.source_ref:
        return f"ref:{amendment.source}:{amendment.source_ref}"
    return sha256_key(
        [
            str(amendment.source),
            amendment.pupil_id,
            amendment.date.isoformat(),
            str(amendment.session),
            amendment.original_code,
            amendment.amended_code,
            instant_text(amendment.amended_at) if amendment.amended_at else None,
            amendment.amended_by_name,
        ]
    )


def dedupe_amendments(amendments: Iterable[Amendment]) -> list[Amendment]:
    """One record per natural key: a later record with the same key replaces an earlier one, as
    :meth:`RegistersStore.insert_amendments` does."""
    chosen: dict[str, Amendment] = {}
    for amendment in amendments:
        chosen[amendment_key(amendment)] = amendment
    return list(chosen.values())


class RegistersStore(StoreBase):
    def upsert_registers(
        self,
        registers: Iterable[Register],
        *,
        at: datetime | None = None,
        conn: sa.Connection | None = None,
    ) -> int:
        """Insert or update registers by (school, group, date, session); returns rows written."""
        now = self._at(at)
        rows: dict[tuple[Any, ...], dict[str, Any]] = {}
        for register in registers:
            row = register.model_dump(mode="python")
            row["session"] = str(register.session)
            rows[(register.school_id, register.group, register.date, row["session"])] = row | {
                "first_seen_at": now,
                "last_seen_at": now,
                "changed_at": now,
            }
        with self._write(conn) as c:
            upsert(
                c,
                t.registers,
                list(rows.values()),
                keys=["school_id", "group", "date", "session"],
                update=[*_REGISTER_CONTENT, "last_seen_at"],
                update_exprs=_register_changed_at,
            )
        return len(rows)

    def registers(
        self,
        school_id: str,
        start: date | None = None,
        end: date | None = None,
        *,
        group: str | None = None,
        conn: sa.Connection | None = None,
    ) -> list[Register]:
        """Registers of a school, by date, session and group; ``start``/``end`` are inclusive."""
        r = t.registers
        query = sa.select(*(r.c[name] for name in _REGISTER_FIELDS)).where(
            r.c.school_id == school_id
        )
        if start is not None:
            query = query.where(r.c.date >= start)
        if end is not None:
            query = query.where(r.c.date <= end)
        if group is not None:
            query = query.where(r.c.group == group)
        query = query.order_by(r.c.date, r.c.session, r.c.group)
        with self._read(conn) as c:
            rows = c.execute(query).all()
        result = []
        for row in rows:
            data = dict(zip(_REGISTER_FIELDS, row, strict=True))
            data["session"] = SESSIONS[data["session"]]
            result.append(_stored_register(data))
        return result

    # -- amendments ----------------------------------------------------------------------------

    def insert_amendments(
        self,
        amendments: Iterable[Amendment],
        school_id: str,
        *,
        at: datetime | None = None,
        conn: sa.Connection | None = None,
    ) -> int:
        """Store amendment records; a reload updates instead of duplicating. Returns how many
        were new."""
        now = self._at(at)
        rows: dict[str, dict[str, Any]] = {}
        for amendment in amendments:
            key = amendment_key(amendment)
            row = amendment.model_dump(mode="python")
            row["session"] = str(amendment.session)
            row["source"] = str(amendment.source)
            rows[key] = row | {
                "school_id": school_id,
                "natural_key": key,
                "first_seen_at": now,
                "last_seen_at": now,
            }
        a = t.amendments
        with self._write(conn) as c:
            known: set[str] = set()
            for batch in chunks(sorted(rows), IN_LIST_LIMIT):
                known.update(
                    c.scalars(
                        sa.select(a.c.natural_key).where(
                            a.c.school_id == school_id, a.c.natural_key.in_(batch)
                        )
                    )
                )
            update = list(_AMENDMENT_FIELDS) + ["last_seen_at"]
            upsert(c, a, list(rows.values()), keys=["school_id", "natural_key"], update=update)
        return len(rows.keys() - known)

    def amendments(
        self,
        school_id: str,
        start: date | None = None,
        end: date | None = None,
        *,
        pupil_id: str | None = None,
        source: str | None = None,
        conn: sa.Connection | None = None,
    ) -> list[Amendment]:
        a = t.amendments
        query = sa.select(*(a.c[name] for name in _AMENDMENT_FIELDS)).where(
            a.c.school_id == school_id
        )
        if start is not None:
            query = query.where(a.c.date >= start)
        if end is not None:
            query = query.where(a.c.date <= end)
        if pupil_id is not None:
            query = query.where(a.c.pupil_id == pupil_id)
        if source is not None:
            query = query.where(a.c.source == str(source))
        query = query.order_by(a.c.date, a.c.session, a.c.pupil_id, a.c.id)
        with self._read(conn) as c:
            rows = c.execute(query).all()
        result = []
        for row in rows:
            data = dict(zip(_AMENDMENT_FIELDS, row, strict=True))
            data["session"] = SESSIONS[data["session"]]
            data["source"] = AmendmentSource(data["source"])
            result.append(_stored_amendment(data))
        return result

    def new_amendments(
        self,
        school_id: str,
        amendments: Sequence[Amendment],
        *,
        conn: sa.Connection | None = None,
    ) -> list[Amendment]:
        """Those of ``amendments`` the store does not hold yet (by natural key): what sync
        ledgers as the MIS's new amendment records. Call before ``insert_amendments``."""
        if not amendments:
            return []
        first = min(a.date for a in amendments)
        last = max(a.date for a in amendments)
        known = {amendment_key(a) for a in self.amendments(school_id, first, last, conn=conn)}
        return [a for a in amendments if amendment_key(a) not in known]
