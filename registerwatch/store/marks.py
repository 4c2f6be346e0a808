"""Marks: the register entries sync pulls, diffed against what the store holds.

A mark is never deleted: one that disappears from the MIS is flagged (``deleted_at``), because
registers are kept 6 years and the disappearance is itself what rule AMD003 checks.

Reading a school's marks is the hot path of every scan (a full year is ~570k marks), hence the
fast Mark builder below.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa

from registerwatch.gcpause import collector_paused
from registerwatch.schema import Mark, Session
from registerwatch.store import tables as t
from registerwatch.store.base import (
    SESSIONS,
    WRITE_BATCH_ROWS,
    StoreBase,
    chunks,
    upsert,
)
from registerwatch.store.records import (
    MARK_CONTENT_FIELDS,
    DeletedMark,
    MarkChange,
    MarkDiff,
    MarkKey,
)

# upsert_marks diffs this many incoming marks at a time (one read of the stored rows per chunk):
# bounds memory on a full-year pull while keeping the number of queries small.
MARK_CHUNK_ROWS = 20_000
# Below this many distinct pupils in a chunk, the read of stored rows is narrowed to those pupils
# (a changelog pull touches few pupils across many dates).
PUPIL_FILTER_LIMIT = 500
# Rows per fetch when Store.marks reads a school's marks.
MARK_READ_BATCH = 20_000

_MARK_READ_COLUMNS = (
    t.marks.c.pupil_id,
    t.marks.c.date,
    t.marks.c.session,
    t.marks.c.code,
    t.marks.c.vendor_code,
    t.marks.c.minutes_late,
    t.marks.c.comment,
    t.marks.c.recorded_at,
    t.marks.c.recorded_by,
    t.marks.c.source_ref,
)


def _construct_mark(row: Sequence[Any]) -> Mark:
    return Mark.model_construct(
        pupil_id=row[0],
        date=row[1],
        session=SESSIONS[row[2]],
        code=row[3],
        vendor_code=row[4],
        minutes_late=row[5],
        comment=row[6],
        recorded_at=row[7],
        recorded_by=row[8],
        source_ref=row[9],
    )


_MARK_NAMES = (
    "pupil_id",
    "date",
    "session",
    "code",
    "vendor_code",
    "minutes_late",
    "comment",
    "recorded_at",
    "recorded_by",
    "source_ref",
)
_new_object = object.__new__
_set_attribute = object.__setattr__


def _build_mark(row: Sequence[Any]) -> Mark:
    # What Mark.model_construct does, without its per-field alias and default handling: a full
    # year is ~570k marks, and model_construct alone was most of the cost of reading them.
    mark = _new_object(Mark)
    _set_attribute(
        mark,
        "__dict__",
        {
            "pupil_id": row[0],
            "date": row[1],
            "session": SESSIONS[row[2]],
            "code": row[3],
            "vendor_code": row[4],
            "minutes_late": row[5],
            "comment": row[6],
            "recorded_at": row[7],
            "recorded_by": row[8],
            "source_ref": row[9],
        },
    )
    _set_attribute(mark, "__pydantic_fields_set__", set(_MARK_NAMES))
    _set_attribute(mark, "__pydantic_extra__", None)
    _set_attribute(mark, "__pydantic_private__", None)
    return mark


def _fast_path_holds() -> bool:
    """Use _build_mark only while it builds exactly what model_construct builds."""
    if tuple(Mark.model_fields) != _MARK_NAMES or Mark.__pydantic_post_init__:
        return False
    sample = (
        "s:1",
        date(2025, 1, 6),
        "AM",
        "L",
        "L",
        5,
        "bus",
        datetime(2025, 1, 6, tzinfo=UTC),
        "JH",
        "r1",
    )
    fast, slow = _build_mark(sample), _construct_mark(sample)
    return (
        fast == slow
        and fast.model_fields_set == slow.model_fields_set
        and fast.model_dump() == slow.model_dump()
        and vars(fast) == vars(slow)
    )


# Rows were validated as Marks on the way in, so they are not validated again on the way out.
_FAST_MARKS = _fast_path_holds()
_mark_from_row = _build_mark if _FAST_MARKS else _construct_mark


def _marks_from_rows(rows: Iterable[Sequence[Any]]) -> list[Mark]:
    """_build_mark over a batch of rows, inlined: the loop, not the model, was the remaining
    per-mark cost once the collector is paused (Store.marks)."""
    if not _FAST_MARKS:
        return [_construct_mark(row) for row in rows]
    marks: list[Mark] = []
    append = marks.append
    sessions, names = SESSIONS, _MARK_NAMES
    for (
        pupil_id,
        day,
        session,
        code,
        vendor_code,
        minutes_late,
        comment,
        recorded_at,
        recorded_by,
        source_ref,
    ) in rows:
        mark = _new_object(Mark)
        _set_attribute(
            mark,
            "__dict__",
            {
                "pupil_id": pupil_id,
                "date": day,
                "session": sessions[session],
                "code": code,
                "vendor_code": vendor_code,
                "minutes_late": minutes_late,
                "comment": comment,
                "recorded_at": recorded_at,
                "recorded_by": recorded_by,
                "source_ref": source_ref,
            },
        )
        _set_attribute(mark, "__pydantic_fields_set__", set(names))
        _set_attribute(mark, "__pydantic_extra__", None)
        _set_attribute(mark, "__pydantic_private__", None)
        append(mark)
    return marks


def _mark_content(mark: Mark) -> tuple[Any, ...]:
    return tuple(getattr(mark, name) for name in MARK_CONTENT_FIELDS)


def _changed_fields(old: Mark, new: Mark) -> tuple[str, ...]:
    return tuple(
        name
        for name, a, b in zip(
            MARK_CONTENT_FIELDS, _mark_content(old), _mark_content(new), strict=True
        )
        if a != b
    )


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
        incoming: dict[MarkKey, Mark] = {}
        duplicates = 0
        for mark in marks:
            key = MarkKey(mark.pupil_id, mark.date, SESSIONS[str(mark.session)])
            if key in incoming:
                duplicates += 1
            incoming[key] = mark  # the later record for a key wins
        diff = MarkDiff(duplicates=duplicates)
        by_date: dict[date, list[MarkKey]] = defaultdict(list)
        for key in incoming:
            by_date[key.date].append(key)
        with self._write(conn) as c:
            for keys in self._date_chunks(by_date):
                scope = self._chunk_scope(school_id, keys)
                existing, covered = self._stored_marks(c, scope, keys, live_only=False)
                writes: list[dict[str, Any]] = []
                touches: list[MarkKey] = []
                for key in keys:
                    mark = incoming[key]
                    stored = existing.get(key)
                    if stored is None:
                        diff.new.append(mark)
                        writes.append(self._mark_row(school_id, mark, now))
                        continue
                    content = _mark_content(mark)
                    deleted_at = stored[10]
                    if content != tuple(stored[3:10]) or deleted_at is not None:
                        old = _mark_from_row(stored)
                        diff.changed.append(
                            MarkChange(
                                key,
                                old,
                                mark,
                                _changed_fields(old, mark),
                                restored=deleted_at is not None,
                            )
                        )
                        writes.append(self._mark_row(school_id, mark, now))
                    else:
                        diff.unchanged.append(key)
                        touches.append(key)
                upsert(
                    c,
                    t.marks,
                    writes,
                    keys=["school_id", "pupil_id", "date", "session"],
                    update=[*MARK_CONTENT_FIELDS, "last_seen_at", "changed_at", "deleted_at"],
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
    def _date_chunks(by_date: Mapping[date, list[MarkKey]]) -> Iterator[list[MarkKey]]:
        chunk: list[MarkKey] = []
        for day in sorted(by_date):
            chunk.extend(by_date[day])
            if len(chunk) >= MARK_CHUNK_ROWS:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    @staticmethod
    def _chunk_scope(school_id: str, keys: Sequence[MarkKey]) -> list[sa.ColumnElement[bool]]:
        """WHERE clauses covering ``keys``: their school and date range, and their pupils when
        there are few of them (a changelog pull touches few pupils across many dates)."""
        m = t.marks
        scope = [
            m.c.school_id == school_id,
            m.c.date >= min(k.date for k in keys),
            m.c.date <= max(k.date for k in keys),
        ]
        pupils = {k.pupil_id for k in keys}
        if len(pupils) <= PUPIL_FILTER_LIMIT:
            scope.append(m.c.pupil_id.in_(sorted(pupils)))
        return scope

    @staticmethod
    def _stored_marks(
        conn: sa.Connection,
        scope: Sequence[sa.ColumnElement[bool]],
        keys: Sequence[MarkKey],
        *,
        live_only: bool,
    ) -> tuple[dict[MarkKey, Sequence[Any]], bool]:
        """Stored rows (mark columns, then deleted_at) for ``keys``, in one read of ``scope``;
        and whether every live row in the scope is one of ``keys``."""
        m = t.marks
        wanted = set(keys)
        query = sa.select(*_MARK_READ_COLUMNS, m.c.deleted_at).where(*scope)
        if live_only:
            query = query.where(m.c.deleted_at.is_(None))
        found: dict[MarkKey, Sequence[Any]] = {}
        covered = True
        for row in conn.execute(query).all():
            key = MarkKey(row[0], row[1], SESSIONS[row[2]])
            if key in wanted:
                found[key] = row
            elif row[10] is None:
                covered = False
        return found, covered

    @staticmethod
    def _mark_row(school_id: str, mark: Mark, now: datetime) -> dict[str, Any]:
        return {
            "school_id": school_id,
            "pupil_id": mark.pupil_id,
            "date": mark.date,
            "session": str(mark.session),
            "code": mark.code,
            "vendor_code": mark.vendor_code,
            "minutes_late": mark.minutes_late,
            "comment": mark.comment,
            "recorded_at": mark.recorded_at,
            "recorded_by": mark.recorded_by,
            "source_ref": mark.source_ref,
            "first_seen_at": now,
            "last_seen_at": now,
            "changed_at": now,
            "deleted_at": None,
        }

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
                flagged.extend(_mark_from_row(stored[k]) for k in found)
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
        query = sa.select(*_MARK_READ_COLUMNS).where(m.c.school_id == school_id)
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
                yield from _marks_from_rows(partition)

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
                marks.extend(_marks_from_rows(partition))
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
            return [DeletedMark(_mark_from_row(row), row[10]) for row in c.execute(query)]
