"""Which of the changes sync sees are ledgered, and how: from a :class:`MarkDiff` (and the marks
flagged deleted, and the MIS's new amendment records) to ledger entries, and from the stored
entries to "observed" amendment records. Pure: :meth:`Store.record_changes` writes them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime
from operator import attrgetter
from typing import Any

from registerwatch.errors import StoreError
from registerwatch.schema import SESSION_ORDER, Amendment, AmendmentSource, Mark, Session
from registerwatch.store.ledger import (
    CanonicalText,
    LedgerEntry,
    LedgerKind,
    LedgerRecord,
    instant_text,
    json_text,
)
from registerwatch.store.records import MarkChange, MarkDiff

# A change to any of these is a change to the register entry, and is ledgered. ``source_ref``
# (the MIS's record id) is plumbing: an MIS that serves duplicate rows may name a different one
# of them on each pull (iSAMS), which is not an amendment to the register.
LEDGERED_FIELDS = frozenset(
    ("code", "vendor_code", "minutes_late", "comment", "recorded_at", "recorded_by")
)

# Mark fields copied into a ledger entry's payload. Not ``comment``: free text can hold
# safeguarding notes, and an append-only, hash-chained ledger can never be redacted later.
_PAYLOAD_FIELDS = ("vendor_code", "minutes_late", "recorded_at", "recorded_by", "source_ref")
_KIND_ORDER = {
    LedgerKind.OBSERVED_NEW: 0,
    LedgerKind.OBSERVED_CHANGE: 1,
    LedgerKind.OBSERVED_DELETED: 2,
    LedgerKind.MIS_AMENDMENT: 3,
}


def _mark_payload(mark: Mark) -> dict[str, Any]:
    return {
        name: getattr(mark, name) for name in _PAYLOAD_FIELDS if getattr(mark, name) is not None
    }


class _FirstSeenText:
    """Each mark's object in a pupil's ``observed_new`` entry (see first_seen_marks), written as
    the canonical JSON text the dict form would give: its keys in sorted order, each value as
    :func:`json_text` spells it (tests/store pin the equality, odd strings included). A
    school's marks share few codes, dates, sessions, instants, teachers and vendor codes: the
    text of each distinct one is written once; only minutes_late and source_ref are per mark."""

    def __init__(self) -> None:
        self.heads: dict[tuple[Any, Any], str] = {}  # (code, date) -> '{"code":..,"date":..'
        self.sessions: dict[Any, str] = {}
        self.instants: dict[Any, str] = {}
        self.recorded_by: dict[Any, str] = {}
        self.vendor_codes: dict[Any, str] = {}

    def __call__(self, mark: Mark) -> str:
        # Keys in sorted order: code, date, minutes_late, recorded_at, recorded_by, session,
        # source_ref, vendor_code. Cached by value only for exact str/date/datetime values:
        # equal values of other types (1, 1.0, True) can have different JSON spellings.
        code, day = mark.code, mark.date
        head_key = (code, day)
        text = self.heads.get(head_key) if type(code) is str and type(day) is date else None
        if text is None:
            text = '{"code":' + json_text(code) + ',"date":' + json_text(day.isoformat())
            if type(code) is str and type(day) is date:
                self.heads[head_key] = text
        value: Any = mark.minutes_late
        if value is not None:
            text += ',"minutes_late":' + json_text(value)
        value = mark.recorded_at
        if value is not None:
            text += self.instants.get(value) or self._cached(
                self.instants, value, ',"recorded_at":', instant_text
            )
        value = mark.recorded_by
        if value is not None:
            text += self.recorded_by.get(value) or self._cached(
                self.recorded_by, value, ',"recorded_by":', None
            )
        session = mark.session
        text += self.sessions.get(session) or self._cached(
            self.sessions, session, ',"session":', _session_text
        )
        value = mark.source_ref
        if value is not None:
            text += ',"source_ref":' + json_text(value)
        value = mark.vendor_code
        if value is not None:
            text += self.vendor_codes.get(value) or self._cached(
                self.vendor_codes, value, ',"vendor_code":', None
            )
        return text + "}"

    @staticmethod
    def _cached(
        cache: dict[Any, str], value: Any, prefix: str, convert: Callable[[Any], Any] | None
    ) -> str:
        # Called when ``value`` is not cached (the caller looked first: cached texts are never
        # empty).
        text = prefix + json_text(value if convert is None else convert(value))
        if type(value) in _CACHEABLE:
            cache[value] = text
        return text


# A mark's date, then session: "AM" < "PM" as text, the order SESSION_ORDER gives.
_DATE_SESSION = attrgetter("date", "session")
# Exact types whose equal values always have one JSON spelling (a StrEnum session is a str).
_CACHEABLE = frozenset((str, datetime, Session))


def _session_text(session: Any) -> Any:
    # The dict form held Session(...).value: a session given as plain "AM" spells the same.
    return Session(session).value


def _first_seen_entries(school_id: str, marks: Sequence[Mark], now: datetime) -> list[LedgerEntry]:
    """One ``observed_new`` entry per pupil listing every mark of theirs this sync saw first.

    An entry per mark cost its own canonical JSON, hash and row in four B-trees: ~560k entries
    per school year, most of a first sync's write. The pupil's entry is hashed over the same
    content (every mark's date, session, code and fields), so the chain still proves what was
    seen; the entry's date and session are its first mark's and its new_code is None. Changes
    and deletions, which the amendment rules read, stay one entry each.
    """
    first_seen = _FirstSeenText()
    by_pupil: dict[str, list[Mark]] = {}
    for mark in marks:
        by_pupil.setdefault(mark.pupil_id, []).append(mark)
    entries = []
    for pupil_id, seen in by_pupil.items():
        seen.sort(key=_DATE_SESSION)
        try:
            text = '{"marks":[' + ",".join(map(first_seen, seen)) + "]}"
        except (TypeError, ValueError) as exc:
            raise StoreError(f"ledger payload cannot be stored as JSON: {exc}") from None
        entries.append(
            LedgerEntry(
                school_id=school_id,
                pupil_id=pupil_id,
                date=seen[0].date,
                session=seen[0].session,
                kind=LedgerKind.OBSERVED_NEW,
                original_code=None,
                new_code=None,
                observed_at=now,
                payload=CanonicalText(text),
            )
        )
    return entries


def ledgered_changes(diff: MarkDiff) -> list[MarkChange]:
    """The changes that alter the register entry (see LEDGERED_FIELDS), restorations included."""
    return [c for c in diff.changed if c.restored or LEDGERED_FIELDS.intersection(c.fields)]


def ledger_entries(
    school_id: str,
    diff: MarkDiff,
    deleted: Sequence[Mark],
    new_mis: Sequence[Amendment],
    now: datetime,
) -> list[LedgerEntry]:
    """One entry per pupil for the marks seen first (listing them all), one per change,
    deletion and new MIS amendment record, in a stable order (date, session, pupil, kind), so
    that two runs over the same data write the same chain."""
    entries = _first_seen_entries(school_id, diff.new, now)
    for change in ledgered_changes(diff):
        payload: dict[str, Any] = {"fields": list(change.fields)}
        shown = [f for f in change.fields if f in _PAYLOAD_FIELDS]
        if shown:
            payload["before"] = {f: getattr(change.old, f) for f in shown}
            payload["after"] = {f: getattr(change.new, f) for f in shown}
        if change.restored:
            payload["restored"] = True
        entries.append(
            LedgerEntry(
                school_id=school_id,
                pupil_id=change.key.pupil_id,
                date=change.key.date,
                session=change.key.session,
                kind=LedgerKind.OBSERVED_CHANGE,
                # A restored mark had been flagged deleted: its previous state was "no entry".
                original_code=None if change.restored else change.old_code,
                new_code=change.new_code,
                observed_at=now,
                payload=payload,
            )
        )
    for mark in deleted:
        entries.append(
            LedgerEntry(
                school_id=school_id,
                pupil_id=mark.pupil_id,
                date=mark.date,
                session=mark.session,
                kind=LedgerKind.OBSERVED_DELETED,
                original_code=mark.code,
                new_code=None,
                observed_at=now,
                payload=_mark_payload(mark),
            )
        )
    for amendment in new_mis:
        entries.append(
            LedgerEntry(
                school_id=school_id,
                pupil_id=amendment.pupil_id,
                date=amendment.date,
                session=amendment.session,
                kind=LedgerKind.MIS_AMENDMENT,
                original_code=amendment.original_code,
                new_code=amendment.amended_code,
                observed_at=now,
                payload={
                    k: v
                    for k, v in amendment.model_dump(
                        include={
                            "reason",
                            "amended_at",
                            "amended_by_name",
                            "amended_by_position",
                            "source_ref",
                        }
                    ).items()
                    if v is not None
                },
            )
        )
    entries.sort(
        key=lambda e: (
            e.date,
            SESSION_ORDER[e.session],
            e.pupil_id,
            _KIND_ORDER[e.kind],
            e.original_code or "",
            e.new_code or "",
        )
    )
    return entries


def first_seen_marks(record: LedgerEntry) -> list[dict[str, Any]]:
    """The marks an ``observed_new`` entry records, each as ``{"date", "session", "code"}`` plus
    the mark's payload fields (vendor_code, minutes_late, recorded_at, recorded_by, source_ref
    when known), dates and instants as ISO text.

    Sync ledgers a pupil's marks first seen in one run as one entry whose payload is
    ``{"marks": [...]}`` in this form; stores written before that hold one entry per mark, with
    the mark's date, session and code in the entry's own fields. Both read the same here.
    """
    if record.kind != LedgerKind.OBSERVED_NEW:
        return []
    marks = record.payload.get("marks")
    if isinstance(marks, list):
        return [dict(mark) for mark in marks]
    return [
        {
            "date": record.date.isoformat(),
            "session": str(record.session),
            "code": record.new_code,
            **{
                k: instant_text(v) if isinstance(v, datetime) else v
                for k, v in record.payload.items()
            },
        }
    ]


def observed_amendments(records: Sequence[LedgerRecord], diff: MarkDiff) -> list[Amendment]:
    """Amendment records (source "observed") for the code changes and deletions sync saw.

    ``amended_at`` / ``amended_by_name`` are what the MIS says about the entry now (its
    recorded_at / recorded_by), when it says anything; the reason is never known.
    """
    current: dict[tuple[str, date, str], Mark] = {
        (c.key.pupil_id, c.key.date, str(c.key.session)): c.new for c in diff.changed
    }
    out: list[Amendment] = []
    for record in records:
        if record.kind == LedgerKind.OBSERVED_DELETED or (
            record.kind == LedgerKind.OBSERVED_CHANGE and record.original_code != record.new_code
        ):
            mark = current.get((record.pupil_id, record.date, str(record.session)))
            out.append(
                Amendment(
                    pupil_id=record.pupil_id,
                    date=record.date,
                    session=record.session,
                    original_code=record.original_code,
                    amended_code=record.new_code,
                    amended_at=mark.recorded_at if mark else None,
                    amended_by_name=mark.recorded_by if mark else None,
                    source=AmendmentSource.OBSERVED,
                    source_ref=f"ledger:{record.seq}",
                )
            )
    return out
