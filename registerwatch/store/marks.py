"""Marks: the register entries sync pulls, diffed against what the store holds.

A mark is never deleted: one that disappears from the MIS is flagged (``deleted_at``), because
registers are kept 6 years and the disappearance is itself what rule AMD003 checks.

Reading a school's marks is the hot path of every scan (a full year is ~570k marks); turning
rows into Marks (the fast Mark builder) lives in :mod:`registerwatch.store.mark_rows`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime
from typing import Any, cast

import sqlalchemy as sa

from registerwatch.gcpause import collector_paused
from registerwatch.schema import Mark, Session
from registerwatch.store import mark_rows
from registerwatch.store import tables as t
from registerwatch.store.base import SESSIONS, WRITE_BATCH_ROWS, StoreBase, chunks
from registerwatch.store.bulk import insert_rows
from registerwatch.store.mark_rows import (
    MARK_KEY_COLUMNS,
    MARK_READ_COLUMNS,
    MARK_UPDATE_COLUMNS,
    MARK_WRITE_COLUMNS,
    changed_fields,
    mark_content,
    mark_from_row,
    mark_writer,
)
from registerwatch.store.records import DeletedMark, MarkChange, MarkDiff, MarkKey

# A mark's key as upsert_marks builds it: (pupil_id, date, session), a MarkKey's fields.
_Key = tuple[str, date, Session]

# upsert_marks diffs this many incoming marks at a time (one read of the stored rows per chunk):
# bounds memory on a full-year pull while keeping the number of queries small.
MARK_CHUNK_ROWS = 20_000
# Below this many distinct pupils in a chunk, the read of stored rows is narrowed to those pupils
# (a changelog pull touches few pupils across many dates).
PUPIL_FILTER_LIMIT = 500
# Rows per fetch when Store.marks reads a school's marks.
MARK_READ_BATCH = 20_000


class MarksStore(StoreBase):
    def upsert_marks(
        self,
        marks: Iterable[Mark],
        school_id: str,
        *,
        at: datetime | None = None,
        touch_unchanged: bool = True,
        conn: sa.Connection | None = None,
    ) -> MarkDiff:
        """Store pulled marks, keyed by (school, pupil, date, session); report what changed.

        Reads the stored rows once per chunk of dates, compares in Python and writes only new
        and changed marks (plus ``last_seen_at`` on unchanged ones, unless ``touch_unchanged`` is
        off). A mark that had been flagged deleted and is pulled again is un-flagged and reported
        as a change with ``restored=True``. Rerunning with the same marks writes no new rows.
        """
        now = self._at(at)
        # Plain tuples as keys (equal to, and hashing as, the MarkKeys they stand for): a
        # first sync builds one per mark, and only the keys handed back become MarkKeys.
        incoming: dict[_Key, Mark] = {}
        pulled = 0
        for mark in marks:
            # The later record for a key wins.
            incoming[(mark.pupil_id, mark.date, SESSIONS[mark.session])] = mark
            pulled += 1
        diff = MarkDiff(duplicates=pulled - len(incoming))
        by_date: dict[date, list[_Key]] = defaultdict(list)
        for key in incoming:
            by_date[key[1]].append(key)
        with self._write(conn) as c:
            to_row = mark_writer(c.dialect, school_id, now)
            for keys in self._date_chunks(by_date):
                scope = self._chunk_scope(school_id, keys)
                found, covered = self._stored_marks(c, scope, keys, live_only=False)
                # Looked up by plain-tuple keys, which equal the MarkKeys it holds.
                existing = cast("dict[_Key, Sequence[Any]]", found)
                writes: list[tuple[Any, ...]] = []
                touches: list[MarkKey] = []
                if not existing:  # nothing stored in the chunk's scope (a first sync): all new
                    new = [incoming[key] for key in keys]
                    diff.new.extend(new)
                    writes = list(map(to_row, new))
                else:
                    for key in keys:
                        mark = incoming[key]
                        stored = existing.get(key)
                        if stored is None:
                            diff.new.append(mark)
                            writes.append(to_row(mark))
                            continue
                        content = mark_content(mark)
                        deleted_at = stored[10]
                        if content != tuple(stored[3:10]) or deleted_at is not None:
                            old = mark_from_row(stored)
                            diff.changed.append(
                                MarkChange(
                                    MarkKey._make(key),
                                    old,
                                    mark,
                                    changed_fields(old, mark),
                                    restored=deleted_at is not None,
                                )
                            )
                            writes.append(to_row(mark))
                        else:
                            unchanged = MarkKey._make(key)
                            diff.unchanged.append(unchanged)
                            touches.append(unchanged)
                insert_rows(
                    c,
                    t.marks,
                    MARK_WRITE_COLUMNS,
                    writes,
                    conflict_keys=MARK_KEY_COLUMNS,
                    update=MARK_UPDATE_COLUMNS,
                    distinct_keys=True,  # keys of the incoming dict
                    # None of the chunk's keys is stored (read above, in this transaction).
                    all_new=not existing,
                )
                if touch_unchanged and touches:
                    if covered:
                        # Every live mark in the chunk's scope was pulled again: one UPDATE.
                        c.execute(
                            sa.update(t.marks)
                            .where(*scope, t.marks.c.deleted_at.is_(None))
                            .values(last_seen_at=now)
                        )
                    else:
                        self._touch_marks(c, school_id, touches, now)
        return diff

    @staticmethod
    def _date_chunks(by_date: Mapping[date, Sequence[_Key]]) -> Iterator[list[_Key]]:
        """The keys in chunks of about MARK_CHUNK_ROWS, whole dates each, in date order."""
        chunk: list[_Key] = []
        for day in sorted(by_date):
            chunk.extend(by_date[day])
            if len(chunk) >= MARK_CHUNK_ROWS:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    @staticmethod
    def _chunk_scope(school_id: str, keys: Sequence[_Key]) -> list[sa.ColumnElement[bool]]:
        """WHERE clauses covering ``keys`` (in date order, as _date_chunks yields them): their
        school and date range, and their pupils when there are few of them (a changelog pull
        touches few pupils across many dates)."""
        m = t.marks
        scope = [
            m.c.school_id == school_id,
            m.c.date >= keys[0][1],
            m.c.date <= keys[-1][1],
        ]
        pupils = {k[0] for k in keys}
        if len(pupils) <= PUPIL_FILTER_LIMIT:
            scope.append(m.c.pupil_id.in_(sorted(pupils)))
        return scope

    @staticmethod
    def _stored_marks(
        conn: sa.Connection,
        scope: Sequence[sa.ColumnElement[bool]],
        keys: Sequence[_Key],
        *,
        live_only: bool,
    ) -> tuple[dict[MarkKey, Sequence[Any]], bool]:
        """Stored rows (mark columns, then deleted_at) for ``keys``, in one read of ``scope``;
        and whether every live row in the scope is one of ``keys``."""
        m = t.marks
        query = sa.select(*MARK_READ_COLUMNS, m.c.deleted_at).where(*scope)
        if live_only:
            query = query.where(m.c.deleted_at.is_(None))
        found: dict[MarkKey, Sequence[Any]] = {}
        covered = True
        rows = conn.execute(query).all()
        if not rows:  # a first sync: nothing to compare against
            return found, covered
        wanted = set(keys)
        for row in rows:
            key = MarkKey(row[0], row[1], SESSIONS[row[2]])
            if key in wanted:
                found[key] = row
            elif row[10] is None:
                covered = False
        return found, covered

    @staticmethod
    def _key_update(values: Mapping[str, Any], *, live_only: bool = False) -> sa.Update:
        m = t.marks
        stmt = (
            sa.update(m)
            .where(
                m.c.school_id == sa.bindparam("k_school"),
                m.c.pupil_id == sa.bindparam("k_pupil"),
                m.c.date == sa.bindparam("k_date"),
                m.c.session == sa.bindparam("k_session"),
            )
            .values(**values)
        )
        return stmt.where(m.c.deleted_at.is_(None)) if live_only else stmt

    @staticmethod
    def _key_params(school_id: str, keys: Iterable[MarkKey]) -> list[dict[str, Any]]:
        return [
            {
                "k_school": school_id,
                "k_pupil": k.pupil_id,
                "k_date": k.date,
                "k_session": str(k.session),
            }
            for k in keys
        ]

    def _touch_marks(
        self, conn: sa.Connection, school_id: str, keys: Sequence[MarkKey], now: datetime
    ) -> None:
        if not keys:
            return
        stmt = self._key_update({"last_seen_at": now})
        for batch in chunks(self._key_params(school_id, keys), WRITE_BATCH_ROWS):
            conn.execute(stmt, batch)

    def mark_deleted(
        self,
        school_id: str,
        keys: Iterable[MarkKey | tuple[str, date, Session | str]],
        at: datetime | None = None,
        *,
        conn: sa.Connection | None = None,
    ) -> list[Mark]:
        """Flag marks that disappeared from the MIS (they are never deleted: registers are kept
        6 years). Returns the marks newly flagged, as they last stood, for the ledger; keys that
        are unknown or already flagged are ignored, so a rerun flags nothing twice."""
        now = self._at(at)
        by_date: dict[date, list[MarkKey]] = defaultdict(list)
        for key in {MarkKey(k[0], k[1], SESSIONS[str(k[2])]) for k in keys}:
            by_date[key.date].append(key)
        flagged: list[Mark] = []
        with self._write(conn) as c:
            stmt = self._key_update({"deleted_at": now, "changed_at": now}, live_only=True)
            for chunk in self._date_chunks(by_date):
                scope = self._chunk_scope(school_id, chunk)
                stored, _ = self._stored_marks(c, scope, chunk, live_only=True)
                if not stored:
                    continue
                found = sorted(stored, key=lambda k: (k.date, k.session, k.pupil_id))
                for batch in chunks(self._key_params(school_id, found), WRITE_BATCH_ROWS):
                    c.execute(stmt, batch)
                flagged.extend(mark_from_row(stored[k]) for k in found)
        return flagged

    def mark_keys(
        self, school_id: str, start: date, end: date, *, conn: sa.Connection | None = None
    ) -> set[MarkKey]:
        """Keys of the live (not deleted) marks between ``start`` and ``end`` inclusive: what a
        re-pull of that window should find again; the ones it does not are deletions."""
        m = t.marks
        query = sa.select(m.c.pupil_id, m.c.date, m.c.session).where(
            m.c.school_id == school_id,
            m.c.date >= start,
            m.c.date <= end,
            m.c.deleted_at.is_(None),
        )
        with self._read(conn) as c:
            return {MarkKey(p, d, SESSIONS[s]) for p, d, s in c.execute(query)}

    def _marks_query(
        self,
        school_id: str,
        start: date | None,
        end: date | None,
        pupil_id: str | None,
        changed_since: datetime | None,
    ) -> sa.Select[Any]:
        m = t.marks
        query = sa.select(*MARK_READ_COLUMNS).where(m.c.school_id == school_id)
        if start is not None:
            query = query.where(m.c.date >= start)
        if end is not None:
            query = query.where(m.c.date <= end)
        if pupil_id is not None:
            query = query.where(m.c.pupil_id == pupil_id)
        if changed_since is not None:
            query = query.where(m.c.changed_at >= self._at(changed_since))
        return query

    def iter_marks(
        self,
        school_id: str,
        start: date | None = None,
        end: date | None = None,
        *,
        pupil_id: str | None = None,
        changed_since: datetime | None = None,
        batch_size: int = 10_000,
        conn: sa.Connection | None = None,
    ) -> Iterator[Mark]:
        """Live marks ordered by pupil, date and session, streamed in batches."""
        m = t.marks
        query = (
            self._marks_query(school_id, start, end, pupil_id, changed_since)
            .where(m.c.deleted_at.is_(None))
            .order_by(m.c.pupil_id, m.c.date, m.c.session)
        )
        with self._read(conn) as c:
            result = c.execution_options(yield_per=batch_size).execute(query)
            for partition in result.partitions():
                yield from mark_rows.marks_from_rows(partition)

    def marks(
        self,
        school_id: str,
        start: date | None = None,
        end: date | None = None,
        *,
        pupil_id: str | None = None,
        changed_since: datetime | None = None,
        conn: sa.Connection | None = None,
    ) -> list[Mark]:
        """Live marks of a school ordered by pupil, date and session; ``start``/``end`` are
        inclusive; ``changed_since`` keeps those whose content changed at or after that instant.

        Read in batches of MARK_READ_BATCH rows (a server-side cursor on PostgreSQL), each turned
        into Marks before the next is fetched, so a whole year's rows and its Marks are never
        all held at once; the cyclic collector is paused meanwhile (see registerwatch.gcpause)."""
        m = t.marks
        query = (
            self._marks_query(school_id, start, end, pupil_id, changed_since)
            .where(m.c.deleted_at.is_(None))
            .order_by(m.c.pupil_id, m.c.date, m.c.session)
        )
        marks: list[Mark] = []
        with self._read(conn) as c, collector_paused():
            result = c.execution_options(yield_per=MARK_READ_BATCH).execute(query)
            for partition in result.partitions():
                marks.extend(mark_rows.marks_from_rows(partition))
        return marks

    def deleted_marks(
        self,
        school_id: str,
        start: date | None = None,
        end: date | None = None,
        *,
        conn: sa.Connection | None = None,
    ) -> list[DeletedMark]:
        """Marks that disappeared from the MIS (rule AMD003), with when sync noticed."""
        m = t.marks
        query = (
            self._marks_query(school_id, start, end, None, None)
            .add_columns(m.c.deleted_at)
            .where(m.c.deleted_at.is_not(None))
            .order_by(m.c.pupil_id, m.c.date, m.c.session)
        )
        with self._read(conn) as c:
            return [DeletedMark(mark_from_row(row), row[10]) for row in c.execute(query)]
