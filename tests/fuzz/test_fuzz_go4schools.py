"""GO 4 Schools' mapping under hostile records: every record is mapped, counted as not yet
marked, or quarantined with a named reason, never an exception; no pupil data in quarantine
text."""

from __future__ import annotations

from datetime import date

from fuzz_support import check_batch, deep, fuzz, records, values
from hypothesis import given
from hypothesis import strategies as st

from registerwatch.adapters.base import Batch
from registerwatch.adapters.go4schools.mapping import CodeEntry, CodeTable
from registerwatch.adapters.go4schools.streams import (
    AmendmentsStream,
    CalendarStream,
    CodesStream,
    PupilsStream,
    SessionMarksStream,
)

DAY = date(2025, 9, 8)
KEYS = [
    "id", "student_id", "session", "session_mark_id", "session_alias_id", "session_minutes_late",
    "session_notes", "original", "amended", "amended_at", "amended_by_name", "amended_by_role",
    "reason", "legal_first_name", "legal_last_name", "middle_names", "preferred_first_name",
    "preferred_last_name", "date_of_birth", "sex", "upn", "former_upn", "admission_date",
    "leaving_date", "national_curriculum_year", "registration_group", "fsm", "looked_after",
    "sen_support", "ehcp", "boarder", "has_social_worker", "code", "aliases", "date",
    "day_type_code", "week",
]  # fmt: skip
g4s_record = records(
    KEYS,
    {
        "session": st.one_of(st.sampled_from(["AM", "PM", "am", "X"]), values),
        "original": st.one_of(records(["session_mark_id", "session_alias_id"]), values),
        "amended": st.one_of(records(["session_mark_id", "session_alias_id"]), values),
        "aliases": st.one_of(st.lists(records(["alias_id", "alias_code"]), max_size=2), values),
    },
).map(dict)
hostile_list = st.lists(st.one_of(g4s_record, values), max_size=4)


def _codes() -> CodeTable:
    table = CodeTable()
    for n, code in enumerate(("/", "\\", "N", "L"), start=1):
        table.codes[n] = CodeEntry(id=n, vendor_code=code, national=code)
    return table


@given(students=hostile_list, details=hostile_list)
@fuzz
def test_every_student_maps_or_is_quarantined(students, details):
    batch = PupilsStream("s").map(students, details)
    # A student whose education details are missing is set aside under the details listing
    # (that is where the gap is): it is still that student's one outcome.
    own = [
        q
        for q in batch.quarantined
        if q.resource == "students" or q.reason.startswith("no education details")
    ]
    check_batch(Batch(batch.records, own), students)
    check_batch(Batch([], batch.quarantined), students + details, len(batch.quarantined))


@given(marks=hostile_list)
@fuzz
def test_every_session_mark_maps_is_unmarked_or_is_quarantined(marks):
    batch, unmarked = SessionMarksStream("s", _codes()).map(marks, DAY)
    # A mark's reference names the day synced ("2025-09-08/1001/AM"): that date is the sync's,
    # not a pupil's, even when a generated date of birth happens to equal it.
    check_batch(batch, marks, len(marks) - unmarked, allowed={DAY.isoformat()})


@given(amendments=hostile_list)
@fuzz
def test_every_amendment_maps_or_is_quarantined(amendments):
    check_batch(
        AmendmentsStream("s", _codes()).map(amendments, DAY), amendments, allowed={DAY.isoformat()}
    )


@given(rows=hostile_list)
@fuzz
def test_code_tables_and_calendars_never_raise(rows):
    _table, quarantined = CodesStream().read(rows)
    check_batch(Batch([], quarantined), rows, len(quarantined))
    _calendar, quarantined = CalendarStream("s").read(rows)
    # A calendar row is named by its own date ("calendar 2025-09-08"): that is the school's
    # calendar, not a pupil's, even when a generated pupil field happens to hold the same text.
    own_dates = {str(r.get("date")).strip() for r in rows if isinstance(r, dict)}
    check_batch(Batch([], quarantined), rows, len(quarantined), allowed=own_dates)


@given(which=st.sampled_from(["students", "marks", "amendments", "codes"]))
@fuzz
def test_deeply_nested_records_are_quarantined(which):
    record = {"id": deep(3000), "student_id": deep(3000), "session": "AM", "code": deep(3000)}
    if which == "students":
        batch = PupilsStream("s").map([record], [record])
    elif which == "marks":
        batch = SessionMarksStream("s", _codes()).map([record], DAY)[0]
    elif which == "amendments":
        batch = AmendmentsStream("s", _codes()).map([record], DAY)
    else:
        batch = Batch([], CodesStream().read([record])[1])
    assert not batch.records and batch.quarantined
    assert all(q.reason for q in batch.quarantined)
