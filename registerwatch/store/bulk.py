"""Bulk inserts for sync's hot paths (marks, ledger entries): rows as tuples, straight to the
driver's ``executemany``, in batches of ``ROWS_PER_CALL``.

Both backends get one single-row statement, executed many times. SQLite's module steps the
prepared statement once per row in C. psycopg 3 pipelines an ``executemany`` (one network flush
per batch, the statement parsed once): measured on PostgreSQL 15 here (20,000 marks and their
ledger entries), it took half the client CPU and 60% of the wall time of multi-row
``INSERT ... VALUES (...), (...)`` statements of 100 or 1,000 rows, whose long texts psycopg
must convert and the server parse and plan anew each time (docs/performance.md, sync section).

Every batch runs on the caller's connection, inside its transaction: one school's sync stays one
transaction, so a run killed mid-write leaves the store as it was (the crash-safety contract).
Callers convert the values that need it with :func:`bind_converter` (the column type's own
bind processor, so the stored text is what SQLAlchemy itself would write).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from registerwatch.errors import StoreError

if TYPE_CHECKING:
    import psycopg

# Rows per executemany call: bounds the parameter list held at once.
ROWS_PER_CALL = 10_000
# From this many rows with distinct keys, PostgreSQL gets them by COPY into a temporary table
# and one INSERT ... SELECT: the server then inserts set-wise instead of running the statement
# once per row (docs/performance.md, "Sync: concurrent pages, COPY").
PG_COPY_MIN_ROWS = 2_000


def bind_converter(table: sa.Table, column: str, dialect: Dialect) -> Callable[[Any], Any]:
    """The column type's bind processor for ``dialect`` (identity when it has none)."""
    process = table.c[column].type.dialect_impl(dialect).bind_processor(dialect)
    return process if process is not None else _identity


def _identity(value: Any) -> Any:
    return value


def insert_rows(
    conn: sa.Connection,
    table: sa.Table,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    *,
    conflict_keys: Sequence[str] = (),
    update: Sequence[str] = (),
    pg_casts: Mapping[str, str] | None = None,
    distinct_keys: bool = False,
    all_new: bool = False,
) -> None:
    """INSERT ``rows`` (tuples in ``columns`` order) into ``table`` on ``conn``.

    With ``conflict_keys``, a row whose keys exist updates the ``update`` columns from the
    incoming row (ON CONFLICT ... DO UPDATE), or is skipped when ``update`` is empty.
    ``pg_casts`` names columns bound as text and CAST on PostgreSQL (``{"payload": "JSON"}``).
    ``distinct_keys``: the caller guarantees no two rows share their ``conflict_keys``, so on
    PostgreSQL a large batch may be inserted set-wise (COPY, then one INSERT ... SELECT, which
    could not update one row twice); the order rows are inserted in is then not kept.
    ``all_new``: the caller read, in this transaction, that none of the rows' keys is stored
    (and they are distinct), so on PostgreSQL a large batch is COPYed straight into ``table``;
    a key stored after all fails the write with a StoreError instead of updating the row.
    """
    if not rows:
        return
    dialect = conn.dialect
    if dialect.name not in ("sqlite", "postgresql"):  # pragma: no cover - the store refuses
        raise StoreError(f"backend {dialect.name!r} is not supported")
    if dialect.name == "postgresql" and len(rows) >= PG_COPY_MIN_ROWS:
        if all_new:
            _copy_new_rows(conn, table, columns, rows)
            return
        if distinct_keys:
            _copy_rows(conn, table, columns, rows, conflict_keys, update)
            return
    casts = dict(pg_casts or {}) if dialect.name == "postgresql" else {}
    sql = _insert_sql(dialect, table, columns, conflict_keys, update, casts)
    for start in range(0, len(rows), ROWS_PER_CALL):
        conn.exec_driver_sql(sql, list(rows[start : start + ROWS_PER_CALL]))


def _copy_rows(
    conn: sa.Connection,
    table: sa.Table,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    conflict_keys: Sequence[str],
    update: Sequence[str],
) -> None:
    """COPY ``rows`` into a temporary copy of ``table``'s columns, then move them across with
    one INSERT ... SELECT (with the same ON CONFLICT clause). Runs on ``conn``'s own driver
    connection, inside its transaction; the temporary table is dropped before returning (and
    with the transaction if anything fails)."""
    quote = conn.dialect.identifier_preparer.quote
    stage = quote(f"registerwatch_stage_{table.name}")
    names = ", ".join(quote(name) for name in columns)
    sql = f"INSERT INTO {quote(table.name)} ({names}) SELECT {names} FROM {stage}"
    sql += _conflict_clause(quote, conflict_keys, update)
    driver = cast("psycopg.Connection[Any]", conn.connection.dbapi_connection)
    with driver.cursor() as cursor:
        # LIKE takes the column types and NOT NULLs, not the keys or indexes: a plain heap
        # to copy into.
        cursor.execute(f"CREATE TEMP TABLE {stage} (LIKE {quote(table.name)})")
        _copy(cursor, quote, quote(table.name), stage, columns, rows)
        cursor.execute(sql)
        cursor.execute(f"DROP TABLE {stage}")


def _copy_new_rows(
    conn: sa.Connection, table: sa.Table, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """COPY ``rows`` straight into ``table``: the caller read, in this transaction, that none
    of their keys is stored. A key stored meanwhile fails the COPY (nothing of it is kept) and
    is reported as a StoreError; the caller's transaction is then rolled back."""
    import psycopg

    quote = conn.dialect.identifier_preparer.quote
    target = quote(table.name)
    driver = cast("psycopg.Connection[Any]", conn.connection.dbapi_connection)
    with driver.cursor() as cursor:
        try:
            _copy(cursor, quote, target, target, columns, rows)
        except psycopg.errors.UniqueViolation as exc:
            raise StoreError(
                f"{table.name}: rows read as new in this transaction were stored by another "
                f"writer meanwhile; nothing was written, run again ({exc.diag.message_primary})"
            ) from None


# Column types whose binary dumpers write the Python value as it is (str, int, float, bool,
# date, datetime): anything else (json, whose dumper would serialise a str once more; a type
# psycopg does not know) keeps the text COPY.
_BINARY_COPY_TYPES = frozenset(
    ("text", "varchar", "bpchar", "int2", "int4", "int8", "float8", "bool", "date")
    + ("timestamp", "timestamptz")
)


def _copy(
    cursor: psycopg.Cursor[Any],
    quote: Callable[[str], str],
    table: str,
    into: str,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
) -> None:
    """COPY ``rows`` into ``into`` (quoted), whose ``columns`` have the types of ``table``'s.

    In binary when every column's type allows (the database's own types, read from its
    catalogue), each column's dumper fixed up front: a text COPY looks up a dumper per value
    and spells each instant as text, which was most of the client's cost of copying a first
    sync's marks (docs/performance.md, "First sync's write"). Binary input is checked by the
    server as text is (lengths, NOT NULL), and a value of the wrong Python type fails the COPY.
    """
    names = ", ".join(quote(name) for name in columns)
    oids = _binary_oids(cursor, table, columns)
    statement = f"COPY {into} ({names}) FROM STDIN"
    with cursor.copy(statement + (" (FORMAT BINARY)" if oids else "")) as copy:
        if oids:
            copy.set_types(oids)
        for row in rows:
            copy.write_row(row)


def _binary_oids(
    cursor: psycopg.Cursor[Any], table: str, columns: Sequence[str]
) -> list[int] | None:
    """The type oids of ``table``'s ``columns``, or None when one of them is not a type the
    binary COPY writes as is."""
    cursor.execute(
        "SELECT a.attname, t.typname, a.atttypid FROM pg_attribute a"
        " JOIN pg_type t ON t.oid = a.atttypid"
        " WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped",
        (table,),
    )
    types = {name: (type_name, oid) for name, type_name, oid in cursor.fetchall()}
    chosen = [types.get(name) for name in columns]
    if any(found is None or found[0] not in _BINARY_COPY_TYPES for found in chosen):
        return None
    return [found[1] for found in chosen if found is not None]


def _conflict_clause(
    quote: Callable[[str], str], conflict_keys: Sequence[str], update: Sequence[str]
) -> str:
    if not conflict_keys:
        return ""
    target = ", ".join(quote(name) for name in conflict_keys)
    if update:
        assignments = ", ".join(f"{quote(name)} = excluded.{quote(name)}" for name in update)
        return f" ON CONFLICT ({target}) DO UPDATE SET {assignments}"
    return f" ON CONFLICT ({target}) DO NOTHING"


def _insert_sql(
    dialect: Dialect,
    table: sa.Table,
    columns: Sequence[str],
    conflict_keys: Sequence[str],
    update: Sequence[str],
    casts: Mapping[str, str],
) -> str:
    if dialect.paramstyle == "qmark":
        marker = "?"
    elif dialect.paramstyle in ("format", "pyformat"):
        marker = "%s"
    else:  # pragma: no cover
        raise StoreError(f"driver paramstyle {dialect.paramstyle!r} is not supported")
    quote = dialect.identifier_preparer.quote
    one_row = (
        "("
        + ", ".join(
            f"CAST({marker} AS {casts[name]})" if name in casts else marker for name in columns
        )
        + ")"
    )
    sql = (
        f"INSERT INTO {quote(table.name)} ({', '.join(quote(name) for name in columns)}) "
        f"VALUES {one_row}"
    )
    return sql + _conflict_clause(quote, conflict_keys, update)
