"""The amendment ledger's entries and hash chain.

Registers are legal documents: every change sync sees to a register entry (and every amendment
record the MIS supplies) is appended here, and each entry's hash covers its own fields, its
sequence number and the previous entry's hash. Altering, removing or reordering any entry
therefore breaks the chain at that entry or the next, and :func:`verify_chain` names where.

The chain cannot by itself show that entries were cut off the *end*: keep the tip
(``LedgerReport.last_seq`` / ``last_hash``, printed by ``registerwatch ledger verify``) somewhere
the store's owner cannot rewrite, and compare.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from enum import Enum
from typing import Any, Literal

from registerwatch.errors import LedgerIntegrityError, StoreError
from registerwatch.schema import Session

GENESIS_HASH = "0" * 64
LedgerKind = Literal["observed_change", "observed_new", "observed_deleted", "mis_amendment"]
KINDS: tuple[str, ...] = ("observed_change", "observed_new", "observed_deleted", "mis_amendment")


@dataclass(frozen=True)
class LedgerEntry:
    """One change to a register entry, as handed to ``Store.append_ledger``."""

    school_id: str
    pupil_id: str
    date: date
    session: Session
    kind: LedgerKind
    original_code: str | None
    new_code: str | None
    observed_at: datetime
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LedgerRecord(LedgerEntry):
    """An entry as stored: with its sequence number and its link in the chain."""

    seq: int = 0
    prev_hash: str = GENESIS_HASH
    hash: str = ""


@dataclass(frozen=True)
class LedgerReport:
    """The outcome of walking the chain: ok, or the first broken entry and why."""

    ok: bool
    entries: int
    last_seq: int | None
    last_hash: str
    broken_seq: int | None = None
    reason: str | None = None

    def raise_if_broken(self) -> None:
        if not self.ok:
            raise LedgerIntegrityError(f"ledger entry {self.broken_seq}: {self.reason}")


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return instant_text(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def canonical_json(value: Any) -> str:
    """One spelling for one value: sorted keys, no spaces, UTF-8, no NaN."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False,
        default=_json_default,
    )


def normalise_payload(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The payload as it will read back from the store (dates and enums become strings)."""
    try:
        result = json.loads(canonical_json(dict(payload)))
    except (TypeError, ValueError) as exc:
        raise StoreError(f"ledger payload cannot be stored as JSON: {exc}") from None
    return result


def instant_text(value: datetime) -> str:
    if value.tzinfo is None or value.utcoffset() is None:
        raise StoreError(f"naive datetime {value.isoformat()} refused: give it a timezone")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_hash(entry: LedgerEntry, seq: int, prev_hash: str) -> str:
    """sha256 over the canonical JSON of the entry's fields, its seq and the previous hash."""
    document = {
        "seq": seq,
        "school_id": entry.school_id,
        "pupil_id": entry.pupil_id,
        "date": entry.date.isoformat(),
        "session": str(entry.session),
        "kind": entry.kind,
        "original_code": entry.original_code,
        "new_code": entry.new_code,
        "observed_at": instant_text(entry.observed_at),
        "payload": entry.payload,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(canonical_json(document).encode("utf-8")).hexdigest()


def chain(
    entries: Iterable[LedgerEntry], after_seq: int, after_hash: str
) -> Iterator[LedgerRecord]:
    """Number and link ``entries`` after the current tip of the chain."""
    seq, prev = after_seq, after_hash
    for entry in entries:
        if entry.kind not in KINDS:
            raise StoreError(f"ledger kind {entry.kind!r} is not one of {', '.join(KINDS)}")
        if isinstance(entry.date, datetime) or not isinstance(entry.date, date):
            # The store keeps a DATE: anything else would read back differently and fail to verify.
            raise StoreError(f"ledger entry date must be a date, got {entry.date!r}")
        seq += 1
        payload = normalise_payload(entry.payload)
        record = LedgerRecord(
            school_id=entry.school_id, pupil_id=entry.pupil_id, date=entry.date,
            session=Session(entry.session), kind=entry.kind, original_code=entry.original_code,
            new_code=entry.new_code, observed_at=entry.observed_at.astimezone(UTC),
            payload=payload, seq=seq, prev_hash=prev, hash="",
        )
        digest = entry_hash(record, seq, prev)
        yield replace(record, hash=digest)
        prev = digest


def verify_chain(records: Iterable[LedgerRecord]) -> LedgerReport:
    """Walk the records in seq order; stop at the first one that does not hold."""
    expected_seq, prev, count = 1, GENESIS_HASH, 0
    last_seq: int | None = None
    for record in records:
        if record.seq != expected_seq:
            return LedgerReport(
                False, count, last_seq, prev, expected_seq,
                f"entry {expected_seq} is missing (the next entry present is {record.seq})",
            )
        if record.prev_hash != prev:
            what = "the chain's start" if expected_seq == 1 else f"entry {expected_seq - 1}'s hash"
            return LedgerReport(
                False, count, last_seq, prev, record.seq,
                f"prev_hash does not match {what}: an earlier entry was rewritten",
            )
        if entry_hash(record, record.seq, record.prev_hash) != record.hash:
            return LedgerReport(
                False, count, last_seq, prev, record.seq,
                "hash does not match the entry's contents: the entry was altered",
            )
        prev, last_seq, count = record.hash, record.seq, count + 1
        expected_seq += 1
    return LedgerReport(True, count, last_seq, prev)
