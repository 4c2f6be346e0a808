"""A pupil's marks first seen in one sync are one ``observed_new`` entry listing them all; older
stores' one entry per mark still verifies and reads the same through ``first_seen_marks``."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registerwatch.errors import StoreError
from registerwatch.schema import Mark, Session
from registerwatch.store import LedgerEntry, MarkDiff, Store
from registerwatch.store.changes import _mark_payload, first_seen_marks, ledger_entries
from registerwatch.store.ledger import (
    CanonicalPayload,
    CanonicalText,
    LedgerKind,
    canonical_json,
    entry_hash,
    instant_text,
    link,
    normalise_payload,
)

SCHOOL = "wenlock"
SEEN = datetime(2025, 1, 7, 19, 0, tzinfo=UTC)
LONDON = ZoneInfo("Europe/London")


def mark(pupil: str, day: int, session: Session, code: str = "/", **fields) -> Mark:
    return Mark(
        pupil_id=f"{SCHOOL}:{pupil}",
        date=date(2025, 1, 6) + timedelta(days=day),
        session=session,
        code=code,
        **fields,
    )


FULL = {
    "vendor_code": "L5",
    "minutes_late": 7,
    "comment": "a note the ledger must never keep",
    "recorded_at": datetime(2025, 1, 8, 9, 5, tzinfo=LONDON),
    "recorded_by": "Ms Example",
    "source_ref": "att-17",
}


def test_one_entry_per_pupil_lists_every_mark_in_date_and_session_order():
    new = [
        mark("2", 1, Session.PM, "N"),
        mark("1", 2, Session.AM, "L", **FULL),
        mark("1", 0, Session.PM),
        mark("1", 0, Session.AM),
    ]
    entries = ledger_entries(SCHOOL, MarkDiff(new=new), [], [], SEEN)

    assert [(e.pupil_id, e.date, e.session, e.kind, e.new_code) for e in entries] == [
        (f"{SCHOOL}:1", date(2025, 1, 6), Session.AM, LedgerKind.OBSERVED_NEW, None),
        (f"{SCHOOL}:2", date(2025, 1, 7), Session.PM, LedgerKind.OBSERVED_NEW, None),
    ]
    first = first_seen_marks(entries[0])
    assert [(m["date"], m["session"], m["code"]) for m in first] == [
        ("2025-01-06", "AM", "/"),
        ("2025-01-06", "PM", "/"),
        ("2025-01-08", "AM", "L"),
    ]
    # Every payload field of a mark (never its comment), as a per-mark entry held them.
    late = first[2]
    assert late == {
        "date": "2025-01-08",
        "session": "AM",
        "code": "L",
        **normalise_payload(_mark_payload(new[1])),
    }
    assert late["recorded_at"] == instant_text(FULL["recorded_at"]) == "2025-01-08T09:05:00.000000Z"
    assert "comment" not in late


def test_the_built_payload_is_its_canonical_text_and_reads_back_as_built(store: Store):
    new = [mark(str(p), d, s, **FULL) for p in range(3) for d in range(4) for s in Session]
    entries = ledger_entries(SCHOOL, MarkDiff(new=new), [], [], SEEN)
    for built in entries:
        payload = built.payload
        assert isinstance(payload, CanonicalText)
        assert payload.text == canonical_json(dict(payload))
        assert normalise_payload(payload) == payload

    records = store.append_ledger(entries)
    assert store.ledger() == records
    assert [r.hash for r in records] == [
        entry_hash(e, r.seq, r.prev_hash) for e, r in zip(entries, records, strict=True)
    ]
    assert store.verify_ledger().ok
    assert sum(len(first_seen_marks(r)) for r in store.ledger()) == len(new)


def test_a_payload_that_cannot_be_json_is_refused_when_built():
    with pytest.raises(StoreError, match="cannot be stored as JSON"):
        CanonicalPayload({"marks": [float("nan")]})


def test_an_older_stores_entry_per_mark_reads_the_same(store: Store):
    old_style = LedgerEntry(
        school_id=SCHOOL,
        pupil_id=f"{SCHOOL}:1",
        date=date(2025, 1, 8),
        session=Session.AM,
        kind=LedgerKind.OBSERVED_NEW,
        original_code=None,
        new_code="L",
        observed_at=SEEN,
        payload=_mark_payload(mark("1", 2, Session.AM, "L", **FULL)),
    )
    [record] = store.append_ledger([old_style])
    assert store.verify_ledger().ok
    [batched] = ledger_entries(
        SCHOOL, MarkDiff(new=[mark("1", 2, Session.AM, "L", **FULL)]), [], [], SEEN
    )
    assert first_seen_marks(record) == first_seen_marks(batched)
    assert first_seen_marks(old_style) == first_seen_marks(batched)  # before it was stored


def test_only_observed_new_entries_list_marks_first_seen():
    change = LedgerEntry(
        SCHOOL, f"{SCHOOL}:1", date(2025, 1, 8), Session.AM, "observed_change", "N", "I", SEEN
    )
    assert first_seen_marks(change) == []


_JSON_LEAF = st.none() | st.text(max_size=8) | st.integers(-(2**53), 2**53)
_JSON = st.recursive(
    _JSON_LEAF,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200)
@given(st.dictionaries(st.text(max_size=6), _JSON, max_size=5))
def test_a_canonical_payload_hashes_as_the_same_payload_given_plainly(value):
    plain = LedgerEntry(
        SCHOOL, f"{SCHOOL}:1", date(2025, 1, 8), Session.AM, "observed_new", None, None, SEEN, value
    )
    built = replace(plain, payload=CanonicalPayload(value))
    [(plain_record, plain_text)] = link([plain], 0, "0" * 64)
    [(built_record, built_text)] = link([built], 0, "0" * 64)
    assert built_text == plain_text
    assert built_record.hash == plain_record.hash == entry_hash(plain, 1, "0" * 64)
    assert built_record.payload == plain_record.payload
