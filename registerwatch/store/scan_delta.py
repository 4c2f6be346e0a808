"""The nightly scan's reads of what changed (``scan.incremental``): the marks and registers
changed since a point, through the (school_id, changed_at) indexes, and the registers and the
marked pupils of a few dates, through the (school_id, date) indexes. None of them reads the
school's year."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

import sqlalchemy as sa

from registerwatch.schema import Register, Session
from registerwatch.store import tables as t
from registerwatch.store.base import IN_LIST_LIMIT, SESSIONS, StoreBase, chunks
from registerwatch.store.summary import SummaryUpdate

_REGISTER_FIELDS = tuple(Register.model_fields)


class ScanDeltaStore(StoreBase):
    def changed_mark_keys(
        self,
        school_id: str,
        since: datetime,
        *,
        read: SummaryUpdate | None = None,
        conn: sa.Connection | None = None,
    ) -> list[tuple[str, date, Session, datetime]]:
        """(pupil, date, session, changed_at) of every mark whose content or deletion flag
        changed at or after ``since``. Taken from ``read`` (a ``summary_changes`` in the same
        snapshot) when it read from ``since`` or earlier: the same rows, not read twice."""
        if (
            read is not None
            and read.changed is not None
            and read.changed_from is not None
            and read.changed_from <= since
        ):
            # A token starts with the ISO date (10 characters), then the session (2).
            return [
                (pid, date.fromisoformat(token[:10]), SESSIONS[token[10:12]], changed)
                for pid, token, changed in read.changed
                if changed >= since
            ]
        m = t.marks
        query = sa.select(m.c.pupil_id, m.c.date, m.c.session, m.c.changed_at).where(
            m.c.school_id == school_id, m.c.changed_at >= since
        )
        with self._read(conn) as c:
            return [
                (pid, day, SESSIONS[session], changed)
                for pid, day, session, changed in c.execute(query)
            ]

    def changed_register_sessions(
        self, school_id: str, since: datetime, *, conn: sa.Connection | None = None
    ) -> set[tuple[date, Session]]:
        """(date, session) of the registers whose content changed at or after ``since`` (or
        whose ``changed_at`` is unknown)."""
        r = t.registers
        # Two selects, not one with OR: SQLite reads each through the (school_id, changed_at)
        # index, where the OR made it walk every register of the school (~9 ms a night).
        query = sa.union(
            sa.select(r.c.date, r.c.session).where(
                r.c.school_id == school_id, r.c.changed_at >= since
            ),
            sa.select(r.c.date, r.c.session).where(
                r.c.school_id == school_id, r.c.changed_at.is_(None)
            ),
        )
        with self._read(conn) as c:
            return {(day, SESSIONS[session]) for day, session in c.execute(query)}

    def latest_register_change(
        self, school_id: str, *, conn: sa.Connection | None = None
    ) -> datetime | None:
        """The latest ``changed_at`` of the school's registers (None before any register)."""
        r = t.registers
        with self._read(conn) as c:
            value: datetime | None = c.execute(
                sa.select(sa.func.max(r.c.changed_at)).where(r.c.school_id == school_id)
            ).scalar()
        return value

    def registers_on(
        self, school_id: str, dates: Iterable[date], *, conn: sa.Connection | None = None
    ) -> list[Register]:
        """The school's registers of ``dates``, by date, session and group."""
        r = t.registers
        out: list[Register] = []
        with self._read(conn) as c:
            for batch in chunks(sorted(set(dates)), IN_LIST_LIMIT):
                query = sa.select(*(r.c[name] for name in _REGISTER_FIELDS)).where(
                    r.c.school_id == school_id, r.c.date.in_(batch)
                )
                for row in c.execute(query):
                    data = dict(row._mapping)
                    data["session"] = SESSIONS[data["session"]]
                    out.append(Register.model_construct(**data))
        out.sort(key=lambda reg: (reg.date, reg.session, reg.group))
        return out
