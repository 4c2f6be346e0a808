"""Arbor's mapping under hostile records: every record is mapped to the common schema or
quarantined with a named reason, never an exception; no pupil data in quarantine text."""

from __future__ import annotations

from typing import Any

from fuzz_support import check_batch, deep, fuzz, records, values
from hypothesis import given
from hypothesis import strategies as st

from registerwatch.adapters.arbor.client import ArborNotFoundError
from registerwatch.adapters.arbor.streams import (
    AmendmentsStream,
    MarksStream,
    PupilsStream,
    RegistersStream,
    StudentRelations,
    TermsStream,
)

KEYS = [
    "href", "student", "person", "startDatetime", "attendanceMark", "attendanceRegister",
    "attendanceRegisterType", "minutesLate", "recordNote", "modifiedDatetime", "openedDatetime",
    "completedDatetime", "registrationForm", "originalAttendanceMark", "amendedAttendanceMark",
    "reason", "amendedDatetime", "amendedByName", "amendedByPosition", "startDate", "endDate",
    "legalFirstName", "legalLastName", "legalMiddleNames", "preferredFirstName",
    "preferredLastName", "dateOfBirth", "gender", "mostRecentEntryDate", "leavingDate", "upn",
    "academicLevel", "senStatus", "code", "isMorning", "isAfternoon",
]  # fmt: skip
stub = st.fixed_dictionaries(
    {"href": st.one_of(st.sampled_from(["students/1", "persons/2", "x"]), st.text(max_size=12))},
    optional={"entityType": st.text(max_size=8)},
)
arbor_record = records(KEYS, {k: st.one_of(stub, values) for k in ("student", "person")}).map(dict)
target = st.one_of(
    records(KEYS, {"isMorning": st.booleans(), "isAfternoon": st.booleans()}), st.just({})
)


def resolver(data: st.DataObject) -> Any:
    def resolve(link: Any) -> dict[str, Any]:
        if data.draw(st.integers(0, 9), label="missing") == 0:
            raise ArborNotFoundError("not found")
        return dict(data.draw(target, label=f"resolved {link!r}"[:40]))

    return resolve


STREAMS = {
    "pupils": lambda r: PupilsStream(r, school_id="s", relations=StudentRelations()),
    "marks": lambda r: MarksStream(r, school_id="s"),
    "registers": lambda r: RegistersStream(r, school_id="s"),
    "amendments": lambda r: AmendmentsStream(r, school_id="s"),
    "terms": lambda r: TermsStream(r, school_id="s"),
}


@given(
    stream=st.sampled_from(sorted(STREAMS)),
    batch=st.lists(st.one_of(arbor_record, values), max_size=4),
    data=st.data(),
)
@fuzz
def test_every_arbor_record_maps_or_is_quarantined(stream, batch, data):
    mapper = STREAMS[stream](resolver(data))
    check_batch(mapper.map_records(batch), batch)


@given(stream=st.sampled_from(sorted(STREAMS)), depth=st.sampled_from([50, 3000]), data=st.data())
@fuzz
def test_deeply_nested_arbor_records_are_quarantined(stream, depth, data):
    batch = [{"href": "students/1", "student": deep(depth), "person": deep(depth)}]
    mapper = STREAMS[stream](resolver(data))
    result = mapper.map_records(batch)
    check_batch(result, batch)
