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
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from registerwatch.errors import StoreError

# Rows per executemany call: bounds the parameter list held at once.
ROWS_PER_CALL = 10_000


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
) -> None:
    """INSERT ``rows`` (tuples in ``columns`` order) into ``table`` on ``conn``.

    With ``conflict_keys``, a row whose keys exist updates the ``update`` columns from the
    incoming row (ON CONFLICT ... DO UPDATE), or is skipped when ``update`` is empty.
    ``pg_casts`` names columns bound as text and CAST on PostgreSQL (``{"payload": "JSON"}``).
    """
    if not rows:
        return
    dialect = conn.dialect
    if dialect.name not in ("sqlite", "postgresql"):  # pragma: no cover - the store refuses
        raise StoreError(f"backend {dialect.name!r} is not supported")
    casts = dict(pg_casts or {}) if dialect.name == "postgresql" else {}
    sql = _insert_sql(dialect, table, columns, conflict_keys, update, casts)
    for start in range(0, len(rows), ROWS_PER_CALL):
        conn.exec_driver_sql(sql, list(rows[start : start + ROWS_PER_CALL]))


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
    if conflict_keys:
        target = ", ".join(quote(name) for name in conflict_keys)
        if update:
            assignments = ", ".join(f"{quote(name)} = excluded.{quote(name)}" for name in update)
            sql += f" ON CONFLICT ({target}) DO UPDATE SET {assignments}"
        else:
            sql += f" ON CONFLICT ({target}) DO NOTHING"
    return sql
