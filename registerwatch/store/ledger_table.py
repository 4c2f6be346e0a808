"""The ledger's table: appending to the hash chain, reading it back, and walking it.

What an entry is and how it is hashed lives in :mod:`registerwatch.store.ledger`; which changes
sync ledgers lives in :mod:`registerwatch.store.changes`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from registerwatch.errors import StoreError
from registerwatch.store import tables as t
from registerwatch.store.base import SESSIONS, StoreBase
from registerwatch.store.bulk import insert_rows
from registerwatch.store.ledger import (
    GENESIS_HASH,
    KINDS,
    LedgerCheck,
    LedgerEntry,
    LedgerKind,
    LedgerRecord,
    LedgerReport,
    link,
    verify_chain,
)

_LEDGER_COLUMNS = (
    "seq",
    "school_id",
    "pupil_id",
    "date",
    "session",
    "kind",
    "original_code",
    "new_code",
    "observed_at",
    "payload",
    "prev_hash",
    "hash",
)
LedgerRow = tuple[Any, ...]


def _ledger_insert(dialect: Dialect) -> Callable[[LedgerRecord, str], LedgerRow]:
    """A function making one row (a tuple in _LEDGER_COLUMNS order) of the ledger's INSERT.

    A first sync appends one entry per mark (~200k by December). Through ``sa.insert`` each
    row's parameters were rebuilt by SQLAlchemy (a dict per row, every column's processor) and
    the payload serialised once more by the JSON type, on top of the canonical text already
    built for the hash: together a third of the append. Here the row is a tuple, only the two
    columns that need it are converted (with the column types' own bind processors, so the
    stored text is what SQLAlchemy writes), and the payload goes in as that canonical text:
    bound as it is on SQLite (which keeps JSON as TEXT) and CAST to json on PostgreSQL (which
    keeps json text as written). Never CAST on SQLite: "JSON" has NUMERIC affinity there.
    The rows go to the driver's executemany through :func:`registerwatch.store.bulk.insert_rows`.
    """

    def processor(name: str) -> Callable[[Any], Any]:
        column_type = t.ledger.c[name].type
        process = column_type.dialect_impl(dialect).bind_processor(dialect)
        return process if process is not None else (lambda value: value)

    day, instant = processor("date"), processor("observed_at")

    def to_row(r: LedgerRecord, payload_text: str) -> LedgerRow:
        return (
            r.seq,
            r.school_id,
            r.pupil_id,
            day(r.date),
            r.session.value,
            str(r.kind),
            r.original_code,
            r.new_code,
            instant(r.observed_at),
            payload_text,
            r.prev_hash,
            r.hash,
        )

    return to_row


_KINDS_BY_VALUE = {kind.value: kind for kind in LedgerKind}


def _ledger_query() -> sa.Select[Any]:
    lg = t.ledger
    return sa.select(
        lg.c.seq,
        lg.c.school_id,
        lg.c.pupil_id,
        lg.c.date,
        lg.c.session,
        lg.c.kind,
        lg.c.original_code,
        lg.c.new_code,
        lg.c.observed_at,
        lg.c.payload,
        lg.c.prev_hash,
        lg.c.hash,
    ).order_by(lg.c.seq)


def _ledger_record(row: Sequence[Any]) -> LedgerRecord:
    # A value the enum does not know is kept as read: verification then names the entry.
    return LedgerRecord(
        seq=row[0],
        school_id=row[1],
        pupil_id=row[2],
        date=row[3],
        session=SESSIONS.get(row[4], row[4]),
        kind=_KINDS_BY_VALUE.get(row[5], row[5]),
        original_code=row[6],
        new_code=row[7],
        observed_at=row[8],
        payload=row[9],
        prev_hash=row[10],
        hash=row[11],
    )


class LedgerStore(StoreBase):
    def append_ledger(
        self, entries: Iterable[LedgerEntry], *, conn: sa.Connection | None = None
    ) -> list[LedgerRecord]:
        """Append entries to the hash chain; returns them as stored (seq, prev_hash, hash).

        The tip is read and extended under a lock (PostgreSQL: a table lock held to the end of
        the transaction; SQLite: the write lock a Store.transaction() takes at BEGIN), so
        concurrent appenders queue rather than fork the chain; seq as primary key is the
        backstop. Pass ``conn`` only from Store.transaction().
        """
        entries = list(entries)
        if not entries:
            return []
        lg = t.ledger
        with self._write(conn) as c:
            if c.dialect.name == "postgresql":
                # EXCLUSIVE blocks other writers (and other appenders' own lock) but not readers.
                c.execute(sa.text("LOCK TABLE ledger IN EXCLUSIVE MODE"))
            tip = c.execute(
                sa.select(lg.c.seq, lg.c.hash).order_by(lg.c.seq.desc()).limit(1)
            ).first()
            last_seq, last_hash = (tip[0], tip[1]) if tip else (0, GENESIS_HASH)
            linked = list(link(entries, last_seq, last_hash))
            to_row = _ledger_insert(c.dialect)
            rows = [to_row(record, text) for record, text in linked]
            insert_rows(c, t.ledger, _LEDGER_COLUMNS, rows, pg_casts={"payload": "JSON"})
        return [record for record, _text in linked]

    def ledger(
        self,
        school_id: str | None = None,
        *,
        pupil_id: str | None = None,
        start: date | None = None,
        end: date | None = None,
        kinds: Iterable[LedgerKind | str] | None = None,
        conn: sa.Connection | None = None,
    ) -> list[LedgerRecord]:
        """Ledger entries in seq order, optionally for one school, pupil, date range or set of
        kinds (``kinds=OBSERVED_KINDS``: what the scan checks, without the one ``observed_new``
        entry sync writes per mark). Raises StoreError for an unknown kind rather than silently
        matching nothing."""
        lg = t.ledger
        query = _ledger_query()
        if kinds is not None:
            # Plain text for the driver: psycopg would bind an Enum member by its name.
            wanted = sorted({str(kinds)} if isinstance(kinds, str) else {str(k) for k in kinds})
            unknown = [kind for kind in wanted if kind not in KINDS]
            if unknown:
                raise StoreError(f"ledger kind {unknown[0]!r} is not one of {', '.join(KINDS)}")
            if not wanted:
                return []
            query = query.where(lg.c.kind.in_(wanted))
        if school_id is not None:
            query = query.where(lg.c.school_id == school_id)
        if pupil_id is not None:
            query = query.where(lg.c.pupil_id == pupil_id)
        if start is not None:
            query = query.where(lg.c.date >= start)
        if end is not None:
            query = query.where(lg.c.date <= end)
        with self._read(conn) as c:
            return [_ledger_record(row) for row in c.execute(query)]

    def verify_ledger(
        self, *, batch_size: int = 5_000, conn: sa.Connection | None = None
    ) -> LedgerReport:
        """Walk the whole chain in seq order; ok, or the first broken entry and why."""
        with self._read(conn) as c:
            result = c.execution_options(yield_per=batch_size).execute(_ledger_query())
            records = (_ledger_record(row) for part in result.partitions() for row in part)
            try:
                return verify_chain(records)
            finally:
                result.close()

    def ledger_entry(self, seq: int, *, conn: sa.Connection | None = None) -> LedgerRecord | None:
        """One entry by its sequence number (None if there is none)."""
        with self._read(conn) as c:
            row = c.execute(_ledger_query().where(t.ledger.c.seq == seq)).first()
        return None if row is None else _ledger_record(row)

    def check_ledger(
        self, *, expect_tip: str | None = None, conn: sa.Connection | None = None
    ) -> LedgerCheck:
        """Walk the whole hash chain (``registerwatch ledger verify``); on a break, also name
        the school of the broken entry.

        The chain alone cannot show entries cut off its end, nor a rewrite whose later hashes
        were recomputed, so it is also held against the highest tip a run recorded (kept in
        ``runs``, outside the ledger table) and against ``expect_tip`` ("SEQ:HASH", a tip the
        caller kept elsewhere)."""
        with self._read(conn) as c:
            report = self.verify_ledger(conn=c)
            if report.ok:
                report = _against_tips(c, report, expect_tip)
            broken = (
                self.ledger_entry(report.broken_seq, conn=c)
                if not report.ok and report.broken_seq is not None
                else None
            )
        return LedgerCheck(
            ok=report.ok,
            entries=report.entries,
            last_seq=report.last_seq,
            last_hash=report.last_hash,
            broken_seq=report.broken_seq,
            broken_school_id=broken.school_id if broken else None,
            reason=report.reason,
        )


def _recorded_tips(c: sa.Connection) -> list[tuple[str, int, str]]:
    """(where, seq, hash) of the highest tip the recent runs recorded."""
    r = t.runs
    query = (
        sa.select(r.c.id, r.c.ledger_tip)
        .where(r.c.ledger_tip.is_not(None))
        .order_by(r.c.id.desc())
        .limit(200)
    )
    best: tuple[str, int, str] | None = None
    for run_id, tip in c.execute(query):
        seq, _, digest = str(tip).partition(":")
        if seq.isdigit() and (best is None or int(seq) > best[1]):
            best = (f"run {run_id}", int(seq), digest)
    return [best] if best else []


def _against_tips(c: sa.Connection, report: LedgerReport, expect_tip: str | None) -> LedgerReport:
    """A verified chain held against tips kept outside it: each must be an entry of it."""
    tips = _recorded_tips(c)
    if expect_tip is not None:
        text_seq, _, text_hash = expect_tip.partition(":")
        if not text_seq.isdigit() or not text_hash:
            return replace(report, ok=False, reason=f"--expect-tip {expect_tip!r} is not SEQ:HASH")
        tips.insert(0, ("the expected tip", int(text_seq), text_hash))
    last = report.last_seq or 0
    for where, seq, digest in tips:
        if seq > last:
            return replace(
                report,
                ok=False,
                broken_seq=last + 1,
                reason=(
                    f"the chain ends at entry {last} but {where} had entry {seq}: "
                    "entries were cut off the end"
                ),
            )
        entry = c.execute(sa.select(t.ledger.c.hash).where(t.ledger.c.seq == seq)).first()
        if entry is None or entry[0] != digest:
            return replace(
                report,
                ok=False,
                broken_seq=seq,
                reason=(
                    f"entry {seq}'s hash differs from the one {where} recorded: the chain "
                    "was rewritten and its hashes recomputed"
                ),
            )
    return report
