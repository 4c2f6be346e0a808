"""The fast path of ``SessionMarksStream.map`` gives exactly what mapping each record through
``to_schema`` gives (``map_each``): the same marks (values, fields set, order), the same
quarantine entries (reference, field, reason, raw record), the same count of unmarked sessions
and the same remembered duplicates, for well-formed and hostile records alike."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from types import MappingProxyType
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registerwatch.adapters.base import Batch
from registerwatch.adapters.go4schools.mapping import CodeEntry, CodeTable
from registerwatch.adapters.go4schools.streams import SessionMarksStream
from registerwatch.schema import Mark

DAY = date(2025, 9, 8)
OTHER_DAY = date(2025, 9, 9)


def code_table() -> CodeTable:
    table = CodeTable()
    for n, code in enumerate(("/", "\\", "N", "L", "I"), start=1):
        table.codes[n] = CodeEntry(id=n, vendor_code=code, national=code)
    table.codes[6] = CodeEntry(id=6, vendor_code="Z9", national=None)  # no national meaning
    table.codes[7] = CodeEntry(id=7, vendor_code="L\x01", national="L")  # refused as text
    table.aliases[101] = (4, CodeEntry(id=101, vendor_code="L1", national="L"))
    table.aliases[102] = (5, CodeEntry(id=102, vendor_code="i", national="I"))
    table.aliases[103] = (6, CodeEntry(id=103, vendor_code="z", national=None))
    return table


MISSING = object()
student_ids = st.one_of(
    st.integers(min_value=1001, max_value=1006),
    st.sampled_from([0, -1, 10**15, 10**20, True, None, "1002", " 1003", 1004.0, 1.5, [1]]),
)
dates = st.one_of(
    st.just("2025-09-08T00:00:00"),
    st.sampled_from(["2025-09-08", "2025-09-09T00:00:00", "2025-02-30T00:00:00", "x", 20250908]),
    st.none(),
)
sessions = st.one_of(st.sampled_from(["AM", "PM"]), st.sampled_from(["am", " PM", "X", 1, None]))
mark_ids = st.one_of(
    st.integers(min_value=1, max_value=7), st.sampled_from([99, "3", 2.0, None, True, [1]])
)
alias_ids = st.one_of(st.none(), st.sampled_from([101, 102, 103, 999, "101", 101.0, False]))
lates = st.one_of(st.none(), st.sampled_from([0, 5, -1, "5", 5.0, True, 10**30]))
notes = st.one_of(
    st.none(), st.sampled_from(["", "  ", " bus late ", "a\x00b", "\u202e", "x" * 2100, 5, ["n"]])
)


@st.composite
def records(draw: st.DrawFn) -> Any:
    kind = draw(st.integers(min_value=0, max_value=19))
    if kind == 0:
        return draw(st.sampled_from([None, "record", 5, ["a"], []]))
    record: dict[str, Any] = {}
    for key, values in (
        ("date", dates),
        ("session", sessions),
        ("student_id", student_ids),
        ("class_id", st.none()),
        ("session_mark_id", mark_ids),
        ("session_alias_id", alias_ids),
        ("session_minutes_late", lates),
        ("session_notes", notes),
    ):
        value = draw(st.one_of(values, st.just(MISSING)) if kind == 1 else values)
        if value is not MISSING:
            record[key] = value
    if kind == 2:
        return MappingProxyType(record)  # a Mapping that is not a dict
    return record


def well_formed(student: int, session: str, code: int, **extra: Any) -> dict[str, Any]:
    return {
        "date": "2025-09-08T00:00:00",
        "session": session,
        "student_id": student,
        "class_id": None,
        "session_mark_id": code,
        "session_alias_id": None,
        "session_minutes_late": None,
        "session_notes": None,
        **extra,
    }


def outcome(batch: Batch[Mark], unmarked: int) -> dict[str, Any]:
    position = {id(mark): n for n, mark in enumerate(batch.records)}
    return {
        "marks": [(list(m.__dict__.items()), m.model_fields_set) for m in batch.records],
        "quarantined": [
            (q.resource, q.record_ref, q.field, q.reason, q.raw, q.school)
            for q in batch.quarantined
        ],
        "unmarked": unmarked,
        "remembered": sorted(
            (position[key], raw, ref)
            for key, (mark, raw, ref) in batch.sources.items()
            if mark is batch.records[position[key]]
        ),
        "sources": len(batch.sources),
        "exact_duplicates": batch.exact_duplicates,
    }


def both(rows: list[Any], *, school: str = "s", day: date = DAY) -> tuple[Any, Any]:
    fast = SessionMarksStream(school, code_table()).map(rows, day)
    slow = SessionMarksStream(school, code_table()).map_each(rows, day)
    return outcome(*fast), outcome(*slow)


@given(rows=st.lists(records(), max_size=12))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_hostile_records_map_as_to_schema_maps_them(rows: list[Any]) -> None:
    fast, slow = both(rows)
    assert fast == slow


@given(
    rows=st.lists(records(), max_size=8),
    school=st.sampled_from([" s", "s ", "s\x00", "x" * 1995, "y" * 500]),
)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_odd_school_ids_map_as_to_schema_maps_them(rows: list[Any], school: str) -> None:
    fast, slow = both(rows, school=school)
    assert fast == slow


def test_well_formed_marks_take_the_fast_path_and_keep_their_values() -> None:
    rows = [
        well_formed(1001, "AM", 1),
        well_formed(1001, "PM", 4, session_alias_id=101, session_minutes_late=12),
        well_formed(1002, "AM", 5, session_alias_id=102, session_notes=" doctor "),
        well_formed(1002, "PM", 3, session_mark_id=None),  # listed, not yet marked
    ]
    fast, slow = both(rows)
    assert fast == slow
    batch, unmarked = SessionMarksStream("s", code_table()).map(rows, DAY)
    assert unmarked == 1 and not batch.quarantined
    assert [(m.pupil_id, m.session.value, m.code, m.vendor_code) for m in batch.records] == [
        ("s:1001", "AM", "/", "/"),
        ("s:1001", "PM", "L", "L1"),
        ("s:1002", "AM", "I", "i"),
    ]
    assert batch.records[1].minutes_late == 12 and batch.records[2].comment == "doctor"
    assert batch.records[0].source_ref == "go4schools:session-mark:2025-09-08:1001:AM"


def test_a_bad_record_among_good_ones_is_named_by_record_and_field() -> None:
    rows = [
        well_formed(1001, "AM", 1),
        well_formed(1002, "AM", 99),  # not in the code table
        well_formed(1003, "AM", 7),  # a code whose text holds a control character
        well_formed(1004, "AM", 1, session_notes="a\x00b"),
        well_formed(1005, "AM", 1, date="2025-09-09T00:00:00"),
    ]
    fast, slow = both(rows)
    assert fast == slow
    batch, _ = SessionMarksStream("s", code_table()).map(rows, DAY)
    assert [m.pupil_id for m in batch.records] == ["s:1001"]
    assert [(q.record_ref, q.field) for q in batch.quarantined] == [
        ("2025-09-08/1002/AM", "session_mark_id"),
        ("2025-09-08/1003/AM", "vendor_code"),
        ("2025-09-08/1004/AM", "comment"),
        ("2025-09-08/1005/AM", "date"),
    ]


def test_repeated_sessions_are_remembered_with_their_raw_records() -> None:
    rows = [
        well_formed(1001, "AM", 1),
        well_formed(1001, "AM", 3),  # the same session again, another code
        well_formed(1001, "AM", "1"),  # and again, through to_schema
    ]
    fast, slow = both(rows)
    assert fast == slow
    batch, _ = SessionMarksStream("s", code_table()).map(rows, DAY)
    assert len(batch.records) == 3 and len(batch.sources) == 3
    assert {batch.ref_of(m) for m in batch.records} == {"2025-09-08/1001/AM"}


def test_one_stream_serves_many_days_with_its_caches() -> None:
    """The adapter keeps one stream per year: what it caches for one day (a code pair that
    passed the checks, a date text) must not leak into the next."""
    stream = SessionMarksStream("s", code_table())
    reference = SessionMarksStream("s", code_table())
    for day, text in ((DAY, "2025-09-08T00:00:00"), (OTHER_DAY, "2025-09-09T00:00:00")):
        rows = [
            well_formed(1001, "AM", 1, date=text),
            well_formed(1002, "AM", 1, date="2025-09-08T00:00:00"),
        ]
        assert outcome(*stream.map(rows, day)) == outcome(*reference.map_each(rows, day))
    # a day outside the plausible window: every mark on it is refused, even with cached codes
    far = date(1985, 1, 7)
    rows = [well_formed(1001, "AM", 1, date="1985-01-07T00:00:00")]
    batch, _ = stream.map(rows, far)
    assert outcome(batch, 0) == outcome(*reference.map_each(rows, far))
    assert [q.field for q in batch.quarantined] == ["date"]


def test_mapping_that_is_not_a_dict_is_mapped_through_to_schema() -> None:
    row: Mapping[str, Any] = MappingProxyType(well_formed(1001, "AM", 1))
    fast, slow = both([row])
    assert fast == slow and len(fast["marks"]) == 1
