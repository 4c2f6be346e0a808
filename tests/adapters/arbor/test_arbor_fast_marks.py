"""The fast path of ``MarksStream.map_records`` gives exactly what mapping each record through
``to_schema`` gives (``map_each``): the same marks (values, fields set, order), the same
quarantine entries (reference, field, reason, raw record) and the same remembered repeats, for
well-formed and hostile records alike."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registerwatch.adapters.arbor import ArborAdapter
from registerwatch.adapters.arbor.client import ArborNotFoundError, resource_path
from registerwatch.adapters.arbor.streams import MarksStream
from registerwatch.adapters.base import Batch, drop_repeats
from registerwatch.schema import Mark

OBJECTS: dict[str, dict[str, Any]] = {
    "attendance-marks/PRESENT": {"code": "/"},
    "attendance-marks/LATE": {"code": "L"},
    "attendance-marks/LEAVE": {"code": "1"},  # an alias: C1
    "attendance-marks/LOWER": {"code": "c2"},  # read in any case: C2
    "attendance-marks/PADDED": {"code": " N "},
    "attendance-marks/SCHOOL_DEFINED": {"code": "9"},
    "attendance-marks/BLANK": {"code": ""},
    "attendance-marks/CONTROL": {"code": "L\x01"},
    "attendance-register-types/1": {"isMorning": True, "isAfternoon": False},
    "attendance-register-types/2": {"isMorning": False, "isAfternoon": True},
    "attendance-register-types/3": {"isMorning": False, "isAfternoon": False},
    "attendance-registers/77": {"attendanceRegisterType": {"href": "/attendance-register-types/1"}},
    "attendance-registers/78": {"attendanceRegisterType": {"href": "/attendance-register-types/2"}},
    "attendance-registers/79": {"attendanceRegisterType": {"href": "/attendance-register-types/3"}},
    "attendance-registers/80": {},  # no permission: Arbor's silent empty object
}


def resolve(stub: Mapping[str, Any]) -> dict[str, Any]:
    key = resource_path(stub["href"])
    if key not in OBJECTS:
        raise ArborNotFoundError(f"{key} not found")
    return OBJECTS[key]


def stub(resource: str, ident: object) -> dict[str, str]:
    return {"entityType": "X", "href": f"/rest-v2/{resource}/{ident}"}


def well_formed(number: int, **overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "entityType": "AttendanceRecord",
        "href": f"/rest-v2/attendance-records/{number}",
        "student": stub("students", 1001),
        "attendanceMark": stub("attendance-marks", "PRESENT"),
        "attendanceRegister": stub("attendance-registers", 77),
        "startDatetime": "2025-09-08 08:45:00",
        "minutesLate": None,
        "recordNote": None,
        "modifiedDatetime": "2025-09-08 08:52:13",
        "revisionId": 1,
    }
    record.update(overrides)
    return record


MISSING = object()
VALUES: dict[str, Any] = {
    "href": st.one_of(
        st.integers(min_value=1, max_value=6).map(lambda n: f"/rest-v2/attendance-records/{n}"),
        st.sampled_from([" /rest-v2/attendance-records/7", "/rest-v2/a\x00", "", None, 7, ["x"]]),
    ),
    "student": st.one_of(
        st.integers(min_value=1001, max_value=1003).map(lambda n: stub("students", n)),
        st.sampled_from(
            [
                stub("students", " 1004"),
                stub("students", "10\x0005"),
                {"href": 1006},
                "1001",
                None,
                {"href": "/rest-v2/students/" + "9" * 2100},
            ]
        ),
    ),
    "attendanceMark": st.one_of(
        st.sampled_from(["PRESENT", "LATE", "LEAVE"]).map(lambda c: stub("attendance-marks", c)),
        st.sampled_from(["LOWER", "PADDED", "SCHOOL_DEFINED", "BLANK", "CONTROL", "GONE"]).map(
            lambda c: stub("attendance-marks", c)
        ),
        st.sampled_from([None, "LATE", {"href": None}]),
    ),
    "attendanceRegister": st.one_of(
        st.sampled_from([77, 78]).map(lambda n: stub("attendance-registers", n)),
        st.sampled_from([79, 80, 81]).map(lambda n: stub("attendance-registers", n)),
        st.sampled_from([None, "77", {"href": 77}]),
    ),
    "startDatetime": st.one_of(
        st.sampled_from(["2025-09-08 08:45:00", "2025-09-08 13:30:00", "2025-09-09 08:45:00"]),
        st.sampled_from(
            [
                "2025-02-30 08:45:00",
                "1980-01-01 08:45:00",
                "2099-01-01 08:45:00",
                "2025-09-08T08:45:00Z",
                {"entityType": "date", "date": "2025-09-08 08:45:00"},
                "",
                None,
                5,
            ]
        ),
    ),
    "modifiedDatetime": st.one_of(
        st.sampled_from([None, "2025-09-08 08:52:13", "2025-09-08 08:45:00"]),
        st.sampled_from(["", "x", "1980-01-01 08:45:00", "2099-01-01 08:45:00", 7, {"date": "x"}]),
    ),
    "minutesLate": st.sampled_from([None, 0, 12, -1, "5", 5.0, True, "", " 5", 10**30]),
    "recordNote": st.sampled_from(
        [None, "", "  ", " bus ", "bus", "a\x00b", "line\nbreak", "\u202e", "x" * 2100, 5, ["n"]]
    ),
    "isRedundant": st.sampled_from([False, None]),
}


@st.composite
def records(draw: st.DrawFn) -> Any:
    kind = draw(st.integers(min_value=0, max_value=19))
    if kind == 0:
        return draw(st.sampled_from([None, "record", 5, ["a"], []]))
    record: dict[str, Any] = {}
    for key, values in VALUES.items():
        value = draw(st.one_of(values, st.just(MISSING)) if kind == 1 else values)
        if value is not MISSING:
            record[key] = value
    if kind == 2:
        return MappingProxyType(record)  # a Mapping that is not a dict
    return record


def outcome(batch: Batch[Mark]) -> dict[str, Any]:
    position = {id(mark): n for n, mark in enumerate(batch.records)}
    return {
        "marks": [
            (type(m), list(m.__dict__.items()), m.model_fields_set, m.__pydantic_extra__)
            for m in batch.records
        ],
        "quarantined": [
            (q.resource, q.record_ref, q.field, q.reason, q.raw, q.school)
            for q in batch.quarantined
        ],
        "remembered": sorted(
            (position.get(id(mark), -1), raw, ref) for mark, raw, ref in batch.sources.values()
        ),
        "exact_duplicates": batch.exact_duplicates,
        "sources": len(batch.sources),
    }


def both(rows: list[Any], school: str = "oakfield") -> tuple[Any, Any]:
    fast = MarksStream(resolve, school_id=school).map_records(rows)
    slow = MarksStream(resolve, school_id=school).map_each(rows)
    return outcome(fast), outcome(slow)


@given(rows=st.lists(records(), max_size=14))
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_hostile_records_map_as_to_schema_maps_them(rows: list[Any]) -> None:
    fast, slow = both(rows)
    assert fast == slow


@given(
    rows=st.lists(records(), max_size=8),
    school=st.sampled_from([" s", "s ", "s\x00", "x" * 1995, "y" * 500]),
)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_odd_school_ids_map_as_to_schema_maps_them(rows: list[Any], school: str) -> None:
    fast, slow = both(rows, school)
    assert fast == slow


def test_well_formed_records_take_the_fast_path_and_keep_their_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = [
        well_formed(1),
        well_formed(2, student=stub("students", 1002), minutesLate=7, recordNote=" bus "),
        well_formed(
            3, student=stub("students", 1002), attendanceMark=stub("attendance-marks", "LATE")
        ),
        *(
            well_formed(
                10 + n,
                student=stub("students", 1001 + n % 2),
                attendanceMark=stub("attendance-marks", ("PRESENT", "LATE")[n % 2]),
                minutesLate=n,
                recordNote=None if n % 3 else f" note {n} ",
            )
            for n in range(20)
        ),
    ]
    mapped_alone: list[Any] = []
    to_schema = MarksStream.to_schema

    def counted(stream: MarksStream, record: Mapping[str, Any], ref: str) -> Mark:
        mapped_alone.append(ref)
        return to_schema(stream, record, ref)

    monkeypatch.setattr(MarksStream, "to_schema", counted)
    batch = MarksStream(resolve, school_id="oakfield").map_records(rows)
    # Only the records naming a register or a mark not resolved before take to_schema (which
    # resolves them); a new student or date-time text is read on the fast path.
    assert mapped_alone == ["/rest-v2/attendance-records/1", "/rest-v2/attendance-records/3"]
    monkeypatch.setattr(MarksStream, "to_schema", to_schema)
    fast, slow = both(rows)
    assert fast == slow
    assert not batch.quarantined and len(batch.records) == len(rows)
    second = batch.records[1]
    assert (second.pupil_id, second.date, second.session.value, second.code) == (
        "oakfield:1002",
        date(2025, 9, 8),
        "AM",
        "/",
    )
    assert (second.minutes_late, second.comment) == (7, "bus")
    assert batch.records[6].comment == "note 3" and batch.records[6].code == "L"


def test_a_record_repeating_a_session_is_remembered_with_its_raw_record() -> None:
    rows = [
        well_formed(1),
        well_formed(2, attendanceMark=stub("attendance-marks", "LATE")),  # the same session
        well_formed(3, minutesLate="4"),  # and again, through to_schema (a text)
    ]
    fast, slow = both(rows)
    assert fast == slow
    batch = MarksStream(resolve, school_id="oakfield").map_records(rows)
    assert len(batch.records) == 3 and len(batch.sources) == 3
    assert [batch.ref_of(m) for m in batch.records] == [
        "/rest-v2/attendance-records/1",
        "/rest-v2/attendance-records/2",
        "/rest-v2/attendance-records/3",
    ]


def test_a_bad_value_after_good_ones_is_quarantined_as_before() -> None:
    rows = [
        well_formed(1),
        well_formed(2, recordNote="a\x00b"),
        well_formed(3, modifiedDatetime="2099-01-01 08:45:00"),
        well_formed(4, href=" /rest-v2/attendance-records/4"),
        well_formed(5, attendanceMark=stub("attendance-marks", "SCHOOL_DEFINED")),
        well_formed(6),
    ]
    fast, slow = both(rows)
    assert fast == slow
    batch = MarksStream(resolve, school_id="oakfield").map_records(rows)
    assert [(q.record_ref, q.field) for q in batch.quarantined] == [
        ("/rest-v2/attendance-records/2", "comment"),
        ("/rest-v2/attendance-records/3", "recorded_at"),
        ("/rest-v2/attendance-records/5", "attendanceMark"),
    ]
    # A padded href is stripped by the schema, as it always was.
    assert [m.source_ref for m in batch.records] == [
        "/rest-v2/attendance-records/1",
        "/rest-v2/attendance-records/4",
        "/rest-v2/attendance-records/6",
    ]


HOSTILE_REPEATS: dict[str, dict[str, Any]] = {
    "a pupil id with a control character": {"student": stub("students", "10\x0005")},
    "a pupil id too long": {"student": stub("students", "9" * 2100)},
    "a padded pupil id": {"student": stub("students", "1001 ")},
    "a start long ago": {"startDatetime": "1980-01-01 08:45:00"},
    "a start far ahead": {"startDatetime": "2099-01-01 08:45:00"},
    "a save long ago": {"modifiedDatetime": "1980-01-01 08:45:00"},
    "a save not a date-time": {"modifiedDatetime": "x"},
    "a blank save": {"modifiedDatetime": ""},
    "negative minutes": {"minutesLate": -1},
    "minutes as text": {"minutesLate": "5"},
    "minutes as a flag": {"minutesLate": True},
    "a note with a control character": {"recordNote": "a\x00b"},
    "a note too long": {"recordNote": "x" * 2100},
    "a note not text": {"recordNote": 5},
    "a padded href": {"href": " /rest-v2/attendance-records/9"},
    "an href with a control character": {"href": "/rest-v2/attendance-records/\x009"},
    "an unknown code": {"attendanceMark": stub("attendance-marks", "SCHOOL_DEFINED")},
    "a register of neither session": {"attendanceRegister": stub("attendance-registers", 79)},
    "no register": {"attendanceRegister": None, "startDatetime": "2025-09-08 13:30:00"},
}


@pytest.mark.parametrize("case", HOSTILE_REPEATS)
def test_a_value_refused_once_is_refused_on_every_record_carrying_it(case: str) -> None:
    """What to_schema caches for one record (a stub's answer, a parsed text) is an answer, not a
    verdict: a later record carrying the same value takes the same checks."""
    overrides = HOSTILE_REPEATS[case]
    rows = [well_formed(1), well_formed(2, **overrides), well_formed(3, **overrides)]
    rows[2]["href"] = rows[1]["href"] + "0" if isinstance(rows[1]["href"], str) else rows[2]["href"]
    fast, slow = both(rows)
    assert fast == slow


def test_a_vendor_code_refused_as_text_is_refused_on_every_record(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Arbor's aliases could one day map a code whose own text the checks refuse."""
    monkeypatch.setattr("registerwatch.adapters.arbor.streams.CODE_ALIASES", {"L\x01": "L"})
    rows = [well_formed(n, attendanceMark=stub("attendance-marks", "CONTROL")) for n in (1, 2, 3)]
    fast, slow = both(rows)
    assert fast == slow
    assert [field for _, _, field, *_ in slow["quarantined"]] == ["vendor_code"] * 3


def test_a_naive_save_time_is_refused_on_every_record(monkeypatch: pytest.MonkeyPatch) -> None:
    """Were Arbor's times ever read without their zone, the schema refuses each such mark."""
    from registerwatch.adapters.arbor import mapping, streams

    aware = mapping.local_instant

    def naive(record: Mapping[str, Any], key: str, **where: Any) -> Any:
        parsed = aware(record, key, **where)
        return parsed.replace(tzinfo=None) if parsed and key == "modifiedDatetime" else parsed

    monkeypatch.setattr(streams, "local_instant", naive)
    rows = [well_formed(1), well_formed(2), well_formed(3)]
    fast, slow = both(rows)
    assert fast == slow
    assert [field for _, _, field, *_ in slow["quarantined"]] == ["modifiedDatetime"] * 3


def adapter_over(records: list[Any]) -> ArborAdapter:
    """An adapter whose listings are ``records`` (and one register), resolving from OBJECTS."""
    adapter = ArborAdapter(
        school_id="oakfield",
        base_url="http://arbor.invalid/rest-v2",
        credentials={"username": "u", "password": "p"},
    )
    listed: dict[str, Any] = {
        "_registers_in": lambda start, end: [stub("attendance-registers", 77)],
        "_records_in": lambda start, end: records,
        "_load_mark_table": lambda: None,
    }
    for name, method in listed.items():
        setattr(adapter, name, method)
    adapter.client.resolve = resolve  # type: ignore[method-assign]
    return adapter


@pytest.mark.parametrize(
    "rows",
    [
        [well_formed(1), well_formed(2, student=stub("students", 1002))],
        [
            well_formed(1),
            well_formed(2),  # an exact copy: dropped and counted
            well_formed(3, modifiedDatetime="2025-09-08 08:40:00"),  # superseded: dropped
            well_formed(4, student=stub("students", 1002)),
        ],
    ],
    ids=["no repeats", "a copy and a superseded version"],
)
def test_the_adapter_drops_repeats_as_drop_repeats_does(rows: list[Any]) -> None:
    batch = adapter_over(rows).marks(date(2025, 9, 1), date(2025, 9, 30))
    expected = MarksStream(resolve, school_id="oakfield").map_each(rows)
    drop_repeats(expected)
    assert outcome(batch) == outcome(expected)
    assert batch.exact_duplicates == expected.exact_duplicates == (len(rows) - 2) // 2
    assert len(batch.records) == 2
