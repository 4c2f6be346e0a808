"""iSAMS' mapping (REST and Batch) under hostile records: mapped or quarantined with a named
reason, never an exception; no pupil data in quarantine text."""

from __future__ import annotations

from fuzz_support import check_batch, deep, fuzz, records, values
from hypothesis import given
from hypothesis import strategies as st

from registerwatch.adapters.isams.streams import (
    AmendmentsStream,
    BatchPupilsStream,
    MarksStream,
    PresentCode,
    PresentCodesStream,
    RestPupilsStream,
    TermsStream,
)

KEYS = [
    "schoolId", "uniquePupilNumber", "forename", "surname", "dob", "yearGroup", "formGroup",
    "enrolmentDate", "leavingDate", "gender", "SchoolId", "UPN", "Forename", "Surname", "DOB",
    "NCYear", "Form", "EnrolmentDate", "Gender", "Middlename", "Preferredname", "PupilType",
    "@Id", "PupilId", "RegistrationDateTime", "Registered", "Code", "PresentCode", "MinutesLate",
    "Comment", "LastUpdated", "OriginalCode", "AmendedCode", "Reason", "AmendedDateTime",
    "AmendedBy", "AmendedByPosition", "Name", "StartDate", "FinishDate",
]  # fmt: skip
isams_record = records(KEYS).map(dict)

STREAMS = {
    "rest-pupils": lambda: RestPupilsStream(school_id="s"),
    "batch-pupils": lambda: BatchPupilsStream(school_id="s"),
    "marks": lambda: MarksStream(school_id="s", present_codes={"1": PresentCode("1", "/")}),
    "present-codes": lambda: PresentCodesStream(),
    "amendments": lambda: AmendmentsStream(school_id="s"),
    "terms": lambda: TermsStream(),
}


@given(
    stream=st.sampled_from(sorted(STREAMS)),
    batch=st.lists(st.one_of(isams_record, values), max_size=4),
)
@fuzz
def test_every_isams_record_maps_or_is_quarantined(stream, batch):
    pairs = [(f"item {n}", record) for n, record in enumerate(batch, start=1)]
    check_batch(STREAMS[stream]().map_records(pairs), batch)


@given(stream=st.sampled_from(sorted(STREAMS)))
@fuzz
def test_deeply_nested_isams_records_are_quarantined(stream):
    batch = [{"SchoolId": deep(3000), "schoolId": deep(3000), "PupilId": deep(3000)}]
    check_batch(STREAMS[stream]().map_records([("item 1", batch[0])]), batch)
