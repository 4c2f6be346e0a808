"""The public reads and writes that replaced callers reaching around the store: the ledger kinds,
one ledger entry by seq, the ledger check, capabilities, the read snapshot, recording a sync's
changes, and the PostgreSQL advisory lock."""

from __future__ import annotations

from datetime import UTC, date, datetime

from test_store_ledger import drop_append_only_triggers

from registerwatch.schema import Amendment, Mark, School, Session
from registerwatch.store import (
    KINDS,
    OBSERVED_KINDS,
    LedgerEntry,
    LedgerKind,
    Store,
    amendment_key,
    dedupe_amendments,
)

SCHOOL = "wenlock"
MON = date(2025, 1, 6)
SEEN = datetime(2025, 1, 7, 19, 0, tzinfo=UTC)


def entry(n: int, kind: LedgerKind | str, school: str = SCHOOL) -> LedgerEntry:
    return LedgerEntry(
        school_id=school,
        pupil_id=f"{school}:{n}",
        date=MON,
        session=Session.AM,
        kind=kind,
        original_code="N",
        new_code="I",
        observed_at=SEEN,
    )


def test_ledger_kinds_are_the_stored_spellings():
    assert KINDS == ("observed_change", "observed_new", "observed_deleted", "mis_amendment")
    assert [kind.value for kind in LedgerKind] == list(KINDS)
    assert OBSERVED_KINDS == ("observed_change", "observed_deleted")


def test_kind_given_as_enum_or_text_stores_and_reads_the_same(store: Store, raw):
    records = store.append_ledger(
        [
            entry(1, LedgerKind.OBSERVED_NEW),
            entry(2, "observed_new"),
            entry(3, LedgerKind.OBSERVED_DELETED),
        ]
    )

    assert [r.hash for r in records] == [r.hash for r in store.ledger()]
    assert [row[0] for row in raw("SELECT kind FROM ledger ORDER BY seq")] == [
        "observed_new",
        "observed_new",
        "observed_deleted",
    ]
    assert all(type(r.kind) is LedgerKind for r in store.ledger())
    assert [r.seq for r in store.ledger(SCHOOL, kinds=OBSERVED_KINDS)] == [3]
    assert store.verify_ledger().ok


def test_ledger_entry_by_seq(store: Store):
    records = store.append_ledger(
        [entry(1, LedgerKind.OBSERVED_NEW), entry(2, LedgerKind.OBSERVED_CHANGE, school="abbey")]
    )

    assert store.ledger_entry(2) == records[1]
    assert store.ledger_entry(3) is None


def test_check_ledger_names_the_school_of_the_broken_entry(store: Store, raw):
    store.append_ledger(
        [entry(1, LedgerKind.OBSERVED_NEW), entry(2, LedgerKind.OBSERVED_CHANGE, school="abbey")]
    )
    assert store.check_ledger().ok

    drop_append_only_triggers(store, raw)
    raw("UPDATE ledger SET new_code = 'O' WHERE seq = 2")
    check = store.check_ledger()

    assert (check.ok, check.broken_seq, check.broken_school_id) == (False, 2, "abbey")
    assert check.to_dict()["broken"] == {"seq": 2, "school": "abbey", "reason": check.reason}


def test_capabilities_round_trip(store: Store):
    assert store.capabilities(SCHOOL) == {}
    store.set_capabilities(SCHOOL, {"registers": True, "amendments": False}, at=SEEN)
    assert store.capabilities(SCHOOL) == {"registers": True, "amendments": False}


def test_a_snapshot_does_not_see_a_later_commit(store: Store):
    store.upsert_school(School(id="abbey", name="Abbey"), at=SEEN)
    with store.snapshot() as conn:
        assert [s.id for s in store.schools(conn=conn)] == ["abbey"]
        store.upsert_school(School(id="brook", name="Brook"), at=SEEN)
        assert [s.id for s in store.schools(conn=conn)] == ["abbey"]
    assert [s.id for s in store.schools()] == ["abbey", "brook"]


def test_record_changes_ledgers_a_sync_once(store: Store):
    mis = Amendment(
        pupil_id=f"{SCHOOL}:1",
        date=MON,
        session="AM",
        original_code="N",
        amended_code="I",
        source_ref="amend-1",
    )
    first = Mark(pupil_id=f"{SCHOOL}:1", date=MON, session="AM", code="N")
    with store.transaction() as tx:
        diff = store.upsert_marks([first], SCHOOL, at=SEEN, conn=tx)
        recorded = store.record_changes(SCHOOL, diff, [], [mis, mis], at=SEEN, conn=tx)
    assert [r.kind for r in recorded.records] == ["observed_new", "mis_amendment"]
    assert (recorded.amendments_new, recorded.marks_changed) == (1, 0)

    with store.transaction() as tx:
        diff = store.upsert_marks(
            [first.model_copy(update={"code": "I"})], SCHOOL, at=SEEN, conn=tx
        )
        recorded = store.record_changes(SCHOOL, diff, [], [mis], at=SEEN, conn=tx)
    assert [(r.kind, r.original_code, r.new_code) for r in recorded.records] == [
        ("observed_change", "N", "I")
    ]
    assert (recorded.amendments_new, recorded.marks_changed) == (0, 1)
    observed = store.amendments(SCHOOL, source="observed")
    assert [a.source_ref for a in observed] == [f"ledger:{recorded.records[0].seq}"]


def test_amendment_key_and_dedupe():
    a = Amendment(
        pupil_id="w:1", date=MON, session="AM", original_code="N", amended_code="I", source_ref="r1"
    )
    later = a.model_copy(update={"reason": "dentist"})
    assert amendment_key(a) == amendment_key(later) == "ref:mis:r1"
    assert dedupe_amendments([a, later]) == [later]
