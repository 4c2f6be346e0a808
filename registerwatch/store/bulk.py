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
from datetime import date, datetime
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


# Column types whose binary dumpers write a value of one Python type as it is, and the bounds
# of the integer ones: psycopg's binary int4 dumper wraps 2**31 around where the text COPY's
# server-side parse refuses it, so values are checked before a binary COPY (_binary_fits).
_INT_BOUNDS = {"int2": 2**15, "int4": 2**31, "int8": 2**63}
_BINARY_COPY_TYPES = frozenset(
    ("text", "varchar", "date", "timestamp", "timestamptz", *_INT_BOUNDS)
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
    catalogue) and every value is of the Python type its column's binary dumper takes as is,
    each column's dumper fixed up front: a text COPY looks up a dumper per value and spells
    each instant as text, which was most of the client's cost of copying a first sync's marks
    (docs/performance.md, "First sync's write"). Otherwise in text, as before; either way the
    server checks lengths and NOT NULLs.
    """
    names = ", ".join(quote(name) for name in columns)
    types = _column_types(cursor, table, columns)
    binary = types is not None and _binary_fits(rows, [name for name, _oid in types])
    statement = f"COPY {into} ({names}) FROM STDIN"
    with cursor.copy(statement + (" (FORMAT BINARY)" if binary else "")) as copy:
        if binary and types is not None:
            copy.set_types([oid for _name, oid in types])
        for row in rows:
            copy.write_row(row)


def _column_types(
    cursor: psycopg.Cursor[Any], table: str, columns: Sequence[str]
) -> list[tuple[str, int]] | None:
    """The type (name, oid) of each of ``table``'s ``columns``, or None when one of them is not
    a type the binary COPY is used for."""
    cursor.execute(
        "SELECT a.attname, t.typname, a.atttypid FROM pg_attribute a"
        " JOIN pg_type t ON t.oid = a.atttypid"
        " WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped",
        (table,),
    )
    found = {name: (type_name, oid) for name, type_name, oid in cursor.fetchall()}
    types = [found.get(name) for name in columns]
    if any(one is None or one[0] not in _BINARY_COPY_TYPES for one in types):
        return None
    return [one for one in types if one is not None]


def _binary_fits(rows: Sequence[tuple[Any, ...]], type_names: Sequence[str]) -> bool:
    """Whether every value (or None) is what its column's binary dumper writes as is: a str for
    text, an int in range for an integer (not a bool), a date (not a datetime) for a date, an
    aware datetime for timestamptz and a naive one for timestamp."""
    for type_name, values in zip(type_names, zip(*rows, strict=True), strict=True):
        kinds = set(map(type, values))
        kinds.discard(type(None))
        if type_name in ("text", "varchar"):
            fits = kinds <= {str}
        elif type_name == "date":
            fits = kinds <= {date}
        elif type_name in _INT_BOUNDS:
            bound = _INT_BOUNDS[type_name]
            numbers = [value for value in values if value is not None]
            fits = kinds <= {int} and (
                not numbers or -bound <= min(numbers) <= max(numbers) < bound
            )
        else:  # timestamp, timestamptz: the distinct instants (a few: one per register taken)
            aware = {value.utcoffset() is not None for value in set(values) if value is not None}
            fits = kinds <= {datetime} and aware <= {type_name == "timestamptz"}
        if not fits:
            return False
    return True


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
