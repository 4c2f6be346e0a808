"""The lean read of marks (``Store.mark_tokens``) and the per-pupil summary a full scan rebuilds
and saves (``summary_rebuild`` / ``save_summary``), on each backend."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from registerwatch.schema import Mark
from registerwatch.store import Store
from registerwatch.store.summary import SummaryUpdate, _appended

SCHOOL = "wenlock"
OTHER = "brook"
T1 = datetime(2025, 10, 1, 19, 0, tzinfo=UTC)
T2 = datetime(2025, 10, 2, 19, 0, tzinfo=UTC)
AS_OF = date(2025, 10, 20)


def school_marks(school: str, pupils: int = 3) -> list[Mark]:
    """Two sessions a day from 22 Sep to 10 Oct 2025 (two months), a late mark with its minutes
    now and then, written in date order as sync writes them."""
    marks = []
    day = date(2025, 9, 22)
    while day <= date(2025, 10, 10):
        for n in range(pupils):
            for session in ("AM", "PM"):
                late = (day.day + n) % 5 == 0 and session == "AM"
                marks.append(
                    Mark(
                        pupil_id=f"{school}:P{n}",
                        date=day,
                        session=session,
                        code="L" if late else "/",
                        minutes_late=day.day if late else None,
                    )
                )
        day += timedelta(days=1)
    return marks


@pytest.fixture
def loaded(store: Store) -> Store:
    store.upsert_marks(school_marks(SCHOOL), SCHOOL, at=T1)
    store.upsert_marks(school_marks(OTHER, pupils=2), OTHER, at=T1)
    store.mark_deleted(SCHOOL, [(f"{SCHOOL}:P1", date(2025, 10, 1), "PM")], at=T2)
    return store


def test_the_whole_school_read_gives_what_the_per_pupil_read_gives(loaded: Store):
    # On SQLite the whole school is read through the (school_id, date) index, a pupil list
    # through the key: the same live marks either way, and only this school's.
    whole = {p: sorted(tokens) for p, tokens in loaded.mark_tokens(SCHOOL).items()}
    by_pupil = loaded.mark_tokens(SCHOOL, pupil_ids=[f"{SCHOOL}:P{n}" for n in range(3)])

    assert whole == {p: sorted(tokens) for p, tokens in by_pupil.items()}
    assert sorted(whole) == [f"{SCHOOL}:P0", f"{SCHOOL}:P1", f"{SCHOOL}:P2"]
    assert len(whole[f"{SCHOOL}:P0"]) == 19 * 2
    assert "2025-10-01PM/" not in whole[f"{SCHOOL}:P1"]  # flagged deleted
    assert "2025-10-05AML:5" in whole[f"{SCHOOL}:P0"]  # a late mark keeps its minutes


def test_a_rebuild_cuts_each_pupils_sorted_marks_into_months(loaded: Store):
    update = loaded.summary_rebuild(SCHOOL)

    assert update.full
    assert sorted(update.months) == [
        (f"{SCHOOL}:P{n}", month) for n in range(3) for month in ("2025-09", "2025-10")
    ]
    for (_pupil, month), tokens in update.months.items():
        assert tokens == sorted(tokens)
        assert all(token.startswith(month + "-") for token in tokens)
    assert update.months[(f"{SCHOOL}:P0", "2025-09")][:2] == ["2025-09-22AM/", "2025-09-22PM/"]
    merged = {p: sorted(tokens) for p, tokens in loaded.summary_tokens(SCHOOL, update).items()}
    assert merged == {p: sorted(tokens) for p, tokens in loaded.mark_tokens(SCHOOL).items()}


def summary_rows(raw) -> dict[tuple[str, str], tuple[str, str]]:
    rows = raw("SELECT pupil_id, period, marks, updated_at FROM pupil_summary")
    return {(r[0], r[1]): (r[2], str(r[3])) for r in rows}


def test_a_full_save_writes_only_the_pupil_months_that_changed(loaded: Store, raw):
    loaded.save_summary(SCHOOL, loaded.summary_rebuild(SCHOOL), as_of=AS_OF, basis="b", at=T1)
    first = summary_rows(raw)
    assert len(first) == 6
    assert set(loaded.summary_tokens(SCHOOL)) == {f"{SCHOOL}:P{n}" for n in range(3)}

    # The same year rebuilt: nothing is rewritten.
    loaded.save_summary(SCHOOL, loaded.summary_rebuild(SCHOOL), as_of=AS_OF, basis="b", at=T2)
    assert summary_rows(raw) == first

    # P2's October marks deleted in the MIS, P0's September changed: only those rows move.
    october = [
        (f"{SCHOOL}:P2", m.date, m.session) for m in school_marks(SCHOOL) if m.date.month == 10
    ]
    loaded.mark_deleted(SCHOOL, october, at=T2)
    loaded.upsert_marks(
        [Mark(pupil_id=f"{SCHOOL}:P0", date=date(2025, 9, 22), session="AM", code="N")],
        SCHOOL,
        at=T2,
    )
    loaded.save_summary(SCHOOL, loaded.summary_rebuild(SCHOOL), as_of=AS_OF, basis="b", at=T2)
    after = summary_rows(raw)

    assert (f"{SCHOOL}:P2", "2025-10") not in after
    changed = {key for key in after if after[key] != first[key]}
    assert changed == {(f"{SCHOOL}:P0", "2025-09")}
    assert after[(f"{SCHOOL}:P0", "2025-09")][0].startswith("2025-09-22AMN,2025-09-22PM/,")
    state = loaded.scan_state(SCHOOL)
    assert state is not None and state.as_of == AS_OF and state.basis == "b"


def test_an_incremental_save_deletes_only_the_months_left_empty(loaded: Store, raw):
    loaded.save_summary(SCHOOL, loaded.summary_rebuild(SCHOOL), as_of=AS_OF, basis="b", at=T1)
    emptied = (f"{SCHOOL}:P1", "2025-09")
    update = SummaryUpdate(months={emptied: []}, marks_seen_to=T2)

    loaded.save_summary(SCHOOL, update, as_of=AS_OF, basis="b", at=T2)

    rows = summary_rows(raw)
    assert emptied not in rows
    assert len(rows) == 5


def test_changes_appended_or_patched_give_the_rebuilt_months(loaded: Store):
    loaded.save_summary(SCHOOL, loaded.summary_rebuild(SCHOOL), as_of=AS_OF, basis="b", at=T2)
    t3 = T2 + timedelta(days=1)
    new_day = [
        Mark(pupil_id=f"{SCHOOL}:P{n}", date=date(2025, 10, 13), session=s, code="/")
        for n in range(3)
        for s in ("AM", "PM")
    ]
    # P0: a new day after its stored marks (appended); P2: a mark changed mid-month and one
    # deleted as well as the new day (patched)
    changed = Mark(pupil_id=f"{SCHOOL}:P2", date=date(2025, 10, 6), session="AM", code="N")
    loaded.upsert_marks([*new_day, changed], SCHOOL, at=t3)
    loaded.mark_deleted(SCHOOL, [(f"{SCHOOL}:P2", date(2025, 10, 7), "PM")], at=t3)

    update = loaded.summary_changes(SCHOOL, t3)
    rebuilt = loaded.summary_rebuild(SCHOOL)
    assert set(update.months) == {(f"{SCHOOL}:P{n}", "2025-10") for n in range(3)}
    for key, tokens in update.months.items():
        assert tokens == rebuilt.months[key]
    assert "2025-10-06AMN" in update.months[(f"{SCHOOL}:P2", "2025-10")]


def test_a_night_that_rereads_the_last_nights_marks_gives_the_rebuilt_months(loaded: Store) -> None:
    # A nightly reads from REREAD_MARGIN before the last high-water mark, so the previous
    # night's marks come again as stored: they are restated, not changes. P0 gets only a new
    # day (appended); P2's restated mark differs from the summary (patched).
    loaded.save_summary(SCHOOL, loaded.summary_rebuild(SCHOOL), as_of=AS_OF, basis="b", at=T2)
    t3 = T2 + timedelta(days=1)
    t4 = t3 + timedelta(minutes=10)  # a sync soon after: t3's marks are inside the margin

    def day_of(day: date) -> list[Mark]:
        return [
            Mark(pupil_id=f"{SCHOOL}:P{n}", date=day, session=s, code="/")
            for n in range(3)
            for s in ("AM", "PM")
        ]

    loaded.upsert_marks(day_of(date(2025, 10, 13)), SCHOOL, at=t3)
    loaded.save_summary(SCHOOL, loaded.summary_changes(SCHOOL, t3), as_of=AS_OF, basis="b", at=t3)
    loaded.upsert_marks(day_of(date(2025, 10, 14)), SCHOOL, at=t4)
    loaded.upsert_marks(
        [Mark(pupil_id=f"{SCHOOL}:P2", date=date(2025, 10, 13), session="AM", code="N")],
        SCHOOL,
        at=t4,
    )

    update = loaded.summary_changes(SCHOOL, t4)
    rebuilt = loaded.summary_rebuild(SCHOOL)

    assert len(update.changed or []) == 12  # both nights' marks reread
    assert set(update.months) == {(f"{SCHOOL}:P{n}", "2025-10") for n in range(3)}
    for key, tokens in update.months.items():
        assert tokens == rebuilt.months[key]
    assert "2025-10-13AMN" in update.months[(f"{SCHOOL}:P2", "2025-10")]


def test_restated_tokens_are_appended_to_only_when_they_are_the_stored_ones() -> None:
    before = ["2025-10-01AM/", "2025-10-01PM/", "2025-10-02AM/"]
    restated_and_new: dict[str, str | None] = {
        "2025-10-02AM": "2025-10-02AM/",
        "2025-10-02PM": "2025-10-02PMN",
    }
    assert _appended(before, restated_and_new) == [*before, "2025-10-02PMN"]
    assert _appended(before, {"2025-10-02AM": "2025-10-02AMN"}) is None  # a changed code
    assert _appended(before, {"2025-10-01PM": None}) is None  # a deletion
    assert _appended(before, {"2025-09-30PM": "2025-09-30PM/"}) is None  # not stored before
    assert _appended([], {"2025-10-01AM": "2025-10-01AM/"}) == ["2025-10-01AM/"]
