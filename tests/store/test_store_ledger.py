from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from registerwatch.errors import LedgerIntegrityError, StoreError
from registerwatch.schema import Mark, Session
from registerwatch.store import GENESIS_HASH, LedgerEntry, LedgerRecord, LedgerReport, Store, bulk
from registerwatch.store.ledger import canonical_json, entry_hash, instant_text, link

SCHOOL = "wenlock"
MON = date(2025, 1, 6)
SEEN = datetime(2025, 1, 7, 19, 0, tzinfo=UTC)


def entry(n: int, kind: str = "observed_change", **payload) -> LedgerEntry:
    return LedgerEntry(
        school_id=SCHOOL,
        pupil_id=f"{SCHOOL}:{n}",
        date=MON + timedelta(days=n % 5),
        session=Session.AM if n % 2 else Session.PM,
        kind=kind,
        original_code="N",
        new_code="I",
        observed_at=SEEN + timedelta(minutes=n),
        payload=payload,
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
        school_id="wenlock",
        pupil_id="wenlock:1",
        date=date(2025, 1, 6),
        session=Session.AM,
        kind="observed_change",
        original_code="N",
        new_code="I",
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


def _reference_hash(record: LedgerRecord) -> str:
    """The hash as first specified: sha256 over canonical_json of the whole document. The
    store now spells that text out without re-serialising the payload; it must not differ."""
    document = {
        "seq": record.seq,
        "school_id": record.school_id,
        "pupil_id": record.pupil_id,
        "date": record.date.isoformat(),
        "session": str(record.session),
        "kind": record.kind,
        "original_code": record.original_code,
        "new_code": record.new_code,
        "observed_at": instant_text(record.observed_at),
        "payload": record.payload,
        "prev_hash": record.prev_hash,
    }
    return hashlib.sha256(canonical_json(document).encode("utf-8")).hexdigest()


_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
    | st.dates()
)
_payloads = st.dictionaries(
    st.text(max_size=6) | st.integers(-20, 20).map(str),
    st.recursive(
        _scalars,
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
        ),
        max_leaves=8,
    ),
    max_size=5,
)


@settings(max_examples=200, deadline=None)
@given(
    payloads=st.lists(_payloads, min_size=1, max_size=4),
    codes=st.lists(st.none() | st.text(max_size=3), min_size=2, max_size=2),
    pupil=st.text(min_size=1, max_size=10),
)
def test_linked_hashes_match_the_canonical_document(payloads, codes, pupil):
    entries = [
        replace(
            entry(n), pupil_id=pupil, original_code=codes[0], new_code=codes[1], payload=payload
        )
        for n, payload in enumerate(payloads, start=1)
    ]
    records = [record for record, _text in link(entries, 41, "a" * 64)]

    for record in records:
        assert (
            record.hash
            == _reference_hash(record)
            == entry_hash(record, record.seq, record.prev_hash)
        )
    assert [r.seq for r in records] == list(range(42, 42 + len(entries)))


def test_payload_with_non_string_keys_is_hashed_as_it_reads_back(store: Store):
    # {10: .., 9: ..} sorts 9, 10 as numbers but "10", "9" once stored as JSON text.
    payload = {10: "ten", 9: "nine", 11: {2: [1.5, None]}}
    (record,) = store.append_ledger([replace(entry(1), payload=payload)])

    assert record.payload == {"10": "ten", "9": "nine", "11": {"2": [1.5, None]}}
    assert record.hash == _reference_hash(record)
    assert store.ledger() == [record]
    assert store.verify_ledger().ok


def test_payload_is_stored_as_its_canonical_text(store: Store, raw):
    store.append_ledger([entry(1, reason="illness – ü", by="Ms Hale", count=3)])

    (stored,) = raw("SELECT CAST(payload AS TEXT) FROM ledger")
    assert json.loads(stored[0]) == {"by": "Ms Hale", "count": 3, "reason": "illness – ü"}
    if store.dialect == "sqlite":  # PostgreSQL's json keeps the text too, but may re-space it
        assert stored[0] == '{"by":"Ms Hale","count":3,"reason":"illness – ü"}'
        # The row goes in through the driver: dates and instants must be spelt as
        # SQLAlchemy spells them everywhere else in the store (UTC, no offset).
        assert tuple(raw("SELECT date, session, observed_at FROM ledger")[0]) == (
            "2025-01-07",
            "AM",
            "2025-01-07 19:01:00.000000",
        )
    else:
        assert tuple(
            raw("SELECT date, session, observed_at, json_typeof(payload) FROM ledger")[0]
        ) == (MON + timedelta(days=1), "AM", SEEN + timedelta(minutes=1), "object")


def test_large_append_is_batched_and_verifies(store: Store, monkeypatch):
    monkeypatch.setattr(bulk, "ROWS_PER_CALL", 7)  # 30 rows: four full batches and one of two
    records = store.append_ledger([entry(n, i=n) for n in range(1, 31)])

    assert [r.seq for r in records] == list(range(1, 31))
    assert store.ledger() == records
    assert store.verify_ledger() == LedgerReport(
        ok=True, entries=30, last_seq=30, last_hash=records[-1].hash
    )


def test_empty_ledger_verifies(store: Store):
    assert store.verify_ledger() == LedgerReport(
        ok=True, entries=0, last_seq=None, last_hash=GENESIS_HASH
    )


def test_payload_is_stored_as_it_was_hashed(store: Store):
    london = datetime(2025, 6, 2, 9, 0, tzinfo=ZoneInfo("Europe/London"))
    (record,) = store.append_ledger([entry(1, day=MON, at=london, session=Session.PM, ratio=1.5)])

    assert record.payload == {
        "day": "2025-01-06",
        "at": "2025-06-02T08:00:00.000000Z",
        "session": "PM",
        "ratio": 1.5,
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


def test_ledger_reader_filters_by_kind(store: Store):
    store.append_ledger(
        [
            entry(1, kind="observed_new"),
            entry(2, kind="observed_change"),
            entry(3, kind="mis_amendment"),
            entry(4, kind="observed_deleted"),
            entry(5, kind="observed_new"),
            entry(6, kind="observed_change"),
        ]
    )
    store.append_ledger([replace(entry(7), school_id="abbey", pupil_id="abbey:7")])

    observed = store.ledger(SCHOOL, kinds=("observed_change", "observed_deleted"))
    assert [(r.seq, r.kind) for r in observed] == [
        (2, "observed_change"),
        (4, "observed_deleted"),
        (6, "observed_change"),
    ]
    # The records are the stored ones, hashes and all.
    assert observed == [r for r in store.ledger(SCHOOL) if r.seq in (2, 4, 6)]
    assert [r.seq for r in store.ledger(kinds=["observed_change"])] == [2, 6, 7]
    assert [r.seq for r in store.ledger(SCHOOL, kinds=iter(["mis_amendment"]))] == [3]
    assert [r.seq for r in store.ledger(SCHOOL, kinds="observed_deleted")] == [4]
    assert [
        r.seq for r in store.ledger(SCHOOL, pupil_id="wenlock:6", kinds=["observed_change"])
    ] == [6]
    assert store.ledger(SCHOOL, kinds=[]) == []


def test_ledger_reader_refuses_an_unknown_kind(store: Store):
    store.append_ledger([entry(1)])
    with pytest.raises(StoreError, match="'observed_guess' is not one of"):
        store.ledger(SCHOOL, kinds=["observed_change", "observed_guess"])


def test_kind_filter_is_served_by_the_school_kind_index(store: Store):
    store.append_ledger([entry(n, kind="observed_new") for n in range(1, 50)])
    engine = store.engine
    indexes = {ix["name"]: ix["column_names"] for ix in sa.inspect(engine).get_indexes("ledger")}
    assert indexes["ix_ledger_school_id_kind"] == ["school_id", "kind"]
    if store.dialect == "sqlite":
        with engine.connect() as conn:
            plan = " ".join(
                str(row[-1])
                for row in conn.exec_driver_sql(
                    "EXPLAIN QUERY PLAN SELECT seq FROM ledger WHERE school_id = 'wenlock' "
                    "AND kind IN ('observed_change', 'observed_deleted') ORDER BY seq"
                )
            )
        assert "ix_ledger_school_id_kind" in plan


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
    raw(
        "UPDATE ledger SET new_code = '/', hash = :h WHERE seq = 2",
        h=entry_hash(forged, 2, records[0].hash),
    )

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
        store.upsert_marks(
            [Mark(pupil_id="wenlock:1", date=MON, session="AM", code="I")], SCHOOL, conn=tx
        )
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
