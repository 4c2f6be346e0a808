from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from registerwatch.errors import LedgerIntegrityError, StoreError
from registerwatch.schema import Mark, Session
from registerwatch.store import GENESIS_HASH, LedgerEntry, LedgerReport, Store
from registerwatch.store.ledger import entry_hash

SCHOOL = "wenlock"
MON = date(2025, 1, 6)
SEEN = datetime(2025, 1, 7, 19, 0, tzinfo=UTC)


def entry(n: int, kind: str = "observed_change", **payload) -> LedgerEntry:
    return LedgerEntry(
        school_id=SCHOOL, pupil_id=f"{SCHOOL}:{n}", date=MON + timedelta(days=n % 5),
        session=Session.AM if n % 2 else Session.PM, kind=kind, original_code="N",
        new_code="I", observed_at=SEEN + timedelta(minutes=n), payload=payload,
    )


def drop_append_only_triggers(store: Store, raw) -> None:
    if store.dialect == "sqlite":
        raw("DROP TRIGGER ledger_no_update")
        raw("DROP TRIGGER ledger_no_delete")
    else:
        raw("DROP TRIGGER ledger_no_update ON ledger")


def test_each_entry_links_to_the_one_before(store: Store):
    first = store.append_ledger([entry(1, reason="illness"), entry(2)])
    second = store.append_ledger([entry(3, kind="observed_deleted")])
    records = first + second

    assert [r.seq for r in records] == [1, 2, 3]
    assert records[0].prev_hash == GENESIS_HASH
    assert [r.prev_hash for r in records[1:]] == [r.hash for r in records[:-1]]
    assert len({r.hash for r in records}) == 3
    assert store.ledger() == records
    assert store.verify_ledger() == LedgerReport(
        ok=True, entries=3, last_seq=3, last_hash=records[-1].hash
    )


def test_hash_is_sha256_over_the_canonical_json_of_the_entry():
    # Pinned: changing the canonical form would make every existing ledger fail verification.
    e = LedgerEntry(
        school_id="wenlock", pupil_id="wenlock:1", date=date(2025, 1, 6), session=Session.AM,
        kind="observed_change", original_code="N", new_code="I",
        observed_at=datetime(2025, 1, 6, 20, 0, tzinfo=ZoneInfo("Europe/London")),
        payload={"reason": "illness", "by": "Ms Hale"},
    )
    document = (
        '{"date":"2025-01-06","kind":"observed_change","new_code":"I",'
        '"observed_at":"2025-01-06T20:00:00.000000Z","original_code":"N",'
        '"payload":{"by":"Ms Hale","reason":"illness"},"prev_hash":"' + GENESIS_HASH + '",'
        '"pupil_id":"wenlock:1","school_id":"wenlock","seq":1,"session":"AM"}'
    )
    assert json.loads(document)  # the expected text is itself valid JSON
    assert entry_hash(e, 1, GENESIS_HASH) == hashlib.sha256(document.encode()).hexdigest()


def test_empty_ledger_verifies(store: Store):
    assert store.verify_ledger() == LedgerReport(ok=True, entries=0, last_seq=None,
                                                 last_hash=GENESIS_HASH)


def test_payload_is_stored_as_it_was_hashed(store: Store):
    london = datetime(2025, 6, 2, 9, 0, tzinfo=ZoneInfo("Europe/London"))
    (record,) = store.append_ledger([entry(1, day=MON, at=london, session=Session.PM, ratio=1.5)])

    assert record.payload == {
        "day": "2025-01-06", "at": "2025-06-02T08:00:00.000000Z", "session": "PM", "ratio": 1.5,
    }
    assert store.ledger()[0].payload == record.payload
    assert store.verify_ledger().ok


def test_unknown_kind_is_refused_and_nothing_is_written(store: Store):
    with pytest.raises(StoreError, match="ledger kind"):
        store.append_ledger([entry(1), entry(2, kind="observed_guess")])
    assert store.ledger() == []


def test_an_instant_where_the_session_date_belongs_is_refused(store: Store):
    with pytest.raises(StoreError, match="must be a date"):
        store.append_ledger([replace(entry(1), date=SEEN)])
    assert store.ledger() == []


def test_ledger_reader_filters_by_pupil_and_date(store: Store):
    store.append_ledger([entry(n) for n in range(1, 8)])

    assert [r.seq for r in store.ledger(SCHOOL, pupil_id="wenlock:3")] == [3]
    tuesday = MON + timedelta(days=1)
    assert [r.seq for r in store.ledger(start=tuesday, end=tuesday)] == [1, 6]
    assert store.ledger("abbey") == []


def test_database_refuses_to_change_or_remove_entries(store: Store, raw):
    store.append_ledger([entry(1)])

    with pytest.raises(sa.exc.DBAPIError, match="append-only"):
        raw("UPDATE ledger SET new_code = 'O' WHERE seq = 1")
    with pytest.raises(sa.exc.DBAPIError, match="append-only"):
        raw("DELETE FROM ledger WHERE seq = 1")
    assert store.verify_ledger().ok


def test_altered_entry_is_named(store: Store, raw):
    store.append_ledger([entry(n) for n in range(1, 5)])
    drop_append_only_triggers(store, raw)

    raw("UPDATE ledger SET new_code = '/' WHERE seq = 2")
    report = store.verify_ledger()

    assert (report.ok, report.broken_seq, report.entries, report.last_seq) == (False, 2, 1, 1)
    assert "altered" in report.reason
    with pytest.raises(LedgerIntegrityError, match="ledger entry 2"):
        report.raise_if_broken()


def test_altered_payload_is_named(store: Store, raw):
    store.append_ledger([entry(n, reason="illness") for n in range(1, 4)])
    drop_append_only_triggers(store, raw)

    raw("""UPDATE ledger SET payload = '{"reason": "medical appointment"}' WHERE seq = 3""")

    report = store.verify_ledger()
    assert (report.ok, report.broken_seq) == (False, 3)


def test_rewritten_entry_with_a_recomputed_hash_breaks_the_next_link(store: Store, raw):
    records = store.append_ledger([entry(n) for n in range(1, 5)])
    drop_append_only_triggers(store, raw)
    forged = replace(records[1], new_code="/")
    raw("UPDATE ledger SET new_code = '/', hash = :h WHERE seq = 2",
        h=entry_hash(forged, 2, records[0].hash))

    report = store.verify_ledger()

    assert (report.ok, report.broken_seq) == (False, 3)
    assert "entry 2" in report.reason


def test_removed_entry_is_named(store: Store, raw):
    store.append_ledger([entry(n) for n in range(1, 5)])
    drop_append_only_triggers(store, raw)

    raw("DELETE FROM ledger WHERE seq = 3")

    report = store.verify_ledger()
    assert (report.ok, report.broken_seq) == (False, 3)
    assert "missing" in report.reason


def test_ledger_entries_roll_back_with_the_sync_transaction(store: Store):
    store.append_ledger([entry(1)])
    with pytest.raises(RuntimeError), store.transaction() as tx:
        store.upsert_marks([Mark(pupil_id="wenlock:1", date=MON, session="AM", code="I")],
                           SCHOOL, conn=tx)
        store.append_ledger([entry(2)], conn=tx)
        raise RuntimeError("killed mid-sync")

    assert [r.seq for r in store.ledger()] == [1]
    assert store.marks(SCHOOL) == []
    assert store.append_ledger([entry(3)])[0].seq == 2
    assert store.verify_ledger().ok


def test_concurrent_appenders_never_fork_the_chain(store: Store):
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def appender(worker: int) -> None:
        try:
            start.wait()
            for n in range(10):
                with store.transaction() as tx:
                    store.append_ledger([entry(worker * 100 + n)], conn=tx)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=appender, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    report = store.verify_ledger()
    assert (report.ok, report.entries, report.last_seq) == (True, 40, 40)
    assert sorted(int(r.pupil_id.split(":")[1]) for r in store.ledger()) == sorted(
        w * 100 + n for w in range(4) for n in range(10)
    )
