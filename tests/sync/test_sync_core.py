"""sync_school and sync_all over a scriptable fake adapter: windows, bookmarks, the ledger,
deletions, the empty-pull guard, quarantine, failure isolation, concurrency and crash safety."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa
from structlog.testing import capture_logs
from sync_support import (
    AS_OF,
    NOW,
    FakeAdapter,
    FakeMis,
    fake_factory,
    fake_mis,
    make_settings,
    marks_for,
    pupil,
    school_days,
    school_table,
)

from registerwatch.adapters.base import Quarantined
from registerwatch.adapters.registry import build_adapter
from registerwatch.errors import FatalApiError, RetriableApiError
from registerwatch.schema import Amendment, AmendmentSource, Mark, Session
from registerwatch.store import Store
from registerwatch.store.changes import first_seen_marks
from registerwatch.sync import (
    EmptyPullError,
    ResourceFetched,
    SchoolFinished,
    SchoolStarted,
    Window,
    sync_all,
    sync_school,
)

AM, PM = Session.AM, Session.PM
TERM_START = date(2025, 9, 3)
# The 10th school day before AS_OF (2025-10-01): no closures fall in September.
TRAILING_START = date(2025, 9, 17)
LATER = datetime(2025, 10, 2, 19, 0, tzinfo=UTC)


def order(marks):
    return sorted(marks, key=lambda m: (m.pupil_id, m.date, m.session.value))


@pytest.fixture
def oakfield():
    settings = make_settings([school_table("oakfield", fake_mis("oakfield"))])
    school = settings.schools[0]
    pupils = [pupil("oakfield", n) for n in range(1, 7)]
    days = school_days(school.to_calendar(), TERM_START, AS_OF)
    assert len(days) == 21
    mis = FakeMis("oakfield", pupils=pupils, marks=marks_for(pupils, days))
    return school, mis


def sync(store, school, mis, as_of=AS_OF, at=NOW, **kwargs):
    return sync_school(store, school, FakeAdapter(mis), as_of=as_of, clock=lambda: at, **kwargs)


def ledger_tail(store, after: int):
    return [
        (r.kind, r.pupil_id, r.date, r.session, r.original_code, r.new_code)
        for r in store.ledger()
        if r.seq > after
    ]


# -- the first sync ------------------------------------------------------------------------


def test_first_sync_pulls_the_school_year_and_ledgers_every_mark(store, oakfield):
    school, mis = oakfield
    result = sync(store, school, mis)

    assert result.status == "ok", result.error
    assert result.window == Window(TERM_START, AS_OF, first_sync=True)
    assert mis.calls == [
        ("pupils", None, None),
        ("registers", TERM_START, AS_OF),
        ("marks", TERM_START, AS_OF),
        ("amendments", TERM_START, AS_OF),
    ]
    assert store.pupils("oakfield") == sorted(mis.pupils, key=lambda p: p.id)
    assert store.marks("oakfield") == order(mis.marks)
    assert result.fetched == {"pupils": 6, "registers": 0, "marks": 252, "amendments": 0}
    assert (result.marks_new, result.marks_changed, result.marks_deleted) == (252, 0, 0)

    # One observed_new entry per pupil, listing every mark of theirs in date and session order.
    ledger = store.ledger("oakfield")
    assert result.ledger_entries == len(ledger) == 6
    first_am = TERM_START, AM
    assert [
        (r.kind, r.pupil_id, r.date, r.session, r.original_code, r.new_code) for r in ledger
    ] == [
        ("observed_new", p.id, *first_am, None, None)
        for p in sorted(mis.pupils, key=lambda p: p.id)
    ]
    for record in ledger:
        expected = sorted(
            (m for m in mis.marks if m.pupil_id == record.pupil_id),
            key=lambda m: (m.date, m.session.value),
        )
        seen = first_seen_marks(record)
        assert [(s["date"], s["session"], s["code"]) for s in seen] == [
            (m.date.isoformat(), m.session.value, m.code) for m in expected
        ]
        assert seen == record.payload["marks"]
    assert {r.observed_at for r in ledger} == {NOW}
    late = next(s for r in ledger for s in first_seen_marks(r) if s["code"] == "L")
    assert late["minutes_late"] >= 5 and "comment" not in late
    assert sum(len(first_seen_marks(r)) for r in ledger) == 252
    assert store.verify_ledger().ok
    assert {
        r: store.get_bookmark("oakfield", r) for r in ("pupils", "registers", "marks", "amendments")
    } == dict.fromkeys(("pupils", "registers", "marks", "amendments"), "2025-10-01")
    assert store.school("oakfield").name == "Oakfield School"
    assert store.calendar("oakfield") == school.to_calendar()


def test_a_second_sync_of_unchanged_data_changes_nothing(store, oakfield):
    school, mis = oakfield
    sync(store, school, mis)
    ledger_before = store.ledger()
    marks_before = store.marks("oakfield")

    again = sync(store, school, mis, at=LATER)

    assert again.status == "ok"
    assert (again.marks_new, again.marks_changed, again.marks_deleted) == (0, 0, 0)
    assert again.marks_unchanged == 6 * 11 * 2  # the trailing window: 11 school days
    assert again.ledger_entries == 0 and again.amendments_new == 0
    assert store.ledger() == ledger_before
    assert store.marks("oakfield") == marks_before


# -- windows and bookmarks -----------------------------------------------------------------


def test_later_syncs_repull_the_trailing_window_or_everything_since_the_bookmark(store, oakfield):
    school, mis = oakfield
    sync(store, school, mis)

    mis.calls.clear()
    result = sync(store, school, mis, as_of=date(2025, 10, 3))
    # 10 school days before Friday 3 October is Friday 19 September; the bookmark (1 October)
    # is later, so the trailing window decides.
    assert result.window == Window(date(2025, 9, 19), date(2025, 10, 3), first_sync=False)
    assert ("marks", date(2025, 9, 19), date(2025, 10, 3)) in mis.calls

    mis.calls.clear()
    result = sync(store, school, mis, as_of=date(2025, 11, 20))
    # Seven weeks later (half-term between): everything since the last sync's day is pulled.
    assert result.window == Window(date(2025, 10, 3), date(2025, 11, 20), first_sync=False)
    assert store.get_bookmark("oakfield", "marks") == "2025-11-20"

    # A rerun for an earlier day pulls that day's window but never moves a bookmark back.
    result = sync(store, school, mis, as_of=date(2025, 10, 1))
    assert result.window.end == date(2025, 10, 1)
    assert store.get_bookmark("oakfield", "marks") == "2025-11-20"


def test_trailing_school_days_is_configurable(store, oakfield):
    school, mis = oakfield
    sync(store, school, mis)
    result = sync(store, school, mis, trailing_school_days=3)
    assert result.window.start == date(2025, 9, 26)  # Fri 26, Mon 29, Tue 30 September


def test_a_change_older_than_the_window_is_not_seen(store, oakfield):
    school, mis = oakfield
    sync(store, school, mis)
    first = len(store.ledger())
    target = mis.marks[0]
    assert target.date < TRAILING_START
    mis.set(target.pupil_id, target.date, target.session, "O" if target.code != "O" else "I")

    result = sync(store, school, mis)

    assert result.ledger_entries == 0 and ledger_tail(store, first) == []
    stored = store.marks("oakfield", target.date, target.date, pupil_id=target.pupil_id)
    assert target in stored


def test_an_unreadable_bookmark_means_pulling_the_whole_year_again(store, oakfield):
    school, mis = oakfield
    sync(store, school, mis)
    store.set_bookmark("oakfield", "marks", "last tuesday")
    result = sync(store, school, mis)
    assert result.window == Window(TERM_START, AS_OF, first_sync=True)
    assert result.warnings == [
        "marks bookmark 'last tuesday' is not a date; pulled the whole school year"
    ]
    assert result.ledger_entries == 0
    assert store.get_bookmark("oakfield", "marks") == "2025-10-01"


def test_a_school_year_not_begun_pulls_pupils_only(store, oakfield):
    school, mis = oakfield
    result = sync(store, school, mis, as_of=date(2025, 8, 20))
    assert result.status == "ok" and result.window is None
    assert mis.calls == [("pupils", None, None)]
    assert len(store.pupils("oakfield")) == 6 and store.marks("oakfield") == []


# -- changes, deletions, restorations ------------------------------------------------------


def test_changes_between_syncs_become_ledger_entries_and_observed_amendments(store, oakfield):
    school, mis = oakfield
    sync(store, school, mis)
    first = len(store.ledger())
    p1, p2 = mis.pupils[0].id, mis.pupils[1].id
    old = {(m.pupil_id, m.date, m.session): m for m in mis.marks}
    changed_from = old[(p1, date(2025, 9, 29), AM)].code
    deleted = old[(p2, date(2025, 9, 30), PM)]
    new_code = "I" if changed_from != "I" else "M"
    mis.set(p1, date(2025, 9, 29), AM, new_code)
    mis.delete(p2, date(2025, 9, 30), PM)
    newcomer = pupil("oakfield", 7)
    mis.pupils.append(newcomer)
    mis.marks.append(Mark(pupil_id=newcomer.id, date=AS_OF, session=AM, code="/"))

    result = sync(store, school, mis, at=LATER)

    assert (result.marks_new, result.marks_changed, result.marks_deleted) == (1, 1, 1)
    assert ledger_tail(store, first) == [
        ("observed_change", p1, date(2025, 9, 29), AM, changed_from, new_code),
        ("observed_deleted", p2, date(2025, 9, 30), PM, deleted.code, None),
        ("observed_new", newcomer.id, AS_OF, AM, None, None),
    ]
    [newcomer_entry] = [r for r in store.ledger() if r.kind == "observed_new" and r.seq > first]
    assert first_seen_marks(newcomer_entry) == [
        {"date": AS_OF.isoformat(), "session": "AM", "code": "/"}
    ]
    assert {r.observed_at for r in store.ledger() if r.seq > first} == {LATER}
    # Flagged, not dropped: the deleted entry is kept with when sync noticed.
    (gone,) = store.deleted_marks("oakfield")
    assert gone.mark == deleted and gone.deleted_at == LATER
    assert deleted not in store.marks("oakfield")
    observed = store.amendments("oakfield", source="observed")
    assert [(a.pupil_id, a.date, a.session, a.original_code, a.amended_code) for a in observed] == [
        (p1, date(2025, 9, 29), AM, changed_from, new_code),
        (p2, date(2025, 9, 30), PM, deleted.code, None),
    ]
    seqs = {r.pupil_id: r.seq for r in store.ledger() if r.seq > first}
    assert [a.source_ref for a in observed] == [f"ledger:{seqs[p1]}", f"ledger:{seqs[p2]}"]
    assert all(a.source is AmendmentSource.OBSERVED and a.reason is None for a in observed)
    assert store.verify_ledger().ok

    # The deleted entry comes back: a change from "no entry", marked as a restoration.
    mis.marks.append(deleted)
    third = len(store.ledger())
    result = sync(store, school, mis)
    assert (result.marks_changed, result.marks_deleted) == (1, 0)
    (restored,) = [r for r in store.ledger() if r.seq > third]
    assert (restored.kind, restored.original_code, restored.new_code) == (
        "observed_change",
        None,
        deleted.code,
    )
    assert restored.payload["restored"] is True
    assert store.deleted_marks("oakfield") == []


def test_a_change_other_than_the_code_is_ledgered_with_before_and_after(store, oakfield):
    school, mis = oakfield
    sync(store, school, mis)
    first = len(store.ledger())
    index = next(i for i, m in enumerate(mis.marks) if m.code == "L" and m.date >= TRAILING_START)
    mark = mis.marks[index]
    mis.marks[index] = mark.model_copy(update={"minutes_late": 42})

    result = sync(store, school, mis)

    assert result.marks_changed == 1
    (entry,) = [r for r in store.ledger() if r.seq > first]
    assert (entry.kind, entry.original_code, entry.new_code) == ("observed_change", "L", "L")
    assert entry.payload == {
        "fields": ["minutes_late"],
        "before": {"minutes_late": mark.minutes_late},
        "after": {"minutes_late": 42},
    }
    assert store.amendments("oakfield", source="observed") == []  # not a code amendment


def test_mis_amendment_records_are_stored_and_ledgered_once(store, oakfield):
    school, mis = oakfield
    p1 = mis.pupils[0].id
    record = Amendment(
        pupil_id=p1,
        date=date(2025, 9, 29),
        session=AM,
        original_code="N",
        amended_code="I",
        reason="letter from parent",
        amended_at=datetime(2025, 9, 30, 9, 5, tzinfo=UTC),
        amended_by_name="J Hale",
        amended_by_position="Attendance officer",
    )
    mis.amendments = [record]

    result = sync(store, school, mis)

    assert result.amendments_new == 1 and result.fetched["amendments"] == 1
    assert store.amendments("oakfield", source="mis") == [record]
    (entry,) = [r for r in store.ledger() if r.kind == "mis_amendment"]
    assert (entry.pupil_id, entry.original_code, entry.new_code) == (p1, "N", "I")
    assert entry.payload == {
        "reason": "letter from parent",
        "amended_at": "2025-09-30T09:05:00.000000Z",
        "amended_by_name": "J Hale",
        "amended_by_position": "Attendance officer",
    }
    count = len(store.ledger())

    again = sync(store, school, mis)
    assert again.amendments_new == 0 and len(store.ledger()) == count
    assert store.amendments("oakfield", source="mis") == [record]


# -- the empty-pull guard -----------------------------------------------------------------


def test_an_empty_pull_where_marks_are_stored_fails_and_changes_nothing(store, oakfield):
    school, mis = oakfield
    sync(store, school, mis)
    ledger_before, marks_before = store.ledger(), store.marks("oakfield")
    mis.marks = []  # a permission gap: the MIS answers 200 with nothing in it

    result = sync(store, school, mis, as_of=date(2025, 10, 2))

    assert result.status == "failed"
    assert result.error == (
        "school 'oakfield': go4schools returned no marks for 2025-09-18..2025-10-02 where 120 "
        "were stored: check the API user's permissions; nothing was changed"
    )
    assert store.ledger() == ledger_before
    assert store.marks("oakfield") == marks_before and store.deleted_marks("oakfield") == []
    assert store.get_bookmark("oakfield", "marks") == "2025-10-01"


def test_one_day_missing_entirely_is_refused_too(store, oakfield):
    school, mis = oakfield
    sync(store, school, mis)
    count = len(store.ledger())
    mis.marks = [m for m in mis.marks if m.date != date(2025, 9, 24)]

    result = sync(store, school, mis)

    assert result.status == "failed"
    assert "returned no marks for 2025-09-24 where 12 were stored" in result.error
    assert len(store.ledger()) == count and store.deleted_marks("oakfield") == []


def test_the_guard_raises_a_fatal_api_error():
    assert issubclass(EmptyPullError, FatalApiError)


# -- quarantine ----------------------------------------------------------------------------


def test_quarantined_records_are_stored_reported_and_never_taken_for_deletions(store, oakfield):
    school, mis = oakfield
    sync(store, school, mis)
    count = len(store.ledger())
    victim = next(m for m in mis.marks if m.date == date(2025, 9, 30))
    mis.delete(victim.pupil_id, victim.date, victim.session)  # it would not map, so it is absent
    bad_mark = Quarantined(
        resource="session-marks",
        record_ref="student 1001 on 2025-09-30",
        field="session_mark_id",
        reason="unknown attendance code id 9999",
        raw='{"session_mark_id": 9999}',
    )
    bad_pupil = Quarantined(
        resource="",
        record_ref="page 1 item 3",
        field="date_of_birth",
        reason="'2012-02-30' is not a valid date",
    )
    mis.quarantined = {"marks": [bad_mark], "pupils": [bad_pupil]}

    result = sync(store, school, mis)

    assert result.status == "ok"
    assert [(q.resource, q.record_ref, q.field) for q in result.quarantined] == [
        ("pupils", "page 1 item 3", "date_of_birth"),
        ("session-marks", "student 1001 on 2025-09-30", "session_mark_id"),
    ]
    assert result.marks_deleted == 0 and store.deleted_marks("oakfield") == []
    assert len(store.ledger()) == count
    assert result.warnings == [
        "1 stored marks were not in this pull but were not flagged deleted, because 1 marks "
        "were quarantined; the next clean pull will decide",
        "pupils: 1 records quarantined; pulled in full every run",
        "marks: 1 records quarantined; 2025-09-17..2025-10-01 will be pulled again until the "
        "MIS serves them cleanly",
    ]
    # Held at the window's start, so the quarantined record's date is pulled again.
    assert store.get_bookmark("oakfield", "marks") == "2025-09-17"
    assert store.get_bookmark("oakfield", "pupils") == "2025-10-01"
    stored = {(q.resource, q.record_ref, q.field): q for q in store.quarantined("oakfield")}
    assert (
        stored[("session-marks", "student 1001 on 2025-09-30", "session_mark_id")].raw
        == '{"session_mark_id": 9999}'
    )
    assert (
        stored[("pupils", "page 1 item 3", "date_of_birth")].reason
        == "'2012-02-30' is not a valid date"
    )

    sync(store, school, mis)  # seen again: counted, not duplicated
    assert [q.occurrences for q in store.quarantined("oakfield")] == [2, 2]

    mis.quarantined = {}  # the next clean pull decides: the mark really is gone
    mis.calls.clear()
    result = sync(store, school, mis, as_of=date(2025, 10, 20))
    assert ("marks", date(2025, 9, 17), date(2025, 10, 20)) in mis.calls
    assert store.get_bookmark("oakfield", "marks") == "2025-10-20"
    assert result.marks_deleted == 1
    assert [d.mark for d in store.deleted_marks("oakfield")] == [victim]


def test_quarantine_is_reported_in_the_summary_json(store, oakfield):
    school, mis = oakfield
    mis.quarantined = {
        "marks": [
            Quarantined("session-marks", "r1", "date", "bad date", raw="Ava Okafor 2012-02-30")
        ]
    }
    result = sync(store, school, mis)
    assert result.to_dict()["quarantined"] == [
        {"resource": "session-marks", "record": "r1", "field": "date", "reason": "bad date"}
    ]
    assert "Ava" not in str(result.to_dict())  # raw record text stays in the store


# -- crash safety --------------------------------------------------------------------------


def test_a_crash_inside_the_write_leaves_the_school_as_it_was(
    store, oakfield, monkeypatch, tmp_path
):
    school, mis = oakfield
    real_append = Store.append_ledger

    def crash(self, entries, **kwargs):
        real_append(self, entries, **kwargs)  # the ledger rows are written, then the run dies
        raise RuntimeError("killed")

    monkeypatch.setattr(Store, "append_ledger", crash)
    with pytest.raises(RuntimeError):
        sync(store, school, mis)
    monkeypatch.setattr(Store, "append_ledger", real_append)

    assert store.marks("oakfield") == [] and store.pupils("oakfield") == []
    assert store.ledger() == [] and store.get_bookmark("oakfield", "marks") is None

    sync(store, school, mis)
    reference = Store.open(f"sqlite:///{tmp_path / 'reference.db'}")
    sync(reference, school, mis)
    assert store.marks("oakfield") == reference.marks("oakfield")
    assert store.ledger() == reference.ledger()  # same clock, so identical, hashes and all
    reference.close()


# -- progress and logs ---------------------------------------------------------------------


def test_progress_events_and_log_events_carry_counts_not_pupil_data(store, oakfield):
    school, mis = oakfield
    events = []
    with capture_logs() as logs:
        sync(store, school, mis, progress=events.append)

    assert events == [
        SchoolStarted("oakfield", "go4schools", TERM_START, AS_OF),
        ResourceFetched("oakfield", "pupils", 6, 0),
        ResourceFetched("oakfield", "registers", 0, 0),
        ResourceFetched("oakfield", "marks", 252, 0),
        ResourceFetched("oakfield", "amendments", 0, 0),
        SchoolFinished("oakfield", "ok"),
    ]
    names = [e["event"] for e in logs if e["event"].startswith("sync.")]
    assert names == ["sync.school_started", *["sync.resource_fetched"] * 4, "sync.school_finished"]
    fetched = [e for e in logs if e["event"] == "sync.resource_fetched"]
    assert [(e["resource"], e["records"]) for e in fetched] == [
        ("pupils", 6),
        ("registers", 0),
        ("marks", 252),
        ("amendments", 0),
    ]
    text = str(logs)
    assert "Forename1" not in text and "Surname1" not in text and "2012-01-02" not in text


def test_a_failed_school_logs_sync_school_failed(store, oakfield):
    school, mis = oakfield
    mis.errors["marks"] = FatalApiError("school 'oakfield': MIS returned 403 — check KEY")
    events = []
    with capture_logs() as logs:
        result = sync(store, school, mis, progress=events.append)
    assert result.status == "failed" and result.error.endswith("check KEY")
    (failed,) = [e for e in logs if e["event"] == "sync.school_failed"]
    assert failed["school"] == "oakfield" and failed["error_type"] == "FatalApiError"
    assert events[-1] == SchoolFinished("oakfield", "failed", result.error)
    assert store.pupils("oakfield") == []  # pupils were fetched, but nothing was written


# -- sync_all: isolation, concurrency ------------------------------------------------------


def two_schools(tmp_path):
    settings = make_settings(
        [school_table("ash", fake_mis("ash")), school_table("birch", fake_mis("birch"))],
        store_url=f"sqlite:///{tmp_path / 'all.db'}",
    )
    mises = {}
    for school in settings.schools:
        pupils = [pupil(school.id, n) for n in range(1, 4)]
        days = school_days(school.to_calendar(), TERM_START, AS_OF)
        mises[school.id] = FakeMis(school.id, pupils=pupils, marks=marks_for(pupils, days))
    return settings, mises


@pytest.mark.parametrize(
    "error, expected",
    [
        (
            RetriableApiError(
                "school 'ash': go4schools GET /x failed with 503 — gave up after 6 "
                "attempts; the next run will retry"
            ),
            "gave up after 6 attempts",
        ),
        (KeyError("student_id"), "internal error KeyError"),
    ],
)
def test_one_failing_school_does_not_stop_the_others(store, tmp_path, error, expected):
    settings, mises = two_schools(tmp_path)
    mises["ash"].errors["marks"] = error
    made = []

    summary = sync_all(settings, store, as_of=AS_OF, adapter_factory=fake_factory(mises, made))

    assert [(r.school_id, r.status) for r in summary.schools] == [
        ("ash", "failed"),
        ("birch", "ok"),
    ]
    assert expected in summary.schools[0].error
    assert not summary.ok and [r.school_id for r in summary.failed] == ["ash"]
    assert store.pupils("ash") == [] and store.get_bookmark("ash", "marks") is None
    assert len(store.marks("birch")) == 3 * 21 * 2
    assert {r.school_id for r in store.ledger()} == {"birch"}
    assert all(a.closed for a in made)
    totals = summary.totals()
    assert (totals["schools_ok"], totals["schools_failed"], totals["marks_new"]) == (1, 1, 126)
    (run,) = store.runs(command="sync")
    assert run.outcome == "failed" and run.counts["marks_new"] == 126


def test_a_credential_that_cannot_be_read_fails_only_its_school(store, tmp_path):
    settings, mises = two_schools(tmp_path)

    def factory(school, sync, environ):
        if school.id == "ash":  # the real registry: reads ASH_G4S_KEY from environ
            return build_adapter(school, sync, environ)
        return FakeAdapter(mises[school.id])

    summary = sync_all(settings, store, as_of=AS_OF, environ={}, adapter_factory=factory)

    ash, birch = summary.schools
    assert ash.status == "failed" and birch.status == "ok"
    assert ash.error == (
        "school 'ash': environment variable ASH_G4S_KEY is not set (it should "
        "hold the go4schools API key)"
    )


def test_sync_all_one_school_and_an_unknown_one(store, tmp_path):
    settings, mises = two_schools(tmp_path)
    summary = sync_all(
        settings, store, school_id="birch", as_of=AS_OF, adapter_factory=fake_factory(mises)
    )
    assert [r.school_id for r in summary.schools] == ["birch"]
    from registerwatch.errors import ConfigError

    with pytest.raises(ConfigError, match="no school 'elm'"):
        sync_all(settings, store, school_id="elm", adapter_factory=fake_factory(mises))


def test_fetches_overlap_up_to_the_vendor_limit_and_writes_never_overlap(
    store, tmp_path, monkeypatch
):
    ids = [f"s{n}" for n in range(5)]
    settings = make_settings([school_table(i, fake_mis(i)) for i in ids], concurrency=8)
    mises = {}
    for i in ids:
        pupils = [pupil(i, 1)]
        mises[i] = FakeMis(i, pupils=pupils, marks=marks_for(pupils, [AS_OF]), fetch_delay=0.05)
    lock = threading.Lock()
    active = {"fetch": 0, "write": 0}
    peak = {"fetch": 0, "write": 0}

    def enter(kind):
        with lock:
            active[kind] += 1
            peak[kind] = max(peak[kind], active[kind])

    def leave(kind):
        with lock:
            active[kind] -= 1

    class Counted(FakeAdapter):
        def pupils(self):
            enter("fetch")
            return super().pupils()

        def amendments(self, start, end):
            try:
                return super().amendments(start, end)
            finally:
                leave("fetch")

    real_transaction = Store.transaction

    @contextmanager
    def counted_transaction(self):
        enter("write")
        try:
            with real_transaction(self) as tx:
                time.sleep(0.02)  # long enough that an unlocked second writer would overlap
                yield tx
        finally:
            leave("write")

    monkeypatch.setattr(Store, "transaction", counted_transaction)
    summary = sync_all(
        settings,
        store,
        as_of=AS_OF,
        adapter_factory=lambda school, sync, env: Counted(mises[school.id]),
    )

    assert summary.ok
    assert peak["fetch"] == 2  # five go4schools schools, eight workers: two at a time
    assert peak["write"] == 1


def test_summary_totals_and_json_shape(store, tmp_path):
    settings, mises = two_schools(tmp_path)
    summary = sync_all(settings, store, as_of=AS_OF, adapter_factory=fake_factory(mises))
    data = summary.to_dict()
    assert data["as_of"] == "2025-10-01" and data["ok"] is True
    assert data["totals"]["fetched_marks"] == 252 and data["totals"]["ledger_entries"] == 6
    school = data["schools"][0]
    assert school["window"] == {"start": "2025-09-03", "end": "2025-10-01", "first_sync": True}
    assert school["marks"] == {"new": 126, "changed": 0, "deleted": 0, "unchanged": 0}
    assert school["fetched"] == {"pupils": 3, "registers": 0, "marks": 126, "amendments": 0}


# -- ledger verification -------------------------------------------------------------------


def tamper(store: Store, sql: str) -> None:
    on = " ON ledger" if store.dialect == "postgresql" else ""
    with store.engine.begin() as conn:
        conn.execute(sa.text(f"DROP TRIGGER ledger_no_update{on}"))
        conn.execute(sa.text(sql))


def test_check_ledger_names_the_first_broken_entry_and_its_school(store, tmp_path):
    settings, mises = two_schools(tmp_path)
    sync_all(settings, store, as_of=AS_OF, adapter_factory=fake_factory(mises))
    check = store.check_ledger()
    assert check.ok and check.entries == 6 and check.last_seq == 6  # one per pupil
    birch_seq = next(r.seq for r in store.ledger("birch"))

    tamper(store, f"UPDATE ledger SET new_code = 'O' WHERE seq = {birch_seq + 1}")

    check = store.check_ledger()
    assert not check.ok
    assert (check.broken_seq, check.broken_school_id) == (birch_seq + 1, "birch")
    assert check.reason == "hash does not match the entry's contents: the entry was altered"
    assert check.entries == birch_seq
    assert check.to_dict()["broken"] == {
        "seq": birch_seq + 1,
        "school": "birch",
        "reason": check.reason,
    }


def test_one_mark_altered_inside_a_pupils_entry_breaks_the_chain_there(store, tmp_path):
    settings, mises = two_schools(tmp_path)
    sync_all(settings, store, as_of=AS_OF, adapter_factory=fake_factory(mises))
    entry = store.ledger("birch")[1]
    fourth = first_seen_marks(entry)[3]
    other = "O" if fourth["code"] != "O" else "G"
    if store.dialect == "postgresql":
        altered = f"""jsonb_set(payload::jsonb, '{{marks,3,code}}', '"{other}"')::json"""
    else:
        altered = f"json_replace(payload, '$.marks[3].code', '{other}')"
    tamper(store, f"UPDATE ledger SET payload = {altered} WHERE seq = {entry.seq}")

    assert first_seen_marks(store.ledger_entry(entry.seq))[3] == {**fourth, "code": other}
    check = store.check_ledger()
    assert not check.ok and check.broken_seq == entry.seq
    assert check.reason == "hash does not match the entry's contents: the entry was altered"


def test_syncing_past_the_configured_terms_fails_naming_the_missing_year():
    from registerwatch.calendar import SchoolCalendar
    from registerwatch.errors import CalendarError
    from registerwatch.schema import Calendar, Term
    from registerwatch.sync.window import _require_terms_for

    calendar = SchoolCalendar(
        Calendar(school_id="oakfield", terms=[Term(start=date(2025, 9, 3), end=date(2026, 7, 22))])
    )
    _require_terms_for(calendar, date(2026, 7, 22))
    _require_terms_for(calendar, date(2026, 8, 20))  # the summer holiday: not yet an error
    with pytest.raises(CalendarError, match=r"end on 2026-07-22.*add the 2026/27 terms"):
        _require_terms_for(calendar, date(2026, 11, 23))
