"""The first-seen payload's text is written directly, per mark (changes._FirstSeenText): it must
be byte for byte the canonical JSON of the dict form, or every ledger hash would change."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registerwatch.errors import StoreError
from registerwatch.schema import SESSION_ORDER, Mark, Session
from registerwatch.store import MarkDiff, Store
from registerwatch.store.changes import _PAYLOAD_FIELDS, first_seen_marks, ledger_entries
from registerwatch.store.ledger import CanonicalText, canonical_json, entry_hash, instant_text

SCHOOL = "wenlock"
SEEN = datetime(2025, 1, 7, 19, 0, tzinfo=UTC)


def dict_form(marks: list[Mark]) -> dict[str, Any]:
    """The payload as it was built before the direct text: a dict per mark."""
    listed = []
    for mark in sorted(marks, key=lambda m: (m.date, SESSION_ORDER[m.session])):
        seen: dict[str, Any] = {
            "date": mark.date.isoformat(),
            "session": mark.session.value,
            "code": mark.code,
        }
        for name in _PAYLOAD_FIELDS:
            value = getattr(mark, name)
            if value is not None:
                seen[name] = instant_text(value) if isinstance(value, datetime) else value
        listed.append(seen)
    return {"marks": listed}


_ODD = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",))
    | st.sampled_from('"\\\n\t\x00\x7f/é€😀'),
    max_size=12,
)
_ZONES = st.sampled_from([UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=-5))])


@st.composite
def marks(draw: st.DrawFn) -> Mark:
    recorded = draw(
        st.none()
        | st.builds(
            lambda minutes, zone: (
                datetime(2025, 1, 6, 8, tzinfo=UTC).astimezone(zone)
                + timedelta(minutes=minutes, microseconds=minutes % 7)
            ),
            st.integers(0, 2000),
            _ZONES,
        )
    )
    return Mark(
        pupil_id=f"{SCHOOL}:{draw(st.sampled_from(['1', '2', 'é']))}",
        date=date(2025, 1, 6) + timedelta(days=draw(st.integers(0, 40))),
        session=draw(st.sampled_from(list(Session))),
        code=draw(st.sampled_from(["/", "\\", "L", "N", "I", "#"])),
        vendor_code=draw(st.none() | _ODD),
        minutes_late=draw(st.none() | st.integers(0, 10**12)),
        comment=draw(st.none() | _ODD),
        recorded_at=recorded,
        recorded_by=draw(st.none() | _ODD),
        source_ref=draw(st.none() | _ODD),
    )


def _distinct(listed: list[Mark]) -> list[Mark]:
    return list({(m.pupil_id, m.date, m.session): m for m in listed}.values())


@settings(max_examples=200, deadline=None)
@given(st.lists(marks(), min_size=1, max_size=30).map(_distinct))
def test_the_direct_text_is_the_canonical_json_of_the_dict_form(new: list[Mark]):
    entries = ledger_entries(SCHOOL, MarkDiff(new=new), [], [], SEEN)
    for entry in entries:
        mine = [m for m in new if m.pupil_id == entry.pupil_id]
        assert isinstance(entry.payload, CanonicalText)
        assert entry.payload.text == canonical_json(dict_form(mine))
        # And it reads back as that dict (what the store returns, what verify rehashes).
        assert dict(entry.payload) == dict_form(mine)
        assert canonical_json(dict(entry.payload)) == entry.payload.text


def test_one_pupils_hash_is_pinned(store: Store):
    """A fixed pupil's entry hashes as it did when the dict form built it (hash recorded then)."""
    new = [
        Mark(
            pupil_id=f"{SCHOOL}:1",
            date=date(2025, 1, 6) + timedelta(days=day),
            session=session,
            code="L" if day else "/",
            vendor_code="L5" if day else None,
            minutes_late=day or None,
            recorded_at=datetime(2025, 1, 6, 9, tzinfo=UTC) if day else None,
            recorded_by='Ms "O\'Brien" é' if day else None,
            source_ref=f"ref-{day}-{session}",
        )
        for day in range(3)
        for session in Session
    ]
    [entry] = ledger_entries(SCHOOL, MarkDiff(new=new), [], [], SEEN)
    [record] = store.append_ledger([entry])
    assert record.hash == entry_hash(entry, 1, "0" * 64)
    assert record.hash == PINNED_HASH
    assert store.verify_ledger().ok
    assert [m["code"] for m in first_seen_marks(store.ledger()[0])] == ["/", "/"] + ["L"] * 4


PINNED_HASH = "8fbf456ab075a9f183dece566647cb63a5fc9289ecafcceaef9926dc98a6a557"


def test_a_value_that_cannot_be_json_is_refused():
    bad = Mark.model_construct(
        pupil_id=f"{SCHOOL}:1",
        date=date(2025, 1, 6),
        session=Session.AM,
        code="/",
        vendor_code=None,
        minutes_late=float("nan"),
        comment=None,
        recorded_at=None,
        recorded_by=None,
        source_ref=None,
    )
    with pytest.raises(StoreError, match="cannot be stored as JSON"):
        ledger_entries(SCHOOL, MarkDiff(new=[bad]), [], [], SEEN)
