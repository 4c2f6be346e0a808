"""The ledger's table: appending to the hash chain, reading it back, and walking it.

What an entry is and how it is hashed lives in :mod:`registerwatch.store.ledger`; which changes
sync ledgers lives in :mod:`registerwatch.store.changes`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from registerwatch.errors import StoreError
from registerwatch.logging import get_logger
from registerwatch.store import tables as t
from registerwatch.store.base import SESSIONS, StoreBase
from registerwatch.store.bookmarks import set_verified_ledger_tip, verified_ledger_tip
from registerwatch.store.bulk import insert_rows
from registerwatch.store.ledger import (
    GENESIS_HASH,
    KINDS,
    AcceptedBreak,
    LedgerCheck,
    LedgerEntry,
    LedgerKind,
    LedgerRecord,
    LedgerReport,
    instant_text,
    link,
    verify_chain,
)
from registerwatch.store.ledger_keys import LedgerKeys
from registerwatch.store.ledger_sink import SinkTip, TipSink, TipSinkError

log = get_logger(__name__)

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
    "key_id",
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
            r.key_id,
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
        lg.c.key_id,
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
        key_id=row[12],
    )


class LedgerStore(StoreBase):
    # Set by use_ledger(): the HMAC keys (None: plain SHA-256 chain) and the tip sink.
    ledger_keys: LedgerKeys | None = None
    tip_sink: TipSink | None = None

    def use_ledger(self, keys: LedgerKeys | None, sink: TipSink | None = None) -> None:
        """Sign new entries with ``keys`` (and check old ones with them); append each finished
        run's tip to ``sink``."""
        self.ledger_keys = keys
        self.tip_sink = sink

    def append_ledger(
        self, entries: Iterable[LedgerEntry], *, conn: sa.Connection | None = None
    ) -> list[LedgerRecord]:
        """Append entries to the hash chain; returns them as stored (seq, prev_hash, hash).

        The tip is read and extended under a lock (PostgreSQL: a table lock held to the end of
        the transaction; SQLite: the write lock a Store.transaction() takes at BEGIN), so
        concurrent appenders queue rather than fork the chain; seq as primary key is the
        backstop. Pass ``conn`` only from Store.transaction().

        Numbers are never reused: after entries were cut off the end, the next entry takes the
        number after the highest tip any run recorded (the cut stays a visible gap), and links
        to the last entry present.
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
            last_seq = max(last_seq, _high_water(c))
            linked = list(link(entries, last_seq, last_hash, self.ledger_keys))
            to_row = _ledger_insert(c.dialect)
            rows = [to_row(record, text) for record, text in linked]
            insert_rows(c, t.ledger, _LEDGER_COLUMNS, rows, pg_casts={"payload": "JSON"})
            if verified_ledger_tip(c) == (last_seq, last_hash):
                # These entries extend the verified tip: what they are was just computed here,
                # so sync's next check need not walk them again.
                newest = linked[-1][0]
                set_verified_ledger_tip(c, newest.seq, newest.hash, self._at(None))
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
        kinds (``kinds=OBSERVED_KINDS``: what the scan checks, without the ``observed_new``
        entries that list every mark first seen). Raises StoreError for an unknown kind rather
        than silently matching nothing. An ``observed_new`` entry's date is its pupil's first
        mark's (changes.first_seen_marks lists them all): ``start``/``end`` select entries, not
        the marks inside them."""
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
        self,
        *,
        batch_size: int = 5_000,
        accepted: Sequence[AcceptedBreak] = (),
        conn: sa.Connection | None = None,
    ) -> LedgerReport:
        """Walk the whole chain in seq order (with the store's ledger keys); ok, or the first
        broken entry and why. Breaks ``accepted`` covers are listed and gone past."""
        with self._read(conn) as c:
            result = c.execution_options(yield_per=batch_size).execute(_ledger_query())
            records = (_ledger_record(row) for part in result.partitions() for row in part)
            try:
                return verify_chain(records, self.ledger_keys, accepted)
            finally:
                result.close()

    def ledger_entry(self, seq: int, *, conn: sa.Connection | None = None) -> LedgerRecord | None:
        """One entry by its sequence number (None if there is none)."""
        with self._read(conn) as c:
            row = c.execute(_ledger_query().where(t.ledger.c.seq == seq)).first()
        return None if row is None else _ledger_record(row)

    def check_ledger(
        self,
        *,
        expect_tip: str | None = None,
        sink_tips: Sequence[SinkTip] | None = None,
        conn: sa.Connection | None = None,
    ) -> LedgerCheck:
        """Walk the whole hash chain (``registerwatch ledger verify``); on a break, also name
        the school of the broken entry.

        The chain alone cannot show entries cut off its end, nor a rewrite whose later hashes
        were recomputed, so it is also held against the highest tip a run recorded (kept in
        ``runs``, outside the ledger table), against ``expect_tip`` ("SEQ:HASH", a tip the
        caller kept elsewhere) and against every tip of ``sink_tips`` (read from the tip sink).
        Breaks a run accepted (``--accept-broken-ledger``) are listed and gone past."""
        with self._read(conn) as c:
            accepted = _accepted_breaks(c)
            report = self.verify_ledger(accepted=accepted, conn=c)
            if report.ok:
                report = _against_tips(c, report, expect_tip, accepted, sink_tips)
            broken = (
                self.ledger_entry(report.broken_seq, conn=c)
                if not report.ok and report.broken_seq is not None
                else None
            )
        return self._check_of(report, broken.school_id if broken else None)

    def check_ledger_since_verified(self, *, conn: sa.Connection | None = None) -> LedgerCheck:
        """Sync's check before it appends: walk only the entries after the tip an earlier
        check verified (kept in the store, advanced by each check and each append that extends
        it), then hold the chain against the runs' recorded tips as ``check_ledger`` does.

        The check costs what was appended since, not the whole chain. What it cannot see is an
        entry before that tip rewritten without touching the tip: ``registerwatch ledger
        verify`` (check_ledger) always walks everything. Anything that does not hold (no tip
        kept, the tip's entry gone or changed, a break after it) falls back to the whole walk,
        which reports exactly where the chain breaks.
        """
        with self._read(conn) as c:
            kept = verified_ledger_tip(c)
            start = self.ledger_entry(kept[0], conn=c) if kept is not None else None
            if start is None or kept is None or start.hash != kept[1]:
                # Also the empty chain's tip (0, genesis): from there the walk is the whole one.
                return self.check_ledger(conn=c)
            accepted = _accepted_breaks(c)
            query = _ledger_query().where(t.ledger.c.seq > start.seq)
            records = (_ledger_record(row) for row in c.execute(query))
            report = verify_chain(records, self.ledger_keys, accepted, after=start)
            if report.ok:
                report = _against_tips(c, report, None, accepted)
            if not report.ok:
                return self.check_ledger(conn=c)
        return self._check_of(report)

    def _check_of(self, report: LedgerReport, broken_school_id: str | None = None) -> LedgerCheck:
        """The check's answer from a walk's report (and the broken entry's school)."""
        return LedgerCheck(
            ok=report.ok,
            entries=report.entries,
            last_seq=report.last_seq,
            last_hash=report.last_hash,
            broken_seq=report.broken_seq,
            broken_school_id=broken_school_id,
            reason=report.reason,
            broken_to=report.broken_to,
            accepted=report.accepted,
            unkeyed=report.unkeyed,
            key_ids=report.key_ids,
            keyed=self.ledger_keys is not None,
        )

    def keep_verified_tip(self, check: LedgerCheck) -> None:
        """Remember the tip ``check`` verified, for the next ``check_ledger_since_verified``.
        A read-only store keeps nothing (the next check walks the whole chain)."""
        if not check.ok or self.read_only:
            return
        with self._write(None) as c:
            # An empty chain's tip is (0, genesis), which the first append then extends.
            seq = check.last_seq if check.last_seq is not None else 0
            set_verified_ledger_tip(c, seq, check.last_hash, self._at(None))

    def witness_tip(self, run_id: int, tip: str | None, *, at: datetime | None = None) -> None:
        """Append a finished run's tip to the tip sink, if one is configured. A sink that cannot
        be written is logged (``ledger.sink_failed``), never fatal: the run's work is done."""
        if self.tip_sink is None or tip is None:
            return
        seq, _, digest = tip.partition(":")
        command = None
        with self._read(None) as c:
            row = c.execute(sa.select(t.runs.c.command).where(t.runs.c.id == run_id)).first()
            command = row[0] if row else None
        record = SinkTip(
            seq=int(seq),
            hash=digest,
            run_id=run_id,
            command=command,
            at=instant_text(self._at(at)),
            store=self.display_url,
        )
        try:
            self.tip_sink.append(record)
        except TipSinkError as exc:
            log.warning("ledger.sink_failed", run=run_id, error=str(exc))
        else:
            log.info("ledger.tip_witnessed", run=run_id, seq=record.seq)


def _parse_tip(text: str | None) -> tuple[int, str] | None:
    seq, _, digest = str(text or "").partition(":")
    return (int(seq), digest) if seq.isdigit() and digest else None


def _recorded_tips(c: sa.Connection) -> list[tuple[str, int, str]]:
    """(where, seq, hash) of the highest tip any run recorded."""
    r = t.runs
    best: tuple[str, int, str] | None = None
    query = sa.select(r.c.id, r.c.ledger_tip).where(r.c.ledger_tip.is_not(None))
    for run_id, text in c.execute(query.order_by(r.c.id)):
        tip = _parse_tip(text)
        if tip is not None and (best is None or tip[0] > best[1]):
            best = (f"run {run_id}", tip[0], tip[1])
    return [best] if best else []


def _high_water(c: sa.Connection) -> int:
    """The highest seq the chain ever had, as far as runs and accepted breaks recorded."""
    tips = _recorded_tips(c)
    accepted = _accepted_breaks(c)
    return max([seq for _w, seq, _h in tips] + [a.last for a in accepted] + [0])


def _accepted_breaks(c: sa.Connection) -> list[AcceptedBreak]:
    """The breaks runs were told to go past (``counts.accepted_broken_ledger``)."""
    r = t.runs
    query = (
        sa.select(r.c.id, r.c.counts)
        .where(sa.cast(r.c.counts, sa.Text).contains("accepted_broken_ledger"))
        .order_by(r.c.id)
    )
    found = []
    for run_id, counts in c.execute(query):
        if isinstance(counts, str):  # pragma: no cover - drivers hand JSON back parsed
            counts = json.loads(counts)
        value = counts.get("accepted_broken_ledger") if isinstance(counts, dict) else None
        if not isinstance(value, dict) or not isinstance(value.get("broken_seq"), int):
            continue
        first = value["broken_seq"]
        last = value.get("broken_to")
        found.append(
            AcceptedBreak(
                first=first,
                last=last if isinstance(last, int) and last >= first else first,
                run_id=run_id,
                reason=str(value.get("reason") or ""),
            )
        )
    return found


def _against_tips(
    c: sa.Connection,
    report: LedgerReport,
    expect_tip: str | None,
    accepted: Sequence[AcceptedBreak],
    sink_tips: Sequence[SinkTip] | None = None,
) -> LedgerReport:
    """A verified chain held against tips kept outside it: each must be an entry of it, unless
    a break a run accepted covers it. Sink tips must also never go back (a chain cut and grown
    again), unless an accepted break covers the stretch."""
    gone_past = list(report.accepted)

    def covered(first: int, last: int) -> bool:
        for a in accepted:
            if a.covers(first, last):
                if a not in gone_past:
                    gone_past.append(a)
                return True
        return False

    tips = _recorded_tips(c)
    if expect_tip is not None:
        parsed = _parse_tip(expect_tip)
        if parsed is None:
            return replace(report, ok=False, reason=f"--expect-tip {expect_tip!r} is not SEQ:HASH")
        tips.insert(0, ("the expected tip", *parsed))
    checked: list[tuple[str, int, str, bool]] = [(w, s, h, False) for w, s, h in tips]
    checked += [
        (f"the sink's tip at {tip.where}", tip.seq, tip.hash, True) for tip in sink_tips or ()
    ]
    last = report.last_seq or 0
    highest_sink = 0
    for where, seq, digest, from_sink in checked:
        named = f"{where} ({seq}:{digest[:16]}...)" if from_sink else where
        if from_sink and seq < highest_sink and not covered(seq + 1, highest_sink):
            return replace(
                report,
                ok=False,
                broken_seq=seq + 1,
                broken_to=highest_sink,
                reason=(
                    f"{named} goes back from entry {highest_sink} to entry {seq}: the chain "
                    "diverged (cut and grown again)"
                ),
            )
        highest_sink = max(highest_sink, seq) if from_sink else highest_sink
        if seq > last:
            if covered(last + 1, seq):
                continue
            return replace(
                report,
                ok=False,
                broken_seq=last + 1,
                broken_to=seq,
                reason=(
                    f"the chain ends at entry {last} but {named} had entry {seq}: "
                    "entries were cut off the end"
                ),
            )
        entry = c.execute(sa.select(t.ledger.c.hash).where(t.ledger.c.seq == seq)).first()
        if (entry is None or entry[0] != digest) and not covered(seq, seq):
            return replace(
                report,
                ok=False,
                broken_seq=seq,
                broken_to=seq,
                reason=(
                    f"entry {seq}'s hash differs from the one {named} recorded: the chain "
                    "was rewritten and its hashes recomputed"
                    if entry is not None
                    else f"entry {seq} is missing but {named} recorded it: entries were deleted"
                ),
            )
    return replace(report, accepted=tuple(gone_past))
