"""Bulk inserts for sync's hot paths (marks, ledger entries): rows as tuples, straight to the
driver, in batches shaped for each backend.

- SQLite: ``executemany`` of one single-row statement. The sqlite3 module steps the prepared
  statement once per row in C; a multi-row VALUES would only add parsing.
- PostgreSQL: one multi-row ``INSERT ... VALUES (...), (...)`` per batch of up to
  ``PG_ROWS_PER_STATEMENT`` rows (and under the protocol's 65,535 bind parameters): one round
  trip and one statement per batch instead of one per row.

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

# Rows per statement on PostgreSQL. Past a few hundred rows a statement, the round trips saved
# no longer pay for the longer statement text psycopg sends and the server parses.
PG_ROWS_PER_STATEMENT = 1_000
PG_MAX_PARAMETERS = 65_535
# Rows per executemany call on SQLite (bounds the parameter list held at once).
SQLITE_ROWS_PER_CALL = 10_000


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
    if dialect.name == "sqlite":
        sql = _insert_sql(dialect, table, columns, 1, conflict_keys, update, {})
        for start in range(0, len(rows), SQLITE_ROWS_PER_CALL):
            conn.exec_driver_sql(sql, list(rows[start : start + SQLITE_ROWS_PER_CALL]))
        return
    if dialect.name != "postgresql":  # pragma: no cover - the store refuses other backends
        raise StoreError(f"backend {dialect.name!r} is not supported")
    per_statement = max(1, min(PG_ROWS_PER_STATEMENT, PG_MAX_PARAMETERS // len(columns)))
    casts = dict(pg_casts or {})
    full = _insert_sql(dialect, table, columns, per_statement, conflict_keys, update, casts)
    for start in range(0, len(rows), per_statement):
        batch = rows[start : start + per_statement]
        sql = (
            full
            if len(batch) == per_statement
            else _insert_sql(dialect, table, columns, len(batch), conflict_keys, update, casts)
        )
        conn.exec_driver_sql(sql, tuple(value for row in batch for value in row))


def _insert_sql(
    dialect: Dialect,
    table: sa.Table,
    columns: Sequence[str],
    row_count: int,
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
        f"VALUES {', '.join([one_row] * row_count)}"
    )
    if conflict_keys:
        target = ", ".join(quote(name) for name in conflict_keys)
        if update:
            assignments = ", ".join(f"{quote(name)} = excluded.{quote(name)}" for name in update)
            sql += f" ON CONFLICT ({target}) DO UPDATE SET {assignments}"
        else:
            sql += f" ON CONFLICT ({target}) DO NOTHING"
    return sql
