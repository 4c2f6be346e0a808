"""The recorded iSAMS Batch API responses (../shared/data/isams-batch-api-examples) parse, and
each error body is classified the way the adapter must act on it.

The error files declare ``encoding="utf-16"`` but are ASCII bytes: they are served here byte for
byte, so the parser's sniffing is what is tested.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import responses
from isams_school import FAST_RETRY

from registerwatch.adapters.isams import (
    IsamsClient,
    MethodsNotAllocatedError,
    parse_message,
    parse_xml,
)
from registerwatch.adapters.isams.client import BATCH_PATH
from registerwatch.adapters.isams.mapping import element_record
from registerwatch.adapters.isams.streams import BatchPupilsStream, TermsStream
from registerwatch.errors import FatalApiError, RetriableApiError
from registerwatch.schema import Pupil, Term

BASE = "https://oakfield.isams.cloud"
HINT = "OAKFIELD_ISAMS_API_KEY"


def _client() -> IsamsClient:
    return IsamsClient(
        BASE,
        school_id="oakfield",
        credentials={"api_key": "k-123"},
        credential_hint=HINT,
        retry=FAST_RETRY,
        sleep=lambda _s: None,
    )


def test_error_bodies_declare_utf16_but_are_ascii(examples: Path) -> None:
    data = (examples / "Errors_Deadlock.xml").read_bytes()
    assert data.startswith(b'<?xml version="1.0" encoding="utf-16"?>')
    assert data.isascii()
    message = parse_message(data)
    assert message is not None
    assert message.message_id == "UnhandledException"
    assert message.title == "Unknown Error"
    assert message.description.endswith("Rerun the transaction.")


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("Errors_Deadlock.xml", 500),
        ("Errors_LockRequestTimeOut.xml", 500),
    ],
)
@responses.activate
def test_deadlock_and_lock_timeout_are_retried_then_succeed(
    examples: Path, name: str, status: int
) -> None:
    url = f"{BASE}{BATCH_PATH}"
    responses.post(url, body=(examples / name).read_bytes(), status=status, content_type="text/xml")
    responses.post(
        url,
        body=(examples / "School_GetSchoolTerms.xml").read_bytes(),
        status=200,
        content_type="text/xml",
    )
    client = _client()
    root = client.batch(["School_GetSchoolTerms"])
    assert root.find("SchoolManager/Terms/Term/Name").text == "Autumn"
    assert len(responses.calls) == 2


@pytest.mark.parametrize("name", ["Errors_Deadlock.xml", "Errors_LockRequestTimeOut.xml"])
@responses.activate
def test_deadlock_is_retriable_even_when_served_with_200(examples: Path, name: str) -> None:
    responses.post(
        f"{BASE}{BATCH_PATH}",
        body=(examples / name).read_bytes(),
        status=200,
        content_type="text/xml",
    )
    with pytest.raises(RetriableApiError, match="database lock") as caught:
        _client().batch(["School_GetSchoolTerms"])
    assert "gave up after 4 attempts" in str(caught.value)
    assert len(responses.calls) == FAST_RETRY.max_attempts


@pytest.mark.parametrize(
    ("name", "status", "needle"),
    [
        ("Errors_InvalidApiKey.xml", 401, "rejected the API key"),
        ("Errors_MethodsNotAllocatedToKey.xml", 403, "not allowed to run schoolreports_getrecords"),
    ],
)
@responses.activate
def test_key_errors_are_fatal_and_name_the_credential(
    examples: Path, name: str, status: int, needle: str
) -> None:
    responses.post(
        f"{BASE}{BATCH_PATH}",
        body=(examples / name).read_bytes(),
        status=status,
        content_type="text/xml",
    )
    with pytest.raises(FatalApiError) as caught:
        _client().batch(["School_GetSchoolTerms"])
    assert needle in str(caught.value)
    assert HINT in str(caught.value)
    assert len(responses.calls) == 1  # never retried


@responses.activate
def test_methods_not_allocated_lists_the_methods(examples: Path) -> None:
    responses.post(
        f"{BASE}{BATCH_PATH}",
        body=(examples / "Errors_MethodsNotAllocatedToKey.xml").read_bytes(),
        status=403,
        content_type="text/xml",
    )
    with pytest.raises(MethodsNotAllocatedError) as caught:
        _client().batch(["SchoolReports_GetRecords"])
    assert caught.value.methods == ["schoolreports_getrecords"]


@pytest.mark.parametrize(
    ("name", "status", "needle"),
    [
        ("Errors_FiltersRequiredException.xml", 400, "missing its filters"),
        ("Errors_MissingParameter.xml", 400, 'required field "apiKey" was not supplied'),
        ("Errors_InvalidRoot.xml", 500, "could not parse the request's XML <Filters>"),
    ],
)
@responses.activate
def test_request_errors_are_fatal_and_say_what_is_wrong(
    examples: Path, name: str, status: int, needle: str
) -> None:
    responses.post(
        f"{BASE}{BATCH_PATH}",
        body=(examples / name).read_bytes(),
        status=status,
        content_type="text/xml",
    )
    with pytest.raises(FatalApiError) as caught:
        _client().batch(["School_GetSchoolTerms"])
    assert not isinstance(caught.value, RetriableApiError)
    assert needle in str(caught.value)
    assert len(responses.calls) == 1  # InvalidRoot is a 500 but retrying cannot fix it


@pytest.mark.parametrize(
    "name", ["Pupil_GetCurrentPupils.xml", "Pupil_GetCurrentPupilsExtraNode.xml"]
)
def test_current_pupils_parse_to_pupils(examples: Path, name: str) -> None:
    root = parse_xml((examples / name).read_bytes())
    assert parse_message((examples / name).read_bytes()) is None
    section = root.find(BatchPupilsStream.section)
    records = [(f"Pupil[{i}]", element_record(e)) for i, e in enumerate(section, 1)]
    batch = BatchPupilsStream(school_id="oakfield").map_records(records)
    assert batch.quarantined == []
    assert batch.records == [
        Pupil(
            id="oakfield:4733683260",
            school_id="oakfield",
            mis_id="4733683260",
            upn="P473368326012",
            legal_forename="George",
            legal_surname="Benson",
            middle_names="Peter James",
            preferred_forename="George",
            dob=date(2000, 11, 2),
            sex="M",
            nc_year="10",
            reg_group="12/BBN",
            starting_day=date(2015, 11, 2),
            boarder=True,
        )
    ]


def test_school_terms_parse(examples: Path) -> None:
    root = parse_xml((examples / "School_GetSchoolTerms.xml").read_bytes())
    records = [
        (f"Term[{i}]", element_record(e)) for i, e in enumerate(root.find(TermsStream.section), 1)
    ]
    batch = TermsStream().map_records(records)
    assert batch.records == [Term(start=date(2008, 9, 1), end=date(2008, 12, 19))]
    assert batch.quarantined == []


def test_every_recorded_example_is_understood(examples: Path) -> None:
    """No recorded file is left unclassified: errors are <Message>s, the rest <iSAMS>."""
    for path in sorted(examples.glob("*.xml")):
        data = path.read_bytes()
        if path.name.startswith("Errors_"):
            assert parse_message(data) is not None, path.name
        else:
            assert parse_xml(data).tag == "iSAMS", path.name
