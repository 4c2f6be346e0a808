"""Mapping iSAMS records to the common schema: AM/PM from the time and the cut-off, codes,
duplicates, first registration period, and quarantine of records that will not map."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from isams_school import FAST_RETRY
from lxml import etree

from registerwatch.adapters.base import Batch, Quarantined
from registerwatch.adapters.isams import IsamsAdapter, session_of
from registerwatch.adapters.isams.client import BATCH_PATH
from registerwatch.adapters.isams.streams import (
    AmendmentsStream,
    MarksStream,
    PresentCode,
    RestPupilsStream,
)
from registerwatch.calendar import LONDON
from registerwatch.schema import Amendment, AmendmentSource, Mark, Pupil, Session

BASE = "https://oakfield.isams.cloud"
PRESENT = {"1": PresentCode("1", "/", "Present"), "2": PresentCode("2", "L", "Late")}


def _marks_stream(cutoff: time = time(12, 0)) -> MarksStream:
    return MarksStream(school_id="oak", pm_cutoff=cutoff, present_codes=PRESENT)


def _row(
    ident: int,
    when: str,
    *,
    pupil: str | None = "101",
    registered: str = "1",
    code: str | None = None,
    present: str | None = None,
    **extra: str,
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "@Id": str(ident),
        "RegistrationDateTime": when,
        "Registered": registered,
    }
    if pupil is not None:
        row["PupilId"] = pupil
    if code is not None:
        row["Code"] = code
    if present is not None:
        row["PresentCode"] = present
    row.update(extra)
    return row


def _map(rows: list[dict[str, Any]], cutoff: time = time(12, 0)) -> Batch[Mark]:
    stream = _marks_stream(cutoff)
    keep = stream.session_registers(rows)
    return stream.map_records(
        ((f"RegistrationStatus[{i}]", r) for i, r in enumerate(rows, 1)),
        keep=lambda r: keep(r) and MarksStream.is_registered(r),
    )


# -- AM / PM ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("clock", "cutoff", "session"),
    [
        ("08:40:00", time(12, 0), Session.AM),
        ("11:59:00", time(12, 0), Session.AM),
        ("11:59:59", time(12, 0), Session.AM),
        ("12:00:00", time(12, 0), Session.PM),
        ("13:30:00", time(12, 0), Session.PM),
        ("12:30:00", time(13, 0), Session.AM),  # a school whose afternoon starts at 13:00
        ("12:59:00", time(13, 0), Session.AM),
        ("13:00:00", time(13, 0), Session.PM),
        ("11:45:00", time(11, 30), Session.PM),  # an early lunch
        ("11:29:00", time(11, 30), Session.AM),
    ],
)
def test_session_comes_from_the_time_and_the_cutoff(
    clock: str, cutoff: time, session: Session
) -> None:
    when = f"2024-09-10T{clock}"
    assert session_of(datetime.fromisoformat(when), cutoff) is session
    batch = _map([_row(1, when, code="I")], cutoff)
    assert [(m.date, m.session) for m in batch.records] == [(date(2024, 9, 10), session)]


def test_registration_time_is_local_and_recorded_at_keeps_the_offset() -> None:
    (mark,) = _map(
        [_row(1, "2024-09-10T08:40:00", present="1", LastUpdated="2024-09-10T08:47:12")]
    ).records
    assert mark.recorded_at == datetime(2024, 9, 10, 7, 47, 12, tzinfo=UTC)  # BST = UTC+1
    (winter,) = _map(
        [_row(1, "2025-01-13T08:40:00", present="1", LastUpdated="2025-01-13T08:47:12")]
    ).records
    assert winter.recorded_at == datetime(2025, 1, 13, 8, 47, 12, tzinfo=UTC)


def test_adapter_uses_its_configured_cutoff() -> None:
    doc = _document([_row(1, "2024-09-10T12:30:00", present="1")])
    with responses.RequestsMock() as mocked:
        mocked.post(f"{BASE}{BATCH_PATH}", body=doc, content_type="text/xml")
        mocked.post(f"{BASE}{BATCH_PATH}", body=doc, content_type="text/xml")
        midday = _adapter().marks(date(2024, 9, 10), date(2024, 9, 10)).records
        one_pm = _adapter(pm_cutoff=time(13, 0)).marks(date(2024, 9, 10), date(2024, 9, 10)).records
    assert [(m.session, m.code) for m in midday] == [(Session.PM, "\\")]
    assert [(m.session, m.code) for m in one_pm] == [(Session.AM, "/")]


# -- codes ------------------------------------------------------------------------------------


def test_codes_are_normalised_and_the_vendor_code_kept() -> None:
    batch = _map(
        [
            _row(1, "2024-09-10T08:40:00", present="1"),
            _row(2, "2024-09-10T13:15:00", present="1"),
            _row(3, "2024-09-11T08:40:00", present="2", MinutesLate="12", Comment="bus"),
            _row(4, "2024-09-11T13:15:00", code="c1", present="0"),
            _row(5, "2024-09-12T08:40:00", code="I", present="1"),  # Code wins over PresentCode
        ]
    )
    assert batch.quarantined == []
    assert [
        (
            m.date.day,
            m.session.value,
            m.code,
            m.vendor_code,
            m.minutes_late,
            m.comment,
            m.source_ref,
        )
        for m in batch.records
    ] == [
        (10, "AM", "/", "/", None, None, "RegistrationStatus 1"),
        (10, "PM", "\\", "/", None, None, "RegistrationStatus 2"),
        (11, "AM", "L", "L", 12, "bus", "RegistrationStatus 3"),
        (11, "PM", "C1", "c1", None, None, "RegistrationStatus 4"),
        (12, "AM", "I", "I", None, None, "RegistrationStatus 5"),
    ]
    assert all(m.pupil_id == "oak:101" for m in batch.records)


def test_registered_zero_means_no_mark_not_an_absence() -> None:
    batch = _map(
        [
            _row(1, "2024-09-10T08:40:00", registered="0", present="0"),
            _row(2, "2024-09-10T13:15:00", registered="0", code="N"),
        ]
    )
    assert batch.records == [] and batch.quarantined == []


# -- duplicates -------------------------------------------------------------------------------


def test_duplicate_rows_keep_the_latest_recorded_whatever_the_order() -> None:
    rows = [
        _row(2, "2024-09-10T08:40:00", present="1", LastUpdated="2024-09-10T09:30:00"),
        _row(1, "2024-09-10T08:40:00", code="N", LastUpdated="2024-09-10T08:45:00"),
    ]
    for ordered in (rows, rows[::-1]):
        (mark,) = _dedupe(_map(ordered).records)
        assert (mark.code, mark.source_ref) == ("/", "RegistrationStatus 2")


def test_duplicate_rows_without_times_are_left_for_the_duplicate_policy() -> None:
    # Nothing orders them: both versions stay, with their raw rows, for sync to quarantine.
    batch = _map(
        [_row(1, "2024-09-10T08:40:00", code="N"), _row(2, "2024-09-10T08:40:00", code="I")]
    )
    marks = _dedupe(batch.records)
    assert [(m.code, m.source_ref) for m in marks] == [
        ("N", "RegistrationStatus 1"),
        ("I", "RegistrationStatus 2"),
    ]
    assert all('"Code"' in (batch.raw_of(m) or "") for m in marks)


def test_a_row_with_a_time_beats_a_row_without_one() -> None:
    (mark,) = _dedupe(
        _map(
            [
                _row(1, "2024-09-10T08:40:00", code="M", LastUpdated="2024-09-10T08:50:00"),
                _row(2, "2024-09-10T08:40:00", code="N"),
            ]
        ).records
    )
    assert mark.code == "M"


def test_a_registered_row_is_not_undone_by_an_unregistered_duplicate() -> None:
    (mark,) = _dedupe(
        _map(
            [
                _row(1, "2024-09-10T08:40:00", present="1"),
                _row(2, "2024-09-10T08:40:00", registered="0", present="0"),
            ]
        ).records
    )
    assert mark.code == "/"


def test_duplicates_through_the_adapter_leave_one_mark_per_session() -> None:
    doc = _document(
        [
            _row(1, "2024-09-10T08:40:00", code="N", LastUpdated="2024-09-10T08:45:00"),
            _row(2, "2024-09-10T08:40:00", code="I", LastUpdated="2024-09-10T10:05:00"),
            _row(3, "2024-09-10T08:40:00", code="I", LastUpdated="2024-09-10T10:05:00"),
            _row(4, "2024-09-10T13:15:00", present="1"),
            _row(5, "2024-09-10T13:15:00", present="1"),
        ]
    )
    with responses.RequestsMock() as mocked:
        mocked.post(f"{BASE}{BATCH_PATH}", body=doc, content_type="text/xml")
        batch = _adapter().marks(date(2024, 9, 10), date(2024, 9, 10))
    assert [(m.session.value, m.code, m.source_ref) for m in batch.records] == [
        ("AM", "I", "RegistrationStatus 3"),
        ("PM", "\\", "RegistrationStatus 5"),
    ]


def test_only_the_first_registration_period_of_a_session_counts() -> None:
    batch = _map(
        [
            _row(1, "2024-09-10T08:40:00", present="1"),
            _row(2, "2024-09-10T10:15:00", code="M"),  # a lesson register later in the morning
            _row(3, "2024-09-10T13:15:00", code="I"),
            _row(4, "2024-09-10T21:00:00", present="1"),  # an evening boarding roll-call
            _row(5, "2024-09-11T08:40:00", registered="0", present="0"),
            _row(6, "2024-09-11T09:40:00", present="1"),  # the form register was not taken
        ]
    )
    assert [(m.date.day, m.session.value, m.code) for m in batch.records] == [
        (10, "AM", "/"),
        (10, "PM", "I"),
    ]


# -- quarantine -------------------------------------------------------------------------------


def test_records_that_will_not_map_are_quarantined_with_field_and_reason() -> None:
    batch = _map(
        [
            _row(1, "2024-09-10T08:40:00", present="1"),
            _row(2, "2024-02-30T08:40:00", present="1", pupil="102"),
            _row(3, "2024-09-10T08:40:00", code="QQ", pupil="103"),
            _row(4, "2024-09-10T08:40:00", present="1", pupil=None),
            _row(5, "2024-09-10T08:40:00", present="9", pupil="105"),
            _row(6, "2024-09-10T08:40:00", present="0", pupil="106"),
            _row(7, "2024-09-10T08:40:00", present="1", pupil="107", registered="2"),
            _row(8, "2024-09-10T08:40:00", present="2", pupil="108", MinutesLate="ten"),
            _row(9, "2024-09-10T08:40:00", present="2", pupil="109", MinutesLate="-5"),
            _row(10, "2024-09-10T08:40:00", present="1", pupil="110", LastUpdated="yesterday"),
        ]
    )
    assert [m.pupil_id for m in batch.records] == ["oak:101"]
    assert [(q.record_ref, q.field, q.reason) for q in batch.quarantined] == [
        (
            "RegistrationStatus 2",
            "RegistrationDateTime",
            "'2024-02-30T08:40:00' is not a valid date-time",
        ),
        ("RegistrationStatus 3", "Code", "unknown attendance code 'QQ'"),
        ("RegistrationStatus 4", "PupilId", "required field 'PupilId' is missing"),
        (
            "RegistrationStatus 5",
            "PresentCode",
            "PresentCode 9 is not in the school's present-code table",
        ),
        (
            "RegistrationStatus 6",
            "Code",
            "Registered is 1 but the row has neither a Code nor a PresentCode",
        ),
        ("RegistrationStatus 7", "Registered", "'2' is not 0 or 1"),
        ("RegistrationStatus 8", "MinutesLate", "'ten' is not a whole number of minutes"),
        ("RegistrationStatus 9", "MinutesLate", "Input should be greater than or equal to 0"),
        ("RegistrationStatus 10", "LastUpdated", "'yesterday' is not a valid date-time"),
    ]
    assert {q.resource for q in batch.quarantined} == {"RegistrationStatus"}


def test_a_row_without_an_id_is_named_by_its_position() -> None:
    row = _row(1, "2024-09-10T08:40:00", code="QQ")
    del row["@Id"]
    batch = _map([_row(2, "2024-09-11T08:40:00", code="I"), row])
    assert batch.quarantined == [
        Quarantined(
            resource="RegistrationStatus",
            record_ref="RegistrationStatus at RegistrationStatus[2]",
            field="Code",
            reason="unknown attendance code 'QQ'",
        )
    ]


# -- pupils and amendments --------------------------------------------------------------------


def test_rest_students_map_to_pupils_and_bad_ones_are_quarantined() -> None:
    stream = RestPupilsStream(school_id="oak")
    batch = stream.map_records(
        [
            (
                "page 1 item 1",
                {
                    "schoolId": "101",
                    "uniquePupilNumber": "A123",
                    "forename": "Ava",
                    "surname": "Okafor",
                    "preferredName": "Avie",
                    "middlenames": "May",
                    "dob": "2012-03-04T00:00:00",
                    "gender": "F",
                    "yearGroup": 7,
                    "formGroup": "7A",
                    "enrolmentDate": "2024-09-02T00:00:00",
                    "leavingDate": None,
                    "boardingHouse": "School House",
                    "religion": "ignored",
                },
            ),
            ("page 1 item 2", {"schoolId": "102", "gender": "Q"}),
            (
                "page 1 item 3",
                {"schoolId": "103", "enrolmentDate": "2024-09-02", "leavingDate": "2024-01-01"},
            ),
            ("page 1 item 4", {"forename": "No", "surname": "Id"}),
            ("page 1 item 5", {"schoolId": "105", "dob": "31/02/2012"}),
        ]
    )
    assert batch.records == [
        Pupil(
            id="oak:101",
            school_id="oak",
            mis_id="101",
            upn="A123",
            legal_forename="Ava",
            legal_surname="Okafor",
            middle_names="May",
            preferred_forename="Avie",
            dob=date(2012, 3, 4),
            sex="F",
            nc_year="7",
            reg_group="7A",
            starting_day=date(2024, 9, 2),
            boarder=True,
        )
    ]
    assert [(q.record_ref, q.field, q.reason) for q in batch.quarantined] == [
        ("students 102", "gender", "the value is not a recognised gender (M, F or U)"),
        (
            "students 103",
            "leavingDate",
            "Value error, leaving_date 2024-01-01 is before starting_day 2024-09-02",
        ),
        ("students at page 1 item 4", "schoolId", "required field 'schoolId' is missing"),
        ("students 105", "dob", "the value is not a valid date"),
    ]


def test_amendment_records_map_with_missing_fields_left_none() -> None:
    stream = AmendmentsStream(school_id="oak")
    batch = stream.map_records(
        [
            (
                "RegistrationAudit[1]",
                {
                    "@Id": "9",
                    "PupilId": "101",
                    "RegistrationDateTime": "2024-09-10T13:15:00",
                    "OriginalCode": "/",
                    "AmendedCode": "I",
                    "Reason": "Phoned in",
                    "AmendedDateTime": "2024-09-10T16:00:00",
                    "AmendedBy": "J. Smith",
                    "AmendedByPosition": "Office",
                },
            ),
            (
                "RegistrationAudit[2]",
                {
                    "@Id": "10",
                    "PupilId": "102",
                    "RegistrationDateTime": "2024-09-10T08:40:00",
                    "AmendedCode": "N",
                },
            ),
            (
                "RegistrationAudit[3]",
                {
                    "@Id": "11",
                    "PupilId": "103",
                    "RegistrationDateTime": "2024-09-10T08:40:00",
                    "AmendedCode": "QQ",
                },
            ),
        ]
    )
    assert batch.records == [
        Amendment(
            pupil_id="oak:101",
            date=date(2024, 9, 10),
            session=Session.PM,
            original_code="\\",
            amended_code="I",
            reason="Phoned in",
            amended_at=datetime(2024, 9, 10, 16, 0, tzinfo=LONDON),
            amended_by_name="J. Smith",
            amended_by_position="Office",
            source=AmendmentSource.MIS,
            source_ref="RegistrationAudit 9",
        ),
        Amendment(
            pupil_id="oak:102",
            date=date(2024, 9, 10),
            session=Session.AM,
            amended_code="N",
            source_ref="RegistrationAudit 10",
        ),
    ]
    assert [(q.field, q.reason) for q in batch.quarantined] == [
        ("AmendedCode", "unknown attendance code 'QQ'")
    ]


# -- the adapter over hand-built Batch answers ------------------------------------------------


def test_marks_are_asked_for_in_month_windows_with_the_documented_filter() -> None:
    with responses.RequestsMock() as mocked:
        mocked.post(f"{BASE}{BATCH_PATH}", body=_document([]), content_type="text/xml")
        batch = _adapter().marks(date(2024, 9, 1), date(2024, 11, 15))
        # Windows after the first are asked for two at a time: in either order.
        bodies = sorted(
            (etree.fromstring(c.request.body) for c in mocked.calls),
            key=lambda b: b.find("Registration/RegistrationStatus").get("StartDate"),
        )
        keys = [parse_qs(urlsplit(c.request.url).query)["apiKey"] for c in mocked.calls]
    assert batch.records == [] and batch.requests == 3
    assert keys == [["k-1"]] * 3
    assert [[m.text for m in b.iterfind("MethodsToRun/Method")] for b in bodies] == [
        ["Registration_GetPresentCodes", "Registration_GetRegistrationStatus"]
    ] * 3
    assert [dict(b.find("Registration/RegistrationStatus").attrib) for b in bodies] == [
        {"StartDate": "2024-09-01", "EndDate": "2024-10-01"},
        {"StartDate": "2024-10-02", "EndDate": "2024-11-01"},
        {"StartDate": "2024-11-02", "EndDate": "2024-11-15"},
    ]


def test_rows_outside_the_asked_window_are_dropped() -> None:
    doc = _document(
        [_row(1, "2024-09-09T08:40:00", present="1"), _row(2, "2024-09-10T08:40:00", present="1")]
    )
    with responses.RequestsMock() as mocked:
        mocked.post(f"{BASE}{BATCH_PATH}", body=doc, content_type="text/xml")
        batch = _adapter().marks(date(2024, 9, 10), date(2024, 9, 10))
    assert [m.date for m in batch.records] == [date(2024, 9, 10)]


def test_amendments_unavailable_on_the_key_means_none_exposed() -> None:
    refused = _message(
        "MethodsNotAllocatedToKeyException",
        "The following methods specified in the MethodsToRun filter are not "
        "allocated to the requested key: registration_getregistrationaudit",
    )
    with responses.RequestsMock() as mocked:
        mocked.post(f"{BASE}{BATCH_PATH}", body=refused, status=403, content_type="text/xml")
        adapter = _adapter()
        assert adapter.amendments(date(2024, 9, 1), date(2024, 9, 30)).records == []
        assert adapter.exposes_amendments is False
        assert adapter.amendments(date(2024, 9, 1), date(2024, 9, 30)).requests == 0
        assert len(mocked.calls) == 1


def test_other_methods_refused_still_fail_loudly() -> None:
    refused = _message(
        "MethodsNotAllocatedToKeyException",
        "The following methods specified in the MethodsToRun filter are not "
        "allocated to the requested key: registration_getregistrationstatus",
    )
    with responses.RequestsMock() as mocked:
        mocked.post(f"{BASE}{BATCH_PATH}", body=refused, status=403, content_type="text/xml")
        with pytest.raises(Exception, match="registration_getregistrationstatus"):
            _adapter().marks(date(2024, 9, 1), date(2024, 9, 30))


def test_calendar_sets_aside_bad_and_overlapping_terms() -> None:
    terms = [
        ("1", "2024-09-02", "2024-10-25"),
        ("2", "2024-11-04", "2024-12-20"),
        ("3", "2024-12-01", "2025-01-10"),
        ("4", "2025-04-22", "2025-04-01"),
        ("5", "2025-01-06", None),
    ]
    doc = (
        b"<iSAMS><SchoolManager><Terms>"
        + b"".join(
            f'<Term Id="{ident}"><StartDate>{start}T00:00:00</StartDate>'.encode()
            + (f"<FinishDate>{end}T00:00:00</FinishDate>".encode() if end else b"")
            + b"</Term>"
            for ident, start, end in terms
        )
        + b"</Terms></SchoolManager></iSAMS>"
    )
    with responses.RequestsMock() as mocked:
        mocked.post(f"{BASE}{BATCH_PATH}", body=doc, content_type="text/xml")
        adapter = _adapter()
        calendar = adapter.calendar()
    assert calendar is not None
    assert [(t.start.isoformat(), t.end.isoformat()) for t in calendar.terms] == [
        ("2024-09-02", "2024-10-25"),
        ("2024-11-04", "2024-12-20"),
    ]
    assert [(q.record_ref, q.field) for q in adapter.calendar_quarantined] == [
        ("Term 4", "FinishDate"),
        ("Term 5", "FinishDate"),
        ("Term 2024-12-01..2025-01-10", "StartDate"),
    ]


def test_a_school_with_no_terms_has_no_calendar() -> None:
    with responses.RequestsMock() as mocked:
        mocked.post(
            f"{BASE}{BATCH_PATH}",
            body=b"<iSAMS><SchoolManager><Terms/></SchoolManager></iSAMS>",
            content_type="text/xml",
        )
        assert _adapter().calendar() is None


def test_registers_are_never_served() -> None:
    adapter = _adapter()
    assert adapter.exposes_registers is False
    assert adapter.registers(date(2024, 9, 1), date(2024, 9, 30)).records == []


# -- helpers ----------------------------------------------------------------------------------


def _dedupe(marks: list[Mark]) -> list[Mark]:
    from registerwatch.adapters.base import dedupe_marks

    return dedupe_marks(marks)


def _adapter(**options: Any) -> IsamsAdapter:
    return IsamsAdapter(
        school_id="oak",
        base_url=BASE,
        credentials={"api_key": "k-1"},
        retry=FAST_RETRY,
        sleep=lambda _s: None,
        **options,
    )


def _document(rows: list[dict[str, Any]]) -> bytes:
    root = etree.Element("iSAMS")
    manager = etree.SubElement(root, "RegistrationManager")
    codes = etree.SubElement(manager, "PresentCodes")
    for ident, code in (("1", "/"), ("2", "L")):
        element = etree.SubElement(codes, "PresentCode", Id=ident)
        etree.SubElement(element, "Code").text = code
    statuses = etree.SubElement(manager, "RegistrationStatuses")
    for row in rows:
        element = etree.SubElement(statuses, "RegistrationStatus", Id=row["@Id"])
        for key, value in row.items():
            if not key.startswith("@"):
                etree.SubElement(element, key).text = value
    return etree.tostring(root)


def _message(message_id: str, description: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="utf-16"?>\n<Message>\n  <MessageId>{message_id}'
        f"</MessageId>\n  <Title>t</Title>\n  <Description>{description}</Description>\n"
        "</Message>"
    ).encode("ascii")
