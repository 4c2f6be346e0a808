"""Engines for the two supported backends, SQLite (the default) and PostgreSQL.

SQLite needs three things SQLAlchemy does not do for it:
- pysqlite's own transaction handling is switched off and SQLAlchemy emits BEGIN itself, so a
  write transaction (``Store.transaction``) can take the write lock up front with
  ``BEGIN IMMEDIATE``: two writers then queue instead of both reading the ledger's tip and racing
  to append after it;
- WAL journaling, so the nightly scan can read while a sync writes;
- a busy timeout, so a queued writer waits instead of failing at once.
A new store file is created readable by its owner only (0600): it holds pupil data.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import StaticPool

from registerwatch.errors import StoreError

SUPPORTED_BACKENDS = ("sqlite", "postgresql")
SQLITE_BUSY_TIMEOUT_SECONDS = 30
# Execution option set on a connection that will write: SQLite begins it with BEGIN IMMEDIATE.
WRITE_OPTION = "registerwatch_write"


def parse_url(url: str | URL) -> URL:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"store URL {str(url)!r} is not a database URL: {exc}") from None
    if parsed.get_backend_name() not in SUPPORTED_BACKENDS:
        raise StoreError(
            f"store URL {safe_url(parsed)}: backend {parsed.get_backend_name()!r} is not "
            "supported; use sqlite:///path/to/registerwatch.db or postgresql+psycopg://..."
        )
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        # Only psycopg 3 is a dependency; plain postgresql:// would ask for psycopg2.
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def safe_url(url: str | URL) -> str:
    """The URL with any password masked, fit for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<invalid URL>"


def is_sqlite_memory(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def sqlite_path(url: URL) -> Path | None:
    if url.get_backend_name() != "sqlite" or is_sqlite_memory(url):
        return None
    database = url.database or ""
    if database.startswith("file:"):  # a URI filename; leave it to SQLite
        return None
    return Path(database)


def prepare_sqlite_file(url: URL) -> None:
    """Create a missing store file (and its folder) with owner-only permissions."""
    path = sqlite_path(url)
    if path is None or path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    os.close(fd)


def make_engine(url: str | URL, **kwargs: Any) -> Engine:
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, **kwargs)
    kwargs.setdefault("pool_pre_ping", True)
    return sa.create_engine(parsed, **kwargs)


def _sqlite_engine(url: URL, **kwargs: Any) -> Engine:
    connect_args = dict(kwargs.pop("connect_args", {}))
    connect_args.setdefault("timeout", SQLITE_BUSY_TIMEOUT_SECONDS)
    memory = is_sqlite_memory(url)
    if memory:
        # One shared connection, or every checkout would see a different empty database.
        connect_args.setdefault("check_same_thread", False)
        kwargs.setdefault("poolclass", StaticPool)
    engine = sa.create_engine(url, connect_args=connect_args, **kwargs)

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN (see _on_begin)
        cursor = dbapi_connection.cursor()
        try:
            if not memory:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_SECONDS * 1000}")
        finally:
            cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        if conn.get_execution_options().get(WRITE_OPTION):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")

    return engine
