from __future__ import annotations

import gc
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

import registerwatch.store.mark_rows as mark_rows_module
import registerwatch.store.marks as store_module
from registerwatch.errors import StoreError
from registerwatch.schema import Mark, Session
from registerwatch.store import MarkKey, Store

SCHOOL = "wenlock"
LONDON = ZoneInfo("Europe/London")
MON = date(2025, 1, 6)
T1 = datetime(2025, 1, 6, 19, 0, tzinfo=UTC)
T2 = datetime(2025, 1, 7, 19, 0, tzinfo=UTC)
T3 = datetime(2025, 1, 8, 19, 0, tzinfo=UTC)


def mark(pupil: str, day: date, session: str = "AM", code: str = "/", **extra) -> Mark:
    return Mark(pupil_id=f"{SCHOOL}:{pupil}", date=day, session=session, code=code, **extra)


def key(pupil: str, day: date, session: str = "AM") -> MarkKey:
    return MarkKey(f"{SCHOOL}:{pupil}", day, Session(session))


def week(pupils: list[str], code: str = "/") -> list[Mark]:
    return [
        mark(p, MON + timedelta(days=d), s, code)
        for p in pupils
        for d in range(5)
        for s in ("AM", "PM")
    ]


def instant(value: datetime | str) -> datetime:
    """A raw timestamp column as an aware UTC datetime (SQLite returns the stored UTC text)."""
    if isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return value.astimezone(UTC)


def count_marks(raw) -> int:
    return raw("SELECT count(*) FROM marks")[0][0]


def test_first_upsert_reports_every_mark_new(store: Store):
    marks = week(["1", "2"])

    diff = store.upsert_marks(marks, SCHOOL, at=T1)

    assert sorted(diff.new, key=lambda m: (m.pupil_id, m.date, m.session)) == sorted(
        marks, key=lambda m: (m.pupil_id, m.date, m.session)
    )
    assert diff.changed == [] and diff.unchanged == []
    assert diff.counts() == {"new": 20, "changed": 0, "unchanged": 0, "duplicates": 0}


def test_upserting_the_same_marks_twice_does_not_duplicate(store: Store, raw):
    marks = week(["1", "2"])
    store.upsert_marks(marks, SCHOOL, at=T1)

    diff = store.upsert_marks(marks, SCHOOL, at=T2)

    assert count_marks(raw) == 20
    assert diff.new == [] and diff.changed == []
    assert sorted(diff.unchanged) == sorted(
        key(p, MON + timedelta(days=d), s)
        for p in ("1", "2")
        for d in range(5)
        for s in ("AM", "PM")
    )
    # first_seen_at stays; last_seen_at moves to the second pull; changed_at does not.
    rows = raw("SELECT DISTINCT first_seen_at, last_seen_at, changed_at FROM marks")
    assert [tuple(map(instant, row)) for row in rows] == [(T1, T2, T1)]


def test_diff_names_new_changed_and_unchanged_marks(store: Store):
    store.upsert_marks(
        [
            mark("1", MON, code="N"),
            mark("2", MON, code="/"),
            mark("3", MON, code="L", minutes_late=5),
        ],
        SCHOOL,
        at=T1,
    )

    diff = store.upsert_marks(
        [
            mark("1", MON, code="I"),  # N replaced by illness
            mark("2", MON, code="/"),  # as before
            mark("3", MON, code="L", minutes_late=12),  # same code, different minutes
            mark("4", MON, code="/"),  # a new pupil's mark
        ],
        SCHOOL,
        at=T2,
    )

    assert [m.pupil_id for m in diff.new] == ["wenlock:4"]
    assert diff.unchanged == [key("2", MON)]
    by_pupil = {c.key.pupil_id: c for c in diff.changed}
    assert set(by_pupil) == {"wenlock:1", "wenlock:3"}
    illness = by_pupil["wenlock:1"]
    assert (illness.old_code, illness.new_code, illness.fields) == ("N", "I", ("code",))
    assert illness.code_changed and not illness.restored
    late = by_pupil["wenlock:3"]
    assert (late.old_code, late.new_code, late.fields) == ("L", "L", ("minutes_late",))
    assert late.old.minutes_late == 5 and late.new.minutes_late == 12
    assert [c.key for c in diff.code_changes] == [key("1", MON)]
    stored = {m.pupil_id: m for m in store.marks(SCHOOL)}
    assert stored["wenlock:1"].code == "I"
    assert stored["wenlock:3"].minutes_late == 12


def test_later_duplicate_in_one_pull_wins(store: Store):
    diff = store.upsert_marks([mark("1", MON, code="N"), mark("1", MON, code="/")], SCHOOL, at=T1)

    assert diff.duplicates == 1
    assert [m.code for m in diff.new] == ["/"]
    assert [m.code for m in store.marks(SCHOOL)] == ["/"]


def test_marks_are_kept_per_school(store: Store):
    store.upsert_marks([mark("1", MON, code="/")], SCHOOL, at=T1)
    other = Mark(pupil_id="abbey:1", date=MON, session="AM", code="N")
    store.upsert_marks([other], "abbey", at=T1)

    assert [m.pupil_id for m in store.marks(SCHOOL)] == ["wenlock:1"]
    assert store.marks("abbey") == [other]


def test_diff_is_correct_across_chunk_boundaries(store: Store, monkeypatch):
    # Tiny chunks, and no pupil filter, so each read of stored rows covers a slice of dates.
    monkeypatch.setattr(store_module, "MARK_CHUNK_ROWS", 7)
    monkeypatch.setattr(store_module, "PUPIL_FILTER_LIMIT", 0)
    first = week(["1", "2", "3"])
    store.upsert_marks(first, SCHOOL, at=T1)
    second = [
        m.model_copy(update={"code": "I"}) if (m.pupil_id, m.session) == ("wenlock:2", "PM") else m
        for m in first
    ] + [mark("4", MON + timedelta(days=4), "PM")]

    diff = store.upsert_marks(second, SCHOOL, at=T2)

    assert len(diff.new) == 1 and diff.new[0].pupil_id == "wenlock:4"
    assert sorted(c.key for c in diff.changed) == [
        key("2", MON + timedelta(days=d), "PM") for d in range(5)
    ]
    assert all((c.old_code, c.new_code) == ("/", "I") for c in diff.changed)
    assert len(diff.unchanged) == 30 - 5
    assert len(store.marks(SCHOOL)) == 31


def test_marks_reader_filters_and_orders(store: Store):
    store.upsert_marks(list(reversed(week(["2", "1"]))), SCHOOL, at=T1)

    tuesday_to_wednesday = store.marks(SCHOOL, MON + timedelta(days=1), MON + timedelta(days=2))

    assert [(m.pupil_id, m.date, m.session) for m in tuesday_to_wednesday] == [
        (f"wenlock:{p}", MON + timedelta(days=d), s)
        for p in ("1", "2")
        for d in (1, 2)
        for s in (Session.AM, Session.PM)
    ]
    assert all(isinstance(m.session, Session) for m in tuesday_to_wednesday)
    friday = MON + timedelta(days=4)
    assert [m.date for m in store.marks(SCHOOL, pupil_id="wenlock:2", start=friday)] == [friday] * 2
    assert list(store.iter_marks(SCHOOL, batch_size=3)) == store.marks(SCHOOL)


def test_changed_since_returns_only_marks_changed_after_the_instant(store: Store):
    store.upsert_marks(week(["1", "2"]), SCHOOL, at=T1)
    store.upsert_marks([mark("1", MON, code="I"), *week(["2"])], SCHOOL, at=T2)

    changed = store.marks(SCHOOL, changed_since=T2)

    assert [(m.pupil_id, m.date, m.session, m.code) for m in changed] == [
        ("wenlock:1", MON, Session.AM, "I")
    ]


def test_deleted_marks_are_flagged_not_removed(store: Store, raw):
    store.upsert_marks([mark("1", MON, code="N"), mark("1", MON, "PM", code="/")], SCHOOL, at=T1)

    flagged = store.mark_deleted(SCHOOL, [key("1", MON), key("9", MON)], T2)

    assert [(m.pupil_id, m.session, m.code) for m in flagged] == [("wenlock:1", Session.AM, "N")]
    assert count_marks(raw) == 2
    assert [m.session for m in store.marks(SCHOOL)] == [Session.PM]
    deleted = store.deleted_marks(SCHOOL)
    assert [(d.mark.code, d.deleted_at) for d in deleted] == [("N", T2)]
    assert store.mark_keys(SCHOOL, MON, MON) == {key("1", MON, "PM")}
    # Flagging again flags nothing and keeps the first deletion time.
    assert store.mark_deleted(SCHOOL, [key("1", MON)], T3) == []
    assert store.deleted_marks(SCHOOL)[0].deleted_at == T2


def test_a_deleted_mark_that_comes_back_is_restored(store: Store):
    store.upsert_marks([mark("1", MON, code="N")], SCHOOL, at=T1)
    store.mark_deleted(SCHOOL, [key("1", MON)], T2)

    diff = store.upsert_marks([mark("1", MON, code="N")], SCHOOL, at=T3)

    assert [(c.key, c.restored, c.fields) for c in diff.changed] == [(key("1", MON), True, ())]
    assert store.deleted_marks(SCHOOL) == []
    assert [m.code for m in store.marks(SCHOOL)] == ["N"]


def test_recorded_at_round_trips_as_aware_utc(store: Store, raw):
    london = datetime(2025, 6, 2, 9, 5, 30, 123456, tzinfo=LONDON)  # 08:05:30 UTC (BST)
    store.upsert_marks([mark("1", date(2025, 6, 2), recorded_at=london)], SCHOOL, at=T1)

    (stored,) = store.marks(SCHOOL)

    assert stored.recorded_at == london
    assert stored.recorded_at.tzinfo is UTC
    assert stored.recorded_at.hour == 8 and stored.recorded_at.microsecond == 123456
    # Same instant again is no change, whatever zone it is written in.
    again = store.upsert_marks(
        [mark("1", date(2025, 6, 2), recorded_at=london.astimezone(UTC))], SCHOOL, at=T2
    )
    assert again.changed == []
    if store.dialect == "sqlite":  # SQLite keeps no offset: the text itself must be UTC
        assert raw("SELECT recorded_at FROM marks")[0][0].startswith("2025-06-02 08:05:30")
    else:
        assert raw("SELECT recorded_at AT TIME ZONE 'UTC' FROM marks")[0][0] == datetime(
            2025, 6, 2, 8, 5, 30, 123456
        )


def test_recorded_at_written_with_its_own_offset_still_reads_as_utc(store: Store, raw):
    if store.dialect != "sqlite":
        pytest.skip("PostgreSQL keeps instants as timestamptz; only SQLite stores text")
    store.upsert_marks([mark(str(n), MON) for n in range(1, 5)], SCHOOL, at=T1)
    # Text the bind processor never writes, but an older or hand-edited store may hold.
    for pupil, text in (
        ("1", "2025-01-06 08:41:00.000000"),
        ("2", "2025-01-06 08:41:00"),
        ("3", "2025-01-06T09:41:00+01:00"),
        ("4", "2025-01-06T08:41:00Z"),
    ):
        raw(
            "UPDATE marks SET recorded_at = :text WHERE pupil_id = :pupil",
            text=text,
            pupil=f"{SCHOOL}:{pupil}",
        )

    instants = [m.recorded_at for m in store.marks(SCHOOL)]

    assert instants == [datetime(2025, 1, 6, 8, 41, tzinfo=UTC)] * 4
    assert all(value.tzinfo is UTC for value in instants)


def _full_marks() -> list[Mark]:
    return [
        mark(
            str(p),
            MON + timedelta(days=d),
            s,
            code,
            vendor_code=f"v{code}",
            minutes_late=p if code == "L" else None,
            comment=f"note {p}" if p % 2 else None,
            recorded_at=datetime(2025, 1, 6, 8, p, 15, 500, tzinfo=LONDON),
            recorded_by="JH",
            source_ref=f"ref-{p}-{d}-{s}",
        )
        for p in range(1, 6)
        for d in range(3)
        for s in ("AM", "PM")
        for code in (("L",) if p == 3 else ("/",))
    ]


@pytest.mark.parametrize("fast", [True, False], ids=["fast-builder", "model-construct"])
def test_marks_read_in_batches_are_the_marks_written(store: Store, monkeypatch, fast: bool):
    monkeypatch.setattr(store_module, "MARK_READ_BATCH", 4)  # 30 marks: eight fetches
    monkeypatch.setattr(mark_rows_module, "FAST_MARKS", fast)
    written = _full_marks()
    store.upsert_marks(written, SCHOOL, at=T1)

    read = store.marks(SCHOOL)

    expected = sorted(written, key=lambda m: (m.pupil_id, m.date, m.session))
    assert read == expected
    assert [m.model_dump() for m in read] == [m.model_dump() for m in expected]
    assert all(m.model_fields_set == set(Mark.model_fields) for m in read)
    assert [vars(m) for m in read] == [
        vars(Mark.model_construct(**m.model_dump())) for m in expected
    ]
    assert list(store.iter_marks(SCHOOL, batch_size=4)) == read


@pytest.mark.parametrize("enabled", [True, False])
def test_marks_pauses_the_collector_and_restores_it(store: Store, monkeypatch, enabled: bool):
    store.upsert_marks(week(["1", "2"]), SCHOOL, at=T1)
    seen: list[bool] = []
    build = mark_rows_module.marks_from_rows

    def spy(rows):
        seen.append(gc.isenabled())
        return build(rows)

    monkeypatch.setattr(mark_rows_module, "marks_from_rows", spy)
    was = gc.isenabled()
    try:
        gc.enable() if enabled else gc.disable()
        assert len(store.marks(SCHOOL)) == 20
        assert gc.isenabled() is enabled
    finally:
        gc.enable() if was else gc.disable()
    assert seen and not any(seen)


def test_naive_instants_are_refused(store: Store):
    with pytest.raises(StoreError, match="naive"):
        store.upsert_marks([mark("1", MON)], SCHOOL, at=datetime(2025, 1, 6, 19, 0))


def test_transaction_is_atomic(store: Store):
    with pytest.raises(RuntimeError), store.transaction() as tx:
        store.upsert_marks(week(["1"]), SCHOOL, at=T1, conn=tx)
        assert len(store.marks(SCHOOL, conn=tx)) == 10
        raise RuntimeError("killed mid-sync")

    assert store.marks(SCHOOL) == []

    with store.transaction() as tx:
        store.upsert_marks(week(["1"]), SCHOOL, at=T1, conn=tx)
    assert len(store.marks(SCHOOL)) == 10


@pytest.mark.parametrize("pupil_filter_limit", [0, 500])
def test_a_partial_pull_touches_only_the_marks_it_saw(
    store: Store, raw, monkeypatch, pupil_filter_limit
):
    monkeypatch.setattr(store_module, "PUPIL_FILTER_LIMIT", pupil_filter_limit)
    store.upsert_marks(week(["1", "2"]), SCHOOL, at=T1)

    diff = store.upsert_marks(week(["1"]), SCHOOL, at=T2)

    assert len(diff.unchanged) == 10
    rows = raw("SELECT pupil_id, last_seen_at FROM marks")
    last_seen = {(pupil, instant(seen)) for pupil, seen in rows}
    assert last_seen == {("wenlock:1", T2), ("wenlock:2", T1)}


def test_chunks_with_nothing_stored_and_chunks_with_stored_marks_diff_alike(
    store: Store, monkeypatch
):
    """A chunk whose scope holds no stored rows takes the all-new path; the keys handed back
    are MarkKeys (upsert_marks keys its work by plain tuples)."""
    monkeypatch.setattr(store_module, "MARK_CHUNK_ROWS", 4)  # two dates (of 2 pupils) a chunk
    store.upsert_marks(week(["1", "2"]), SCHOOL, at=T1)
    next_week = [
        mark(p, MON + timedelta(days=7 + d), s)
        for p in ("1", "2")
        for d in range(5)
        for s in ("AM", "PM")
    ]
    pulled = [
        *week(["1", "2"]),
        *next_week,
        mark("1", MON, "AM", "L"),
        mark("1", MON + timedelta(days=8), "PM"),
    ]

    diff = store.upsert_marks(pulled, SCHOOL, at=T2)

    assert diff.duplicates == 2
    assert sorted(diff.new, key=lambda m: (m.date, m.session, m.pupil_id)) == sorted(
        next_week, key=lambda m: (m.date, m.session, m.pupil_id)
    )
    assert [(c.key, c.fields) for c in diff.changed] == [(key("1", MON), ("code",))]
    assert all(type(k) is MarkKey for k in [*diff.unchanged, *(c.key for c in diff.changed)])
    assert sorted(diff.unchanged) == sorted(
        key(p, MON + timedelta(days=d), s)
        for p in ("1", "2")
        for d in range(5)
        for s in ("AM", "PM")
        if (p, d, s) != ("1", 0, "AM")
    )
    assert {k.pupil_id for k in diff.unchanged} == {f"{SCHOOL}:1", f"{SCHOOL}:2"}
    stored = store.marks(SCHOOL)
    assert len(stored) == 40
    assert [m.code for m in stored if m.date == MON and m.pupil_id.endswith(":1")] == ["L", "/"]
