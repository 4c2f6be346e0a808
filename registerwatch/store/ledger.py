"""The amendment ledger's entries and hash chain.

Registers are legal documents: every change sync sees to a register entry (and every amendment
record the MIS supplies) is appended here, and each entry's hash covers its own fields, its
sequence number and the previous entry's hash. Altering, removing or reordering any entry
therefore breaks the chain at that entry or the next, and :func:`verify_chain` names where.

The chain cannot by itself show that entries were cut off the *end*: keep the tip
(``LedgerReport.last_seq`` / ``last_hash``, printed by ``registerwatch ledger verify``) somewhere
the store's owner cannot rewrite, and compare (``runs.ledger_tip``, the tip sink).

With a key configured (:class:`~registerwatch.store.ledger_keys.LedgerKeys`, ``[ledger]`` in the
config) each entry's hash is an HMAC-SHA256 under a key kept outside the store, and the entry
records the key's id: someone who can write the store but not read the key cannot recompute the
chain after rewriting an entry. Without a key the hash is plain SHA-256 (anyone can recompute it).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import Enum, StrEnum
from typing import Any

from registerwatch.errors import LedgerIntegrityError, StoreError
from registerwatch.schema import Session
from registerwatch.store.ledger_keys import LedgerKeys, hmac_sha256_hex

GENESIS_HASH = "0" * 64


class LedgerKind(StrEnum):
    """What an entry records. The values are stored and hashed: never rename one."""

    OBSERVED_CHANGE = "observed_change"  # sync saw a stored mark's content change
    # Sync saw marks for the first time: one entry per pupil and sync whose payload lists every
    # mark ({"marks": [...]}); older stores hold one per mark (changes.first_seen_marks).
    OBSERVED_NEW = "observed_new"
    OBSERVED_DELETED = "observed_deleted"  # a stored mark vanished from the MIS
    MIS_AMENDMENT = "mis_amendment"  # the MIS's own amendment record, first seen


KINDS: tuple[str, ...] = tuple(kind.value for kind in LedgerKind)
# The kinds that are changes to a register entry: what the amendment rules check.
OBSERVED_KINDS: tuple[LedgerKind, ...] = (LedgerKind.OBSERVED_CHANGE, LedgerKind.OBSERVED_DELETED)


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
    key_id: str | None = None  # the HMAC key that signed it; None: plain SHA-256


@dataclass(frozen=True)
class AcceptedBreak:
    """A break in the chain a run was told to go on past (``--accept-broken-ledger``): entries
    ``first``..``last`` are missing or do not verify, and ``run_id`` recorded why."""

    first: int
    last: int
    run_id: int | None
    reason: str

    def covers(self, first: int, last: int) -> bool:
        return self.first <= first and last <= self.last

    def to_dict(self) -> dict[str, Any]:
        return {"first": self.first, "last": self.last, "run": self.run_id, "reason": self.reason}


@dataclass(frozen=True)
class LedgerReport:
    """The outcome of walking the chain: ok, or the first broken entry and why."""

    ok: bool
    entries: int
    last_seq: int | None
    last_hash: str
    broken_seq: int | None = None
    reason: str | None = None
    # The last seq of the broken stretch (entries broken_seq..broken_to missing or bad).
    broken_to: int | None = None
    accepted: tuple[AcceptedBreak, ...] = ()  # breaks gone past, as runs were told to
    # What the walk saw, for the report (not part of a report's identity).
    unkeyed: int = field(default=0, compare=False)  # entries with a plain SHA-256 hash
    key_ids: tuple[str, ...] = field(default=(), compare=False)  # the keys that signed the rest

    def raise_if_broken(self) -> None:
        if not self.ok:
            raise LedgerIntegrityError(f"ledger entry {self.broken_seq}: {self.reason}")


@dataclass(frozen=True)
class LedgerCheck:
    """``registerwatch ledger verify``'s answer: the chain's tip, or where it first breaks and
    the school of the broken entry."""

    ok: bool
    entries: int
    last_seq: int | None
    last_hash: str
    broken_seq: int | None = None
    broken_school_id: str | None = None
    reason: str | None = None
    broken_to: int | None = None
    accepted: tuple[AcceptedBreak, ...] = ()
    unkeyed: int = 0
    key_ids: tuple[str, ...] = ()
    keyed: bool = False  # whether a key was configured for this check

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "last_seq": self.last_seq,
            "last_hash": self.last_hash,
            "broken": None
            if self.ok
            else {"seq": self.broken_seq, "school": self.broken_school_id, "reason": self.reason},
            "accepted_breaks": [a.to_dict() for a in self.accepted],
            "keyed": self.keyed,
            "unkeyed_entries": self.unkeyed,
            "key_ids": list(self.key_ids),
        }


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return instant_text(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, CanonicalText):  # a payload not yet parsed: its value, as a dict
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


# json.dumps with these arguments builds a new encoder on every call; one encoder, built once,
# writes exactly the same text (json.dumps(v, **kw) is JSONEncoder(**kw).encode(v)).
_CANONICAL_ENCODER = json.JSONEncoder(
    sort_keys=True,
    separators=(",", ":"),
    ensure_ascii=False,
    allow_nan=False,
    default=_json_default,
)


def canonical_json(value: Any) -> str:
    """One spelling for one value: sorted keys, no spaces, UTF-8, no NaN."""
    return _CANONICAL_ENCODER.encode(value)


def normalise_payload(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The payload as it will read back from the store (dates and enums become strings)."""
    return dict(_stored_payload(payload)[1])


def instant_text(value: datetime) -> str:
    if value.tzinfo is None or value.utcoffset() is None:
        raise StoreError(f"naive datetime {value.isoformat()} refused: give it a timezone")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# What json.dumps(..., ensure_ascii=False) writes for a str (the C encoder when available).
_encode_str = json.encoder.encode_basestring


def json_text(value: Any) -> str:
    """canonical_json(value), without a json.dumps call for the common str and None."""
    kind = type(value)
    if kind is str:
        return _encode_str(value)
    if value is None:
        return "null"
    if kind is int:  # json writes an int as int.__repr__, which is str() for an exact int
        return str(value)
    return canonical_json(value)


def _digest(
    entry: LedgerEntry,
    session: object,
    observed_text: str,
    payload_text: str,
    seq: int,
    prev_hash: str,
    mac: Callable[[bytes], str] | None = None,
) -> str:
    # The canonical JSON of the document below, spelt out in its sorted key order so that the
    # payload, already canonical text, is not serialised once more inside it. The result is the
    # text canonical_json(document) gives (tests/store pin the format and the equivalence):
    #   {"seq", "school_id", "pupil_id", "date", "session", "kind", "original_code",
    #    "new_code", "observed_at", "payload", "prev_hash"}
    text = "".join(
        (
            '{"date":',
            json_text(entry.date.isoformat()),
            ',"kind":',
            json_text(str(entry.kind)),
            ',"new_code":',
            json_text(entry.new_code),
            ',"observed_at":',
            json_text(observed_text),
            ',"original_code":',
            json_text(entry.original_code),
            ',"payload":',
            payload_text,
            ',"prev_hash":',
            json_text(prev_hash),
            ',"pupil_id":',
            json_text(entry.pupil_id),
            ',"school_id":',
            json_text(entry.school_id),
            ',"seq":',
            json_text(seq),
            ',"session":',
            json_text(str(session)),
            "}",
        )
    )
    if mac is None:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()
    return mac(text.encode("utf-8"))


def entry_hash(entry: LedgerEntry, seq: int, prev_hash: str, key: bytes | None = None) -> str:
    """sha256 (or, given ``key``, HMAC-SHA256) over the canonical JSON of the entry's fields,
    its seq and the previous hash."""
    return _entry_digest(entry, seq, prev_hash, None if key is None else hmac_sha256_hex(key))


def _entry_digest(
    entry: LedgerEntry, seq: int, prev_hash: str, mac: Callable[[bytes], str] | None
) -> str:
    return _digest(
        entry,
        entry.session,
        instant_text(entry.observed_at),
        canonical_json(entry.payload),
        seq,
        prev_hash,
        mac,
    )


class CanonicalPayload(dict[str, Any]):
    """A payload built in its stored form, its canonical JSON text computed once.

    For payloads too large to serialise, read back and walk again per entry (a pupil's marks
    first seen, hundreds per entry): the builder promises string keys and JSON-native values
    only (str, int, None, and lists and dicts of them), so the value reads back from the store
    exactly as it is and the text is what :func:`canonical_json` gives for it. ``ledger verify``
    recomputes the hash from the stored value, so a broken promise fails verification.
    """

    __slots__ = ("text",)

    def __init__(self, value: Mapping[str, Any]) -> None:
        super().__init__(value)
        try:
            self.text = canonical_json(self)
        except (TypeError, ValueError) as exc:
            raise StoreError(f"ledger payload cannot be stored as JSON: {exc}") from None


class CanonicalText(Mapping[str, Any]):
    """A payload given as its canonical JSON text, read as a mapping only when asked.

    For the payloads a first sync builds (a pupil's marks first seen, hundreds per entry): the
    builder writes the text directly and promises it is what :func:`canonical_json` gives for
    the value it parses to, so the value, which the write never needs, is parsed only if read
    (``json.loads`` on first use). ``ledger verify`` recomputes the hash from the stored value,
    so a broken promise fails verification.
    """

    __slots__ = ("_value", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._value: dict[str, Any] | None = None

    def _loaded(self) -> dict[str, Any]:
        if self._value is None:
            self._value = json.loads(self.text)
        return self._value

    def __getitem__(self, key: str) -> Any:
        return self._loaded()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaded())

    def __len__(self) -> int:
        return len(self._loaded())

    def __repr__(self) -> str:
        return f"CanonicalText({self.text!r})"


def _only_str_keys(value: Any) -> bool:
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return False
            if isinstance(item, dict | list | tuple) and not _only_str_keys(item):
                return False
        return True
    if isinstance(value, list | tuple):
        return all(_only_str_keys(item) for item in value)
    return True


def _stored_payload(payload: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    """The payload's canonical JSON text and the value that text reads back as."""
    if type(payload) is CanonicalPayload or type(payload) is CanonicalText:
        return payload.text, payload
    try:
        text = canonical_json(dict(payload))
        value: dict[str, Any] = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"ledger payload cannot be stored as JSON: {exc}") from None
    if not _only_str_keys(payload):
        # A non-string key reads back as a string, which can sort differently ({10: .., 9: ..}):
        # the hash covers the payload as stored and read back, so spell that one.
        text = canonical_json(value)
    return text, value


def link(
    entries: Iterable[LedgerEntry],
    after_seq: int,
    after_hash: str,
    keys: LedgerKeys | None = None,
) -> Iterator[tuple[LedgerRecord, str]]:
    """Number and link ``entries`` after the current tip of the chain (signed with ``keys``'
    current key, if given); each record comes with its payload's canonical JSON text, which is
    what the store writes (the payload is serialised once per entry, for the hash and for the
    row alike)."""
    seq, prev = after_seq, after_hash
    key_id = keys.signing_id if keys is not None else None
    mac = keys.mac(key_id) if keys is not None and key_id is not None else None
    # A sync's entries share one observed_at: format it once, not once per entry.
    last_instant: datetime | None = None
    observed_at, observed_text = datetime.min, ""
    for entry in entries:
        try:
            kind = LedgerKind(entry.kind)
        except ValueError:
            raise StoreError(
                f"ledger kind {entry.kind!r} is not one of {', '.join(KINDS)}"
            ) from None
        if isinstance(entry.date, datetime) or not isinstance(entry.date, date):
            # The store keeps a DATE: anything else would read back differently and fail to verify.
            raise StoreError(f"ledger entry date must be a date, got {entry.date!r}")
        seq += 1
        payload_text, payload = _stored_payload(entry.payload)
        session = Session(entry.session)
        if entry.observed_at is not last_instant:
            last_instant = entry.observed_at
            observed_at = last_instant.astimezone(UTC)
            observed_text = instant_text(observed_at)
        digest = _digest(entry, session, observed_text, payload_text, seq, prev, mac)
        yield (
            LedgerRecord(
                school_id=entry.school_id,
                pupil_id=entry.pupil_id,
                date=entry.date,
                session=session,
                kind=kind,
                original_code=entry.original_code,
                new_code=entry.new_code,
                observed_at=observed_at,
                payload=payload,
                seq=seq,
                prev_hash=prev,
                hash=digest,
                key_id=key_id,
            ),
            payload_text,
        )
        prev = digest


def chain(
    entries: Iterable[LedgerEntry],
    after_seq: int,
    after_hash: str,
    keys: LedgerKeys | None = None,
) -> Iterator[LedgerRecord]:
    """Number and link ``entries`` after the current tip of the chain."""
    for record, _payload_text in link(entries, after_seq, after_hash, keys):
        yield record


class _Walk:
    """The state of one walk along the chain."""

    def __init__(self, keys: LedgerKeys | None, accepted: Sequence[AcceptedBreak]) -> None:
        self.keys = keys
        self.accepted = accepted
        self.gone_past: list[AcceptedBreak] = []
        self.unkeyed = 0
        self.key_ids: set[str] = set()
        self.keyed_seen: int | None = None  # the first keyed entry's seq

    def acceptance(self, first: int, last: int) -> AcceptedBreak | None:
        for accepted in self.accepted:
            if accepted.covers(first, last):
                if accepted not in self.gone_past:
                    self.gone_past.append(accepted)
                return accepted
        return None

    def content_problem(self, record: LedgerRecord) -> str | None:
        """Why the record's own hash does not hold (its key, its contents), or None."""
        key_id = record.key_id
        if key_id is None:
            required = self.keys.keyed_from_seq if self.keys is not None else None
            if self.keyed_seen is not None:
                return (
                    f"entry has no key but entry {self.keyed_seen} before it was keyed: it was "
                    "rewritten by someone without the key"
                )
            if required is not None and record.seq >= required:
                return (
                    f"entry has no key, but [ledger] keyed_from_seq = {required} says every "
                    "entry from there on is keyed: it was rewritten by someone without the key"
                )
            self.unkeyed += 1
            mac = None
        else:
            if self.keyed_seen is None:
                self.keyed_seen = record.seq
            mac = self.keys.mac(key_id) if self.keys is not None else None
            if mac is None:
                return (
                    f"entry is signed with ledger key {key_id!r}, which is not configured: add "
                    "it to [ledger] (key_id/key_file, or [[ledger.retired_keys]]) to check it"
                )
            self.key_ids.add(key_id)
        if _entry_digest(record, record.seq, record.prev_hash, mac) != record.hash:
            if key_id is None:
                return "hash does not match the entry's contents: the entry was altered"
            return (
                f"hash does not match the entry's contents under key {key_id!r}: the entry was "
                "altered (or re-signed without the key)"
            )
        return None


def verify_chain(
    records: Iterable[LedgerRecord],
    keys: LedgerKeys | None = None,
    accepted: Sequence[AcceptedBreak] = (),
    *,
    after: LedgerRecord | None = None,
) -> LedgerReport:
    """Walk the records in seq order; stop at the first one that does not hold.

    A break that an accepted break covers (a run was told ``--accept-broken-ledger`` about it)
    is listed in the report and the walk goes on past it, so a later break is still found.

    ``after``: an entry verified before, from which the records continue (sync's check walks
    only what was appended since the tip it last verified); the report counts only the
    records walked."""
    walk = _Walk(keys, accepted)
    expected_seq, prev, count = 1, GENESIS_HASH, 0
    last_seq: int | None = None
    if after is not None:
        expected_seq, prev, last_seq = after.seq + 1, after.hash, after.seq
        walk.keyed_seen = after.seq if after.key_id is not None else None

    def broken(seq: int, reason: str, to: int | None = None) -> LedgerReport:
        return LedgerReport(
            False,
            count,
            last_seq,
            prev,
            seq,
            reason,
            broken_to=seq if to is None else to,
            accepted=tuple(walk.gone_past),
            unkeyed=walk.unkeyed,
            key_ids=tuple(sorted(walk.key_ids)),
        )

    for record in records:
        relink = False  # after an accepted break the link to the entry before is not checked
        if record.seq != expected_seq:
            if record.seq < expected_seq or walk.acceptance(expected_seq, record.seq - 1) is None:
                return broken(
                    expected_seq,
                    f"entry {expected_seq} is missing (the next entry present is {record.seq})",
                    max(expected_seq, record.seq - 1),
                )
            relink = True
        if (
            not relink
            and record.prev_hash != prev
            and walk.acceptance(record.seq, record.seq) is None
        ):
            what = "the chain's start" if expected_seq == 1 else f"entry {expected_seq - 1}'s hash"
            return broken(
                record.seq,
                f"prev_hash does not match {what}: an earlier entry was rewritten",
            )
        problem = walk.content_problem(record)
        if problem is not None and walk.acceptance(record.seq, record.seq) is None:
            return broken(record.seq, problem)
        prev, last_seq, count = record.hash, record.seq, count + 1
        expected_seq = record.seq + 1
    return LedgerReport(
        True,
        count,
        last_seq,
        prev,
        accepted=tuple(walk.gone_past),
        unkeyed=walk.unkeyed,
        key_ids=tuple(sorted(walk.key_ids)),
    )
