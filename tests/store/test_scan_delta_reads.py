"""The nightly scan's reads of what changed (``store.scan_delta``) and the rule states
(``store.rule_state``), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from registerwatch.calendar import LONDON
from registerwatch.schema import Mark, Register, Session
from registerwatch.store import SCHOOL_ROW, MarkKey, RuleState, Store

SCHOOL = "wenlock"
MON = date(2025, 1, 6)
T1 = datetime(2025, 1, 6, 18, 0, tzinfo=UTC)
T2 = T1 + timedelta(days=1)
T3 = T2 + timedelta(days=1)


def test_a_register_changed_at_moves_only_when_its_content_changes(store: Store) -> None:
    opened = datetime(2025, 1, 6, 8, 45, tzinfo=LONDON)
    am = Register(school_id=SCHOOL, group="8L", date=MON, session="AM", opened_at=opened)
    pm = Register(school_id=SCHOOL, group="8L", date=MON, session="PM", opened_at=opened)
    store.upsert_registers([am, pm], at=T1)
    assert store.latest_register_change(SCHOOL) == T1

    store.upsert_registers([am, pm], at=T2)  # the same registers pulled again
    assert store.changed_register_sessions(SCHOOL, T2) == set()
    assert store.latest_register_change(SCHOOL) == T1

    saved = pm.model_copy(update={"completed_at": opened + timedelta(minutes=10)})
    store.upsert_registers([am, saved], at=T3)
    assert store.changed_register_sessions(SCHOOL, T2) == {(MON, Session.PM)}
    assert store.changed_register_sessions(SCHOOL, T1) == {(MON, Session.AM), (MON, Session.PM)}
    assert store.latest_register_change(SCHOOL) == T3


def test_registers_and_changed_marks_of_some_dates(store: Store) -> None:
    tue = MON + timedelta(days=1)
    store.upsert_registers(
        [
            Register(school_id=SCHOOL, group=g, date=d, session=s)
            for g in ("7K", "8L")
            for d in (MON, tue)
            for s in ("AM", "PM")
        ],
        at=T1,
    )
    marks = [
        Mark(pupil_id=f"{SCHOOL}:{n}", date=d, session="AM", code="/")
        for n in (1, 2)
        for d in (MON, tue)
    ]
    store.upsert_marks(marks, SCHOOL, at=T1)
    store.mark_deleted(SCHOOL, [MarkKey(f"{SCHOOL}:2", tue, Session.AM)], T2)

    assert [(r.group, r.date, r.session) for r in store.registers_on(SCHOOL, [tue])] == [
        ("7K", tue, Session.AM),
        ("8L", tue, Session.AM),
        ("7K", tue, Session.PM),
        ("8L", tue, Session.PM),
    ]
    changed = store.changed_mark_keys(SCHOOL, T2)
    assert changed == [(f"{SCHOOL}:2", tue, Session.AM, T2)]


def test_rule_states_round_trip_and_drop_the_rules_not_kept(store: Store) -> None:
    store.save_rule_states(
        SCHOOL,
        {
            SCHOOL_ROW: RuleState(SCHOOL_ROW, MON, {"pupils": {"a": [1, None]}}),
            "REG002": RuleState("REG002", MON, {"a": ["2025-01-06AM"]}),
        },
        at=T1,
    )
    assert store.rule_states(SCHOOL)["REG002"] == RuleState("REG002", MON, {"a": ["2025-01-06AM"]})
    # REG002 failed on the next scan: it keeps no state, so its next run is a full one
    store.save_rule_states(SCHOOL, {SCHOOL_ROW: RuleState(SCHOOL_ROW, MON, {})}, at=T2)
    assert set(store.rule_states(SCHOOL)) == {SCHOOL_ROW}
    store.forget_rule_states(SCHOOL)
    assert store.rule_states(SCHOOL) == {}


def test_changed_mark_keys_from_the_summary_read_equal_the_query(store: Store) -> None:
    tue = MON + timedelta(days=1)
    marks = [
        Mark(pupil_id=f"{SCHOOL}:{n}", date=d, session=s, code="/")
        for n in (1, 2)
        for d in (MON, tue)
        for s in (Session.AM, Session.PM)
    ]
    store.upsert_marks(marks, SCHOOL, at=T1)
    store.mark_deleted(SCHOOL, [MarkKey(f"{SCHOOL}:2", tue, Session.PM)], T2)
    late = marks[0].model_copy(update={"code": "L", "minutes_late": 12})
    store.upsert_marks([late], SCHOOL, at=T3)
    update = store.summary_changes(SCHOOL, T2)  # reads from T2 less the margin
    assert update.changed is not None and len(update.changed) == 2
    for since in (T2, T3, T3 + timedelta(seconds=1)):
        shared = store.changed_mark_keys(SCHOOL, since, read=update)
        assert sorted(shared) == sorted(store.changed_mark_keys(SCHOOL, since))
    # a read that began after ``since`` cannot stand for it: the query runs
    before = store.changed_mark_keys(SCHOOL, T1, read=update)
    assert len(before) == 8


def test_rule_states_sharing_their_objects_are_each_stored_whole(store: Store) -> None:
    pupils = {"a": [["2025-01-06AM", 3]], "b": [None, 1]}
    through = "2025-01-06PM"
    states = {
        "ATT002": RuleState("ATT002", MON, {"v": 2, "through": through, "pupils": pupils}),
        "ATT003": RuleState("ATT003", MON, {"v": 2, "through": through, "pupils": pupils}),
        # the same keys, other objects with other content: dumped on its own
        "ATT004": RuleState("ATT004", MON, {"v": 2, "through": through, "pupils": {"c": [2]}}),
        "REG001": RuleState("REG001", MON, ["x"]),
    }
    store.save_rule_states(SCHOOL, states, at=T1)
    assert store.rule_states(SCHOOL) == states
