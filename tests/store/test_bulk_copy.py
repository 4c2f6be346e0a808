"""PostgreSQL's COPY paths in store.bulk: binary when every column's type allows it (text
otherwise), and straight into the table when the caller read that no key is stored, a key stored
after all then failing the write with a StoreError and leaving the stored row as it was."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from support.pg import pg_schema_url

from registerwatch.errors import StoreError
from registerwatch.schema import Mark, Session
from registerwatch.store import Store, bulk
from registerwatch.store import tables as t
from registerwatch.store.mark_rows import MARK_WRITE_COLUMNS, mark_writer
from registerwatch.store.marks import MarksStore

pytestmark = pytest.mark.postgres

AT = datetime(2025, 1, 6, 18, 0, tzinfo=UTC)
LATER = datetime(2025, 1, 7, 18, 0, tzinfo=UTC)


@pytest.fixture
def pg_store() -> Iterator[Store]:
    with pg_schema_url("bulk", time_zone="Pacific/Auckland") as url:
        store = Store.open(url, clock=lambda: AT)
        try:
            yield store
        finally:
            store.close()


def _mark(pupil: str, day: int, code: str = "/") -> Mark:
    return Mark(
        pupil_id=pupil,
        date=date(2025, 1, day),
        session=Session.AM,
        code=code,
        vendor_code=code,
        minutes_late=None,
        comment=None,
        recorded_at=datetime(2025, 1, day, 8, 40, tzinfo=UTC),
        recorded_by="JH",
        source_ref=f"{pupil}-{day}",
    )


def _stored(store: Store) -> list[tuple[Any, ...]]:
    with store.transaction() as tx:
        m = t.marks
        query = sa.select(m.c.pupil_id, m.c.date, m.c.code, m.c.last_seen_at).order_by(
            m.c.pupil_id, m.c.date
        )
        return [tuple(row) for row in tx.execute(query)]


def test_marks_columns_are_copied_in_binary(pg_store: Store) -> None:
    with pg_store.transaction() as tx:
        driver: Any = tx.connection.dbapi_connection
        with driver.cursor() as cursor:
            types = bulk._column_types(cursor, "marks", MARK_WRITE_COLUMNS)
        rows = [mark_writer(tx.dialect, "s1", AT)(_mark(p, 6)) for p in ("p1", "p2")]
    assert types is not None
    names = [name for name, _oid in types]
    assert [psycopg.adapters.types[oid].name for _name, oid in types] == names
    assert names == [
        "varchar",  # school_id
        "varchar",  # pupil_id
        "date",
        "varchar",  # session
        "varchar",  # code
        "varchar",  # vendor_code
        "int4",  # minutes_late
        "text",  # comment
        "timestamptz",  # recorded_at
        "varchar",  # recorded_by
        "varchar",  # source_ref
        "timestamptz",
        "timestamptz",
        "timestamptz",
        "timestamptz",
    ]
    assert bulk._binary_fits(rows, names)


@pytest.mark.parametrize(
    ("type_name", "values", "fits"),
    [
        ("int4", [5, None, -(2**31), 2**31 - 1], True),
        ("int4", [5, 2**31], False),  # psycopg's binary dumper would wrap it around
        ("int2", [2**15], False),
        ("int8", [2**40], True),
        ("int4", [1, True], False),
        ("varchar", ["a", None], True),
        ("text", ["a", 7], False),
        ("date", [date(2025, 1, 6), None], True),
        ("date", [datetime(2025, 1, 6, tzinfo=UTC)], False),
        ("timestamptz", [AT, None, AT.replace(tzinfo=None)], False),
        ("timestamptz", [AT, LATER, None], True),
        ("timestamp", [AT.replace(tzinfo=None)], True),
        ("timestamp", [AT], False),
    ],
)
def test_binary_copy_takes_only_values_its_dumpers_write_as_they_are(
    type_name: str, values: list[Any], fits: bool
) -> None:
    rows = [("x", value) for value in values]
    assert bulk._binary_fits(rows, ["text", type_name]) is fits


def test_a_minutes_late_out_of_int4_range_is_refused_by_the_server_not_wrapped(
    pg_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulk, "PG_COPY_MIN_ROWS", 1)
    huge = _mark("p1", 6).model_copy(update={"minutes_late": 2**32 + 5})
    with pytest.raises(psycopg.errors.NumericValueOutOfRange):
        with pg_store.transaction() as tx:
            pg_store.upsert_marks([huge, _mark("p2", 6)], "s1", at=AT, conn=tx)
    assert _stored(pg_store) == []


def test_a_json_column_is_copied_as_text_and_stored_as_json(
    pg_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulk, "PG_COPY_MIN_ROWS", 1)
    notes = sa.Table(
        "bulk_notes",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("payload", sa.JSON, nullable=False),
    )
    with pg_store.transaction() as tx:
        notes.create(tx)
        driver: Any = tx.connection.dbapi_connection
        with driver.cursor() as cursor:
            assert bulk._column_types(cursor, "bulk_notes", ("id", "payload")) is None
        rows = [(1, '{"a":[1,2]}'), (2, '"text"')]
        bulk.insert_rows(
            tx, notes, ("id", "payload"), rows, conflict_keys=("id",), distinct_keys=True
        )
        stored = tx.execute(sa.select(notes.c.payload).order_by(notes.c.id)).scalars().all()
    assert stored == [{"a": [1, 2]}, "text"]


def test_binary_copy_still_refuses_a_value_too_long_for_its_column(
    pg_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulk, "PG_COPY_MIN_ROWS", 1)
    row = mark_writer(pg_store.engine.dialect, "s1", AT)(_mark("p1", 6))
    too_long = (*row[:4], "XYZ", *row[5:])  # code is VARCHAR(2)
    with pytest.raises(psycopg.errors.StringDataRightTruncation):
        with pg_store.transaction() as tx:
            bulk.insert_rows(tx, t.marks, MARK_WRITE_COLUMNS, [too_long], all_new=True)
    assert _stored(pg_store) == []


def test_all_new_marks_are_copied_straight_in_as_the_upsert_stores_them(
    pg_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulk, "PG_COPY_MIN_ROWS", 1)
    straight: list[int] = []
    copy_new_rows = bulk._copy_new_rows

    def counted(conn: sa.Connection, table: sa.Table, columns: Any, rows: Any) -> None:
        straight.append(len(rows))
        copy_new_rows(conn, table, columns, rows)

    monkeypatch.setattr(bulk, "_copy_new_rows", counted)
    fits: list[bool] = []
    binary_fits = bulk._binary_fits

    def noted(rows: Any, names: Any) -> bool:
        fits.append(binary_fits(rows, names))
        return fits[-1]

    monkeypatch.setattr(bulk, "_binary_fits", noted)
    marks = [_mark("p1", 6), _mark("p2", 6), _mark("p1", 7)]
    with pg_store.transaction() as tx:
        diff = pg_store.upsert_marks(marks, "s1", at=AT, conn=tx)
    assert straight == [3]
    assert fits == [True]  # in binary
    assert len(diff.new) == 3
    assert pg_store.marks("s1") == sorted(marks, key=lambda m: (m.pupil_id, m.date))
    # A second pull finds them stored: it upserts through the staging table instead.
    with pg_store.transaction() as tx:
        again = pg_store.upsert_marks([*marks, _mark("p2", 7)], "s1", at=LATER, conn=tx)
    assert straight == [3]
    assert len(again.new) == 1 and len(again.unchanged) == 3


def test_a_key_stored_after_it_was_read_as_new_fails_the_write_and_keeps_the_stored_row(
    pg_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulk, "PG_COPY_MIN_ROWS", 1)
    with pg_store.transaction() as tx:
        pg_store.upsert_marks([_mark("p1", 6, "/")], "s1", at=AT, conn=tx)
    before = _stored(pg_store)
    # As if another writer stored p1's mark between this write's read and its COPY.
    monkeypatch.setattr(MarksStore, "_stored_marks", staticmethod(lambda *a, **k: ({}, True)))
    with pytest.raises(StoreError, match="stored by another writer meanwhile"):
        with pg_store.transaction() as tx:
            pg_store.upsert_marks([_mark("p2", 6), _mark("p1", 6, "N")], "s1", at=LATER, conn=tx)
    assert _stored(pg_store) == before
