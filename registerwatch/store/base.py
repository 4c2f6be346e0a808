"""The plumbing every part of the store shares: opening the database, transactions, the clock and
the one upsert helper.

Each aggregate's module (``people``, ``marks``, ``registers``, ``ledger_table``, ``findings``,
``outbox``, ``runs``, ``bookmarks``) subclasses :class:`StoreBase` and imports only from here and
from the pure modules (``tables``, ``records``, ``ledger``, ``bulk``, ``mark_rows``), so they never
import each other and no import circle can form; ``store.Store`` composes them.

Every method takes an optional ``conn``: pass the connection from :meth:`StoreBase.transaction`
to make several calls one atomic unit (one school's sync is one transaction, so a killed run
leaves the store as it was before it). Without ``conn`` a writer runs in a transaction of its
own and a reader on a fresh connection.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import URL

from registerwatch.errors import StoreError
from registerwatch.schema import Session
from registerwatch.store.engine import (
    WRITE_OPTION,
    describe_store_failure,
    make_engine,
    parse_url,
    prepare_sqlite_file,
    safe_url,
    sqlite_path,
)
from registerwatch.store.ledger import canonical_json
from registerwatch.store.migrate import (
    UPGRADE_HINT,
    check_current,
    check_known,
    upgrade_connection,
)

# What a caller passes as ``conn``: a connection from Store.transaction() or Store.snapshot().
# Named here so that callers outside the store need not import sqlalchemy for a type hint.
Connection = sa.Connection

# Rows per executemany batch, and values per IN (...) list.
WRITE_BATCH_ROWS = 10_000
IN_LIST_LIMIT = 500

SESSIONS = {"AM": Session.AM, "PM": Session.PM}
# "Argument not given", where None is a value the caller may mean.
UNSET: Any = object()


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def sha256_key(parts: Sequence[Any]) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(list(parts)).encode("utf-8")).hexdigest()


def store_error(exc: BaseException, where: str, path: Path | None = None) -> StoreError:
    """The StoreError for a database failure: a full disk or a read-only store said plainly."""
    plain = describe_store_failure(exc, path)
    if plain is not None:
        return StoreError(f"{where}: {plain}")
    return StoreError(f"{where}: {getattr(exc, 'orig', None) or exc}")


# Raised by raw DBAPI writes (the fast ledger insert) as well as through SQLAlchemy.
_DB_FAILURES = (sa.exc.OperationalError, sqlite3.OperationalError)


def aware_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise StoreError(f"naive datetime {value.isoformat()} refused: give it a timezone")
    return value.astimezone(UTC)


def dialect_insert(conn: sa.Connection, table: sa.Table) -> Any:
    """The dialect's INSERT, which has ON CONFLICT (SQLite and PostgreSQL spell it the same)."""
    dialect = conn.dialect.name
    if dialect == "sqlite":
        return sqlite_dialect.insert(table)
    if dialect == "postgresql":
        return pg_dialect.insert(table)
    raise StoreError(f"backend {dialect!r} is not supported")  # pragma: no cover


def upsert(
    conn: sa.Connection,
    table: sa.Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    keys: Sequence[str],
    update: Sequence[str] | None = None,
    update_exprs: Callable[[Any], Mapping[str, Any]] | None = None,
) -> None:
    """INSERT ... ON CONFLICT (keys) DO UPDATE (or DO NOTHING when there is nothing to update),
    in executemany batches.

    ``update`` names columns taken from the incoming row; ``update_exprs`` builds any others from
    the insert statement (for example ``occurrences = occurrences + 1``).
    """
    if not rows:
        return
    stmt = dialect_insert(conn, table)
    set_: dict[str, Any] = {name: stmt.excluded[name] for name in (update or ())}
    if update_exprs is not None:
        set_.update(update_exprs(stmt))
    if set_:
        stmt = stmt.on_conflict_do_update(index_elements=list(keys), set_=set_)
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=list(keys))
    for batch in chunks(rows, WRITE_BATCH_ROWS):
        conn.execute(stmt, list(batch))


class StoreBase:
    """The registerwatch store (SQLite file or PostgreSQL database), at the current schema.

    ``Store(url)`` opens an existing store and raises StoreError if it is missing or at an older
    schema revision; ``Store.open(url)`` (``create=True``) also creates and initialises an empty
    one, such as a new SQLite file. ``read_only=True`` opens a SQLite store with ``mode=ro``
    (read commands on a read-only filesystem); it never creates or upgrades.
    """

    def __init__(
        self,
        url: str | URL,
        *,
        create: bool = False,
        clock: Callable[[], datetime] | None = None,
        engine_options: Mapping[str, Any] | None = None,
        read_only: bool = False,
    ) -> None:
        self.url = parse_url(url)
        self.read_only = read_only
        path = sqlite_path(self.url)
        if path is not None and not path.exists():
            if not create or read_only:
                raise StoreError(f"no store at {path}: {UPGRADE_HINT} to create it")
            try:
                prepare_sqlite_file(self.url)
            except OSError as exc:
                raise store_error(exc, f"cannot create the store at {path}") from exc
        self.engine = make_engine(self.url, read_only=read_only, **dict(engine_options or {}))
        self._clock = clock or (lambda: datetime.now(UTC))
        try:
            self._check_schema(create)
        except BaseException:
            self.engine.dispose()
            raise

    def _check_schema(self, create: bool) -> None:
        try:
            with self.engine.connect() as conn:
                if create:
                    conn.execution_options(**{WRITE_OPTION: True})
                with conn.begin():
                    if create and check_known(conn, self.url) is None:
                        upgrade_connection(conn)
                    check_current(conn, self.url)
        except _DB_FAILURES as exc:
            raise store_error(
                exc, f"cannot open the store at {self.display_url}", sqlite_path(self.url)
            ) from exc

    @property
    def display_url(self) -> str:
        return safe_url(self.url)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.display_url!r})"

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- connections ---------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        """One atomic unit of writes: commits when the block ends, rolls back if it raises.

        On SQLite the write lock is taken at the start (BEGIN IMMEDIATE), so concurrent writers
        queue (up to the busy timeout) rather than fail half-way.
        """
        try:
            with self.engine.connect() as conn:
                conn.execution_options(**{WRITE_OPTION: True})
                with conn.begin():
                    yield conn
        except _DB_FAILURES as exc:
            raise store_error(exc, f"store {self.display_url}", sqlite_path(self.url)) from exc

    @contextmanager
    def snapshot(self) -> Iterator[sa.Connection]:
        """One read transaction: reads passed its connection see one state of the store even
        if a writer commits meanwhile (the scan reads a school's records and its stored findings
        this way). Takes no write lock."""
        try:
            with self.engine.connect() as conn:
                if conn.dialect.name == "postgresql":
                    # Under READ COMMITTED (the default) each statement would see newer commits.
                    conn.execution_options(isolation_level="REPEATABLE READ")
                with conn.begin():
                    yield conn
        except _DB_FAILURES as exc:
            raise store_error(exc, f"store {self.display_url}", sqlite_path(self.url)) from exc

    @contextmanager
    def _write(self, conn: sa.Connection | None) -> Iterator[sa.Connection]:
        if conn is not None:
            yield conn
        else:
            with self.transaction() as own:
                yield own

    @contextmanager
    def _read(self, conn: sa.Connection | None) -> Iterator[sa.Connection]:
        if conn is not None:
            yield conn
            return
        try:
            with self.engine.connect() as own:
                yield own
        except _DB_FAILURES as exc:
            raise store_error(exc, f"store {self.display_url}", sqlite_path(self.url)) from exc

    def _at(self, at: datetime | None) -> datetime:
        return aware_utc(self._clock() if at is None else at)
