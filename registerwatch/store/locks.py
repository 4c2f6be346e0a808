"""The PostgreSQL advisory lock behind the run lock (``registerwatch.runlock``): the store's SQL
for it lives here so that no module outside ``store/`` speaks SQL.

A lock file coordinates one machine; machines (and users) that share one PostgreSQL store meet
on a session-level ``pg_try_advisory_lock`` instead.
"""

from __future__ import annotations

import hashlib
import os
import socket
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from registerwatch.calendar import LONDON
from registerwatch.errors import StoreError
from registerwatch.logging import get_logger
from registerwatch.store.engine import parse_url, safe_url

log = get_logger("registerwatch.runlock")


class PgAdvisoryLock:
    """A session-level ``pg_try_advisory_lock`` held on a connection of its own.

    ``kind`` names the lock ("work", "daemon"): one store has one lock of each kind. The key is
    derived from the kind and the database and schema the connection lands in, so two spellings
    of one server's URL meet the same lock and two stores in different schemas do not. The
    connection's ``application_name`` names the holder, so a refused process can say who holds
    it (from ``pg_stat_activity``). While waiting, one connection is kept and asked again each
    time, rather than a new connection per try; :meth:`release` closes it either way.
    """

    def __init__(self, store_url: str, kind: str = "work") -> None:
        self.store_url = store_url
        self.kind = kind
        self._engine: Any = None
        self._conn: Any = None
        self._key: int | None = None
        self._held = False

    def try_acquire(self, command: str) -> bool:
        """Take the lock if it is free (without waiting); whether it is now held."""
        if self._held:
            return True
        try:
            if self._conn is None:
                # 63 bytes is PostgreSQL's limit for application_name.
                name = f"registerwatch {command} pid {os.getpid()} on {socket.gethostname()}"[:63]
                self._engine = sa.create_engine(
                    parse_url(self.store_url),
                    poolclass=NullPool,
                    connect_args={"application_name": name},
                )
                self._conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
                self._key = self._key_for(self._conn)
            got = self._conn.execute(
                sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": self._key}
            ).scalar()
        except sa.exc.DBAPIError as exc:
            self._close()
            raise StoreError(
                f"store {safe_url(self.store_url)}: cannot take the run lock "
                f"(PostgreSQL advisory lock): {exc.orig}"
            ) from None
        self._held = bool(got)
        return self._held

    def _key_for(self, conn: Any) -> int:
        database, schema = conn.execute(
            sa.text("SELECT current_database(), current_schema()")
        ).one()
        digest = hashlib.sha256(f"registerwatch/{self.kind}/{database}/{schema}".encode()).digest()
        return int.from_bytes(digest[:8], "big", signed=True)

    def holder(self) -> str:
        """Who holds the lock, from pg_stat_activity (as far as this user may see)."""
        unknown = "another connection to the database (PostgreSQL advisory lock)"
        if self._conn is None or self._key is None:
            return unknown
        try:
            row = self._conn.execute(
                sa.text(
                    "SELECT a.application_name, a.client_addr, a.backend_start "
                    "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
                    "AND l.classid = CAST((:k >> 32) & 4294967295 AS bigint)::oid "
                    "AND l.objid = CAST(:k & 4294967295 AS bigint)::oid"
                ),
                {"k": self._key},
            ).first()
        except sa.exc.DBAPIError:  # naming the holder is a courtesy; the refusal stands
            return unknown
        if row is None:
            return unknown
        who = row.application_name or "a client"
        where = f" from {row.client_addr}" if row.client_addr else ""
        since = (
            f" since {row.backend_start.astimezone(LONDON):%Y-%m-%d %H:%M:%S %Z}"
            if row.backend_start
            else ""
        )
        return f"{who}{where}{since} (PostgreSQL advisory lock)"

    def release(self) -> None:
        """Let the lock go (if held) and close the connection; safe to call at any time."""
        if self._held and self._conn is not None:
            try:
                self._conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": self._key})
            except sa.exc.DBAPIError:  # closing the session below releases it anyway
                log.warning("runlock.advisory_unlock_failed", kind=self.kind)
        self._held = False
        self._close()

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        if self._engine is not None:
            self._engine.dispose()
        self._conn = self._engine = self._key = None
