"""Engines for the two supported backends, SQLite (the default) and PostgreSQL.

SQLite needs three things SQLAlchemy does not do for it:
- pysqlite's own transaction handling is switched off and SQLAlchemy emits BEGIN itself, so a
  write transaction (``Store.transaction``) can take the write lock up front with
  ``BEGIN IMMEDIATE``: two writers then queue instead of both reading the ledger's tip and racing
  to append after it;
- WAL journaling, so the nightly scan can read while a sync writes;
- a busy timeout, so a queued writer waits instead of failing at once.
A new store file is created readable by its owner only (0600): it holds pupil data. An existing
one that others may read, and its ``-wal`` / ``-shm`` files, are tightened to 0600 when opened
(SQLite gives those files the store's own mode, so a 0644 store made 0644 ones).

A read-only engine (``read_only=True``) opens the file with ``mode=ro``, so ``ledger verify``,
``runs``, ``findings list`` and ``status`` work on a store on a read-only filesystem; where SQLite
cannot even create the ``-shm`` file there, it falls back to ``immutable=1`` (nothing can write to
a read-only filesystem, which is what immutable promises).
"""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import StaticPool

from registerwatch.errors import StoreError
from registerwatch.logging import get_logger

log = get_logger("registerwatch.store.engine")

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


def secure_sqlite_files(path: Path) -> list[Path]:
    """Take group and other permissions off the store file and its ``-wal`` / ``-shm`` files;
    returns the files that needed it (each is logged as a warning)."""
    tightened = []
    for candidate in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            mode = stat.S_IMODE(candidate.stat().st_mode)
            if mode & 0o077:
                os.chmod(candidate, mode & 0o600)
                tightened.append(candidate)
                log.warning(
                    "store.permissions_tightened",
                    file=str(candidate),
                    was=oct(mode),
                    now=oct(mode & 0o600),
                )
        except FileNotFoundError:
            continue
        except OSError as exc:  # not the owner, or a read-only filesystem: say so, go on
            log.warning("store.permissions_not_tightened", file=str(candidate), error=str(exc))
    return tightened


def on_read_only_filesystem(path: Path) -> bool:
    try:
        return bool(os.statvfs(path.parent).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def describe_store_failure(exc: BaseException, path: Path | None = None) -> str | None:
    """Name a full disk or a read-only store plainly, so neither reads as a bug."""
    text = str(getattr(exc, "orig", None) or exc).lower()
    if path is not None and "unable to open" in text and on_read_only_filesystem(path):
        text = "read-only file system"
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None)
    if "disk is full" in text or "no space left" in text or sqlstate == "53100":
        return "the disk holding the store is full: free some space and run again"
    if (
        "readonly database" in text
        or "read-only file system" in text
        or "read-only transaction" in text
        or sqlstate == "25006"
    ):
        return (
            "the store is read-only (a read-only filesystem or a file this user may not "
            "write): only read commands (ledger verify, runs, findings list, status) can run"
        )
    return None


def make_engine(url: str | URL, *, read_only: bool = False, **kwargs: Any) -> Engine:
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = sqlite_path(parsed)
        if path is not None:
            secure_sqlite_files(path)
            if read_only:
                kwargs.setdefault("creator", lambda: _read_only_connection(path))
        return _sqlite_engine(parsed, read_only=read_only, **kwargs)
    kwargs.setdefault("pool_pre_ping", True)
    return sa.create_engine(parsed, **kwargs)


def _read_only_connection(path: Path) -> sqlite3.Connection:
    target = quote(str(path.resolve()))
    timeout = float(SQLITE_BUSY_TIMEOUT_SECONDS)
    connection = sqlite3.connect(
        f"file:{target}?mode=ro", uri=True, timeout=timeout, check_same_thread=False
    )
    try:
        connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError:
        # A WAL store whose -shm file cannot be created (read-only folder or filesystem).
        connection.close()
        connection = sqlite3.connect(
            f"file:{target}?mode=ro&immutable=1",
            uri=True,
            timeout=timeout,
            check_same_thread=False,
        )
    return connection


def _sqlite_engine(url: URL, *, read_only: bool = False, **kwargs: Any) -> Engine:
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
            if not memory and not read_only:
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
