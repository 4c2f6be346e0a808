from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from registerwatch.errors import InvalidRecord, StoreError
from registerwatch.schema import (
    Address,
    Amendment,
    Calendar,
    Closure,
    ClosureKind,
    Contact,
    Finding,
    Notification,
    Pupil,
    Register,
    RegisterTimes,
    School,
    SessionRef,
    Term,
)
from registerwatch.store import Store

SCHOOL = "wenlock"
LONDON = ZoneInfo("Europe/London")
MON = date(2025, 1, 6)
T1 = datetime(2025, 1, 6, 19, 0, tzinfo=UTC)
T2 = datetime(2025, 1, 7, 19, 0, tzinfo=UTC)


def pupil(mis_id: str, **extra) -> Pupil:
    return Pupil(id=f"{SCHOOL}:{mis_id}", school_id=SCHOOL, mis_id=mis_id, **extra)


# -- quarantine --------------------------------------------------------------------------------


def test_quarantine_rerun_updates_instead_of_duplicating(store: Store):
    store.quarantine(
        SCHOOL,
        "marks",
        "'Q9' is not an attendance code",
        record_ref="rec-1",
        field="code",
        raw={"code": "Q9", "student": 7},
        at=T1,
    )
    store.quarantine(
        SCHOOL,
        "marks",
        "'Q8' is not an attendance code",
        record_ref="rec-1",
        field="code",
        raw=b'{"code": "Q8"}',
        at=T2,
    )
    store.quarantine(SCHOOL, "marks", "no date", record_ref="rec-1", field="date", at=T2)

    entries = store.quarantined(SCHOOL)

    assert [(e.record_ref, e.field, e.occurrences) for e in entries] == [
        ("rec-1", "code", 2),
        ("rec-1", "date", 1),
    ]
    code = entries[0]
    assert code.reason == "'Q8' is not an attendance code"
    assert code.raw == '{"code": "Q8"}'
    assert (code.first_seen_at, code.last_seen_at) == (T1, T2)


def test_quarantine_without_ref_or_field_is_still_one_entry(store: Store):
    for _ in range(3):
        store.quarantine(SCHOOL, "pupils", "page was HTML, not JSON", raw="<html>", at=T1)

    (entry,) = store.quarantined(SCHOOL, resource="pupils")
    assert (entry.record_ref, entry.field, entry.occurrences) == (None, None, 3)


def test_quarantine_error_takes_its_details_from_the_exception(store: Store):
    error = InvalidRecord(
        "impossible date 2025-02-30", record_ref="r9", field="date", resource="marks"
    )
    store.quarantine_error(SCHOOL, error, raw={"date": "2025-02-30"}, at=T1)

    (entry,) = store.quarantined()
    assert (entry.school_id, entry.resource, entry.record_ref, entry.field, entry.reason) == (
        SCHOOL,
        "marks",
        "r9",
        "date",
        "impossible date 2025-02-30",
    )
    assert entry.raw == '{"date":"2025-02-30"}'


# -- bookmarks ---------------------------------------------------------------------------------


def test_bookmarks_are_per_school_and_resource(store: Store):
    assert store.get_bookmark(SCHOOL, "marks") is None

    store.set_bookmark(SCHOOL, "marks", "2025-01-06T00:00:00Z", at=T1)
    store.set_bookmark(SCHOOL, "marks", "2025-01-07T00:00:00Z", at=T2)
    store.set_bookmark(SCHOOL, "pupils", "cursor:41", at=T2)
    store.set_bookmark("abbey", "marks", "7", at=T2)

    assert store.get_bookmark(SCHOOL, "marks") == "2025-01-07T00:00:00Z"
    assert store.get_bookmark(SCHOOL, "pupils") == "cursor:41"
    assert store.get_bookmark("abbey", "marks") == "7"


def test_bookmark_set_in_a_failed_transaction_is_not_kept(store: Store):
    store.set_bookmark(SCHOOL, "marks", "old", at=T1)
    with pytest.raises(RuntimeError), store.transaction() as tx:
        store.set_bookmark(SCHOOL, "marks", "new", at=T2, conn=tx)
        raise RuntimeError("killed")
    assert store.get_bookmark(SCHOOL, "marks") == "old"


# -- schools, pupils, calendars, registers -----------------------------------------------------


def test_school_round_trips_and_updates(store: Store):
    school = School(
        id=SCHOOL,
        urn="123456",
        laestab="8934001",
        name="Wenlock Academy",
        la_code="893",
        phase="secondary",
        vendor="arbor",
    )
    store.upsert_school(school, at=T1)
    store.upsert_school(school.model_copy(update={"name": "Wenlock Academy Trust"}), at=T2)

    assert store.schools() == [school.model_copy(update={"name": "Wenlock Academy Trust"})]
    assert store.school("absent") is None


def test_pupils_round_trip_with_address_and_contacts(store: Store):
    home = Address(lines=["1 Mill Lane"], town="Much Wenlock", postcode="TF13 6AA")
    ada = pupil(
        "1",
        upn="A123456789012",
        legal_forename="Ada",
        legal_surname="Lovelace",
        dob=date(2012, 12, 10),
        sex="F",
        nc_year="8",
        reg_group="8L",
        starting_day=date(2023, 9, 4),
        address=home,
        ehcp=True,
        has_social_worker=True,
        contacts=[
            Contact(
                name="Anne Lovelace",
                relationship="mother",
                address=home,
                phone="01952 000000",
                lives_with=True,
            )
        ],
    )
    bob = pupil(
        "2",
        legal_forename="Bob",
        starting_day=date(2023, 9, 4),
        leaving_date=date(2024, 12, 20),
        deletion_ground="8(1)(b)",
        future_address=Address(lines=["2 High St"], town="Leeds"),
        new_school="107000",
    )

    assert store.upsert_pupils([bob, ada], at=T1) == 2
    assert store.pupils(SCHOOL) == [ada, bob]

    store.upsert_pupils([ada.model_copy(update={"reg_group": "8W"})], at=T2)
    assert [p.reg_group for p in store.pupils(SCHOOL)] == ["8W", None]
    assert store.pupils("abbey") == []


def test_calendar_round_trips(store: Store):
    calendar = Calendar(
        school_id=SCHOOL,
        terms=[
            Term(start=date(2024, 9, 4), end=date(2024, 12, 20)),
            Term(start=date(2025, 1, 6), end=date(2025, 4, 4)),
        ],
        closures=[
            Closure(date=date(2024, 11, 8), kind=ClosureKind.PLANNED, reason="INSET"),
            Closure(date=date(2025, 1, 9), session="PM", kind=ClosureKind.UNEXPECTED),
        ],
        register_times=RegisterTimes(am_open=time(8, 40), pm_open=time(13, 5)),
    )
    store.upsert_calendar(calendar, at=T1)
    assert store.calendar(SCHOOL) == calendar

    shorter = calendar.model_copy(update={"closures": []})
    store.upsert_calendar(shorter, at=T2)
    assert store.calendar(SCHOOL) == shorter
    assert store.calendar("abbey") is None


def test_registers_upsert_by_group_date_and_session(store: Store):
    opened = datetime(2025, 1, 6, 8, 45, tzinfo=LONDON)
    am = Register(school_id=SCHOOL, group="8L", date=MON, session="AM", opened_at=opened)
    pm = Register(school_id=SCHOOL, group="8L", date=MON, session="PM")
    other = Register(school_id=SCHOOL, group="7K", date=MON + timedelta(days=1), session="AM")
    store.upsert_registers([am, pm, other], at=T1)

    saved = am.model_copy(update={"completed_at": opened + timedelta(minutes=12), "taken_by": "JH"})
    store.upsert_registers([saved], at=T2)

    assert store.registers(SCHOOL) == [saved, pm, other]
    assert store.registers(SCHOOL, MON, MON, group="8L") == [saved, pm]
    (stored,) = store.registers(SCHOOL, MON, MON, group="8L")[:1]
    assert stored.opened_at.tzinfo is UTC and stored.opened_at == opened


# -- amendments --------------------------------------------------------------------------------


def test_amendments_reload_without_duplicating(store: Store):
    with_ref = Amendment(
        pupil_id="wenlock:1",
        date=MON,
        session="AM",
        original_code="N",
        amended_code="I",
        source_ref="amend-77",
    )
    without_ref = Amendment(
        pupil_id="wenlock:2",
        date=MON,
        session="PM",
        original_code="N",
        amended_code="M",
        amended_at=datetime(2025, 1, 7, 9, 0, tzinfo=LONDON),
        amended_by_name="J Hale",
    )

    assert store.insert_amendments([with_ref, without_ref], SCHOOL, at=T1) == 2
    # The MIS fills in the reason and position later: same records, updated.
    later = [
        with_ref.model_copy(update={"reason": "parent rang", "amended_by_name": "J Hale"}),
        without_ref.model_copy(update={"reason": "dentist", "amended_by_position": "Office"}),
    ]
    assert store.insert_amendments(later, SCHOOL, at=T2) == 0

    stored = store.amendments(SCHOOL)
    assert stored == later
    assert (
        store.insert_amendments(
            [with_ref.model_copy(update={"source_ref": "amend-78"})], SCHOOL, at=T2
        )
        == 1
    )
    assert len(store.amendments(SCHOOL)) == 3
    assert store.amendments(SCHOOL, pupil_id="wenlock:2") == [later[1]]


# -- notifications -----------------------------------------------------------------------------


def test_notifications_are_recorded_once(store: Store):
    sickness = Notification(
        kind="sickness",
        school_id=SCHOOL,
        pupil_id="wenlock:1",
        episode_start=date(2024, 11, 4),
        made_at=T1,
        channel="email",
        reference="LA-991",
    )
    daily = Notification(kind="dfe_daily", school_id=SCHOOL, made_at=T2, channel="http")

    assert store.add_notification(sickness) is True
    assert store.add_notification(sickness) is False
    assert store.add_notifications([sickness, daily]) == 1

    assert store.notifications(SCHOOL) == [sickness, daily]
    assert store.notifications(SCHOOL, kind="sickness", pupil_id="wenlock:1") == [sickness]
    assert store.notifications(SCHOOL, kind="cme") == []


# -- findings ----------------------------------------------------------------------------------


def finding(fingerprint: str, **extra) -> Finding:
    base = dict(
        rule="MRK001",
        severity="error",
        school_id=SCHOOL,
        pupil_id="wenlock:1",
        first_session=SessionRef(date=MON, session="AM"),
        last_session=SessionRef(date=MON, session="PM"),
        due=date(2025, 1, 13),
        message="N still on 6 Jan AM",
        evidence={"codes": ["N", "N"], "since": MON},
        fingerprint=fingerprint,
    )
    return Finding(**(base | extra))


def test_findings_save_load_and_keep_their_history(store: Store):
    store.save_findings(
        [
            finding("fp-1", first_seen=T1, last_seen=T1),
            finding(
                "fp-2",
                rule="UPN001",
                pupil_id=None,
                first_session=None,
                last_session=None,
                due=None,
                severity="warning",
                first_seen=T1,
                last_seen=T1,
            ),
        ]
    )
    assert store.acknowledge_finding("fp-1", "chasing the family", at=T1) is True
    assert store.acknowledge_finding("fp-absent", at=T1) is False

    # Next scan: fp-1 still there (a later first_seen must not overwrite the first), fp-2 fixed.
    store.save_findings(
        [
            finding("fp-1", first_seen=T2, last_seen=T2),
            finding(
                "fp-2",
                rule="UPN001",
                pupil_id=None,
                first_session=None,
                last_session=None,
                due=None,
                severity="warning",
                first_seen=T1,
                last_seen=T1,
                resolved_at=T2,
            ),
        ]
    )

    loaded = store.load_findings(SCHOOL)
    assert set(loaded) == {"fp-1", "fp-2"}
    open_one = loaded["fp-1"]
    assert open_one.status == "open"
    assert open_one.finding == finding(
        "fp-1", first_seen=T1, last_seen=T2, evidence={"codes": ["N", "N"], "since": "2025-01-06"}
    )
    assert (open_one.acknowledged_at, open_one.ack_note) == (T1, "chasing the family")
    assert loaded["fp-2"].status == "resolved"
    assert loaded["fp-2"].finding.resolved_at == T2
    assert list(store.load_findings(SCHOOL, status="open")) == ["fp-1"]


T3 = datetime(2025, 1, 8, 19, 0, tzinfo=UTC)


def test_reopened_finding_is_first_seen_again_and_loses_its_acknowledgement(store: Store):
    store.save_findings(
        [finding("fp-1", first_seen=T1, last_seen=T1), finding("fp-2", first_seen=T1, last_seen=T1)]
    )
    store.acknowledge_finding("fp-1", "fixed in the MIS", at=T1)
    store.acknowledge_finding("fp-2", "chasing", at=T1)
    store.save_findings([finding("fp-1", first_seen=T1, last_seen=T1, resolved_at=T2)])

    # T3: the breach is back. save_findings reopens it but keeps first_seen and the ack on
    # purpose; reopen_findings makes it the new breach it is.
    with store.transaction() as tx:
        store.save_findings([finding("fp-1", first_seen=T3, last_seen=T3)], conn=tx)
        assert store.reopen_findings(["fp-1", "fp-1", "fp-absent"], T3, conn=tx) == 1

    loaded = store.load_findings(SCHOOL)
    reopened = loaded["fp-1"]
    assert reopened.status == "open"
    assert (reopened.finding.first_seen, reopened.finding.last_seen) == (T3, T3)
    assert (reopened.acknowledged_at, reopened.ack_note) == (None, None)
    # Another finding is left as it was.
    assert (
        loaded["fp-2"].finding.first_seen,
        loaded["fp-2"].acknowledged_at,
        loaded["fp-2"].ack_note,
    ) == (T1, T1, "chasing")


def test_reopen_findings_defaults_to_the_store_clock_and_refuses_naive_times(store: Store):
    store.save_findings([finding("fp-1", first_seen=T1, last_seen=T1)])

    assert store.reopen_findings(["fp-1"]) == 1
    assert store.load_findings(SCHOOL)["fp-1"].finding.first_seen == datetime(
        2025, 1, 6, 18, 0, tzinfo=UTC
    )  # conftest.FIXED_NOW
    with pytest.raises(StoreError, match="naive datetime"):
        store.reopen_findings(["fp-1"], datetime(2025, 1, 8, 19, 0))


def test_clear_acknowledgements_withdraws_only_the_named_ones(store: Store):
    store.save_findings([finding(f"fp-{n}", first_seen=T1, last_seen=T1) for n in range(3)])
    for n in range(3):
        store.acknowledge_finding(f"fp-{n}", f"note {n}", at=T2)

    assert store.clear_acknowledgements(["fp-0", "fp-2", "fp-absent"]) == 2
    assert store.clear_acknowledgements([]) == 0

    loaded = store.load_findings(SCHOOL)
    assert {fp: (f.acknowledged_at, f.ack_note) for fp, f in loaded.items()} == {
        "fp-0": (None, None),
        "fp-1": (T2, "note 1"),
        "fp-2": (None, None),
    }
    # first_seen and status are not touched: the finding is the same breach, unacknowledged.
    assert {f.finding.first_seen for f in loaded.values()} == {T1}
    assert {f.status for f in loaded.values()} == {"open"}


def test_finding_updates_cover_more_fingerprints_than_one_in_list(store: Store):
    many = [f"fp-{n:04d}" for n in range(1_203)]  # more than IN_LIST_LIMIT (500) twice over
    store.save_findings([finding(fp, first_seen=T1, last_seen=T1) for fp in many])
    for fp in many[:3] + many[-3:]:
        store.acknowledge_finding(fp, at=T2)

    assert store.reopen_findings(many, T3) == len(many)

    loaded = store.load_findings(SCHOOL)
    assert {f.finding.first_seen for f in loaded.values()} == {T3}
    assert {f.acknowledged_at for f in loaded.values()} == {None}


def test_finding_without_fingerprint_is_refused(store: Store):
    with pytest.raises(StoreError, match="fingerprint"):
        store.save_findings([finding(None)])


# -- outbox ------------------------------------------------------------------------------------


def test_outbox_queues_each_artefact_once(store: Store):
    payload = b"<SicknessReturn/>"
    item, created = store.enqueue_outbox(
        return_kind="la-sickness",
        school_id=SCHOOL,
        pupil_id="wenlock:1",
        episode="2024-11-04",
        idempotency_key="la-sickness:wenlock:1:2024-11-04",
        payload=payload,
        artefact_path="out/la-sickness-1.xml",
        at=T1,
    )
    again, created_again = store.enqueue_outbox(
        return_kind="la-sickness",
        school_id=SCHOOL,
        idempotency_key=item.idempotency_key,
        payload=b"<different/>",
        at=T2,
    )

    assert created is True and created_again is False
    assert again == item
    assert (item.state, item.attempts, item.payload) == ("queued", 0, payload)
    assert item.sha256 == hashlib.sha256(payload).hexdigest()
    assert item.created_at == T1
    assert store.outbox_items() == [item]


def test_outbox_refuses_a_hash_that_does_not_match(store: Store):
    with pytest.raises(StoreError, match="does not match"):
        store.enqueue_outbox(
            return_kind="dfe-daily",
            school_id=SCHOOL,
            idempotency_key="k",
            payload=b"abc",
            sha256="0" * 64,
        )
    assert store.outbox_items() == []


def test_outbox_state_moves_only_from_the_expected_state(store: Store):
    item, _ = store.enqueue_outbox(
        return_kind="dfe-daily",
        school_id=SCHOOL,
        idempotency_key="dfe-daily:wenlock:2025-01-06",
        payload=b"x",
    )

    assert store.update_outbox(
        item.id,
        state="failed",
        expected_state="queued",
        attempted=True,
        last_error="HTTP 503",
        at=T1,
    )
    # A second worker that still thinks it is queued cannot claim it.
    assert not store.update_outbox(item.id, state="sent", expected_state="queued", at=T1)
    assert store.update_outbox(
        item.id, state="sent", expected_state="failed", attempted=True, receipt="RCPT-1", at=T2
    )

    sent = store.outbox_item(item.id)
    assert (sent.state, sent.attempts, sent.last_error, sent.receipt, sent.updated_at) == (
        "sent",
        2,
        "HTTP 503",
        "RCPT-1",
        T2,
    )
    assert store.outbox_items(state="queued") == []
    assert store.outbox_item(idempotency_key="dfe-daily:wenlock:2025-01-06") == sent
    with pytest.raises(StoreError, match="outbox state"):
        store.update_outbox(item.id, state="lost")


# -- runs --------------------------------------------------------------------------------------


def test_runs_are_recorded_newest_first(store: Store):
    first = store.start_run("sync", at=T1)
    store.finish_run(first, "ok", {"marks": 120, "quarantined": 1}, at=T1 + timedelta(minutes=3))
    second = store.start_run("scan", at=T2)

    runs = store.runs()

    assert [r.id for r in runs] == [second, first]
    assert (runs[1].command, runs[1].outcome, runs[1].counts) == (
        "sync",
        "ok",
        {"marks": 120, "quarantined": 1},
    )
    assert runs[1].finished_at == T1 + timedelta(minutes=3)
    assert (runs[0].finished_at, runs[0].outcome) == (None, None)
    assert [r.id for r in store.runs(command="sync")] == [first]
    with pytest.raises(StoreError, match="no run"):
        store.finish_run(999, "ok")
