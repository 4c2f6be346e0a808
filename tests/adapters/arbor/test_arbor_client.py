"""ArborClient on hand-built responses: failure classification, paging edge cases, stubs."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest
import requests
import responses
from responses import matchers

from registerwatch.adapters.arbor.client import (
    MAX_PAGE_SIZE,
    ArborClient,
    ArborNotFoundError,
    ArborPaginator,
    href_id,
    list_key,
    resource_path,
)
from registerwatch.adapters.base import ListingChangedError, RetryPolicy
from registerwatch.errors import FatalApiError, PagingError, RetriableApiError

BASE = "https://oakfield.uk.arbor.sc/rest-v2"
STUDENTS = f"{BASE}/students"
HINT = "OAKFIELD_ARBOR_USERNAME / OAKFIELD_ARBOR_PASSWORD"
OK_BODY = {"students": [{"entityType": "Student", "href": "/rest-v2/students/1"}]}


def envelope(
    code: int, reason: str, exception: str = "SomeException", message: str = "detail"
) -> dict[str, Any]:
    return {
        "response": {
            "code": code,
            "reason": reason,
            "errors": [{"exception": exception, "message": message, "trace": ""}],
        }
    }


def student(n: int) -> dict[str, str]:
    return {"entityType": "Student", "href": f"/rest-v2/students/{n}"}


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client(sleeps: list[float]) -> Callable[..., ArborClient]:
    def _make(**overrides: Any) -> ArborClient:
        options: dict[str, Any] = {
            "school_id": "oakfield",
            "username": "app-user",
            "password": "s3cret",
            "credential_hint": HINT,
            "retry": RetryPolicy(max_attempts=3, base_delay=0.001, max_delay=0.002),
            "sleep": sleeps.append,
            "page_size": 2,
        }
        options.update(overrides)
        return ArborClient(BASE, **options)

    return _make


# -- status -> exception ------------------------------------------------------------------------


@responses.activate
def test_200_returns_the_list_and_sends_basic_auth(
    client: Callable[..., ArborClient], sleeps: list[float]
) -> None:
    responses.get(STUDENTS, json=OK_BODY)
    assert client().list_page("students") == OK_BODY["students"]
    sent = responses.calls[0].request
    assert sent.headers["Authorization"] == "Basic " + base64.b64encode(b"app-user:s3cret").decode()
    assert sent.headers["Accept"] == "application/json"
    assert sleeps == []


@pytest.mark.parametrize(
    ("status", "body", "error", "words"),
    [
        (
            401,
            envelope(401, "Unauthorized", "AuthenticationException"),
            FatalApiError,
            ["401", HINT, "AuthenticationException"],
        ),
        (403, envelope(403, "Forbidden", "PermissionException"), FatalApiError, ["403", HINT]),
        (
            404,
            envelope(404, "Not Found", "ResourceNotFoundException"),
            ArborNotFoundError,
            ["404", "ResourceNotFoundException", "base_url"],
        ),
        (
            400,
            envelope(400, "Bad Request", "InvalidQueryException"),
            FatalApiError,
            ["400", "will not succeed on retry"],
        ),
        (422, envelope(422, "Unprocessable"), FatalApiError, ["422"]),
    ],
)
@responses.activate
def test_client_errors_are_fatal_at_once(
    client: Callable[..., ArborClient],
    sleeps: list[float],
    status: int,
    body: dict[str, Any],
    error: type[Exception],
    words: list[str],
) -> None:
    responses.get(STUDENTS, json=body, status=status)
    with pytest.raises(error) as raised:
        client().list_page("students")
    assert not isinstance(raised.value, RetriableApiError)
    for word in words:
        assert word in str(raised.value)
    assert "s3cret" not in str(raised.value)
    assert len(responses.calls) == 1  # never retried
    assert sleeps == []


@responses.activate
def test_error_code_in_a_200_body_wins_as_in_the_sdk(client: Callable[..., ArborClient]) -> None:
    responses.get(
        STUDENTS, json=envelope(404, "Not Found", "ResourceNotFoundException"), status=200
    )
    with pytest.raises(ArborNotFoundError, match="ResourceNotFoundException"):
        client().list_page("students")


@pytest.mark.parametrize(
    "failure",
    [
        {"status": 500, "body": "<html><body>500</body></html>", "content_type": "text/html"},
        {"status": 502, "body": "<html><body>502</body></html>", "content_type": "text/html"},
        {"status": 503, "json": envelope(503, "Service Unavailable")},
        {
            "status": 200,
            "body": "<!DOCTYPE html><html><body>Down for maintenance</body></html>",
            "content_type": "text/html",
        },
        {"body": requests.exceptions.ReadTimeout("read timed out")},
        {"body": requests.exceptions.ConnectionError("connection refused")},
    ],
    ids=["500", "502", "503", "html-200", "timeout", "connection-error"],
)
@responses.activate
def test_transient_failures_are_retried_then_succeed(
    client: Callable[..., ArborClient], sleeps: list[float], failure: dict[str, Any]
) -> None:
    responses.add(responses.GET, STUDENTS, **failure)
    responses.get(STUDENTS, json=OK_BODY)
    assert client().list_page("students") == OK_BODY["students"]
    assert len(responses.calls) == 2
    assert len(sleeps) == 1 and 0 < sleeps[0] <= 0.002


@responses.activate
def test_429_waits_at_least_retry_after(
    client: Callable[..., ArborClient], sleeps: list[float]
) -> None:
    responses.get(
        STUDENTS, json={"error": "Too Many Requests"}, status=429, headers={"Retry-After": "3"}
    )
    responses.get(STUDENTS, json=OK_BODY)
    assert client().list_page("students") == OK_BODY["students"]
    assert len(responses.calls) == 2
    assert sleeps == [pytest.approx(3.0)] and sleeps[0] >= 3


@responses.activate
def test_retries_exhausted_raise_retriable(
    client: Callable[..., ArborClient], sleeps: list[float]
) -> None:
    responses.get(STUDENTS, json=envelope(503, "Service Unavailable"), status=503)
    with pytest.raises(RetriableApiError, match="gave up after 3 attempts"):
        client().list_page("students")
    assert len(responses.calls) == 3
    assert len(sleeps) == 2


@responses.activate
def test_a_silent_empty_object_is_an_empty_list(client: Callable[..., ArborClient]) -> None:
    responses.get(STUDENTS, json={})
    assert client().list_page("students") == []


@responses.activate
def test_a_list_without_its_root_key_is_fatal(client: Callable[..., ArborClient]) -> None:
    responses.get(STUDENTS, json={"data": [student(1)]})
    with pytest.raises(FatalApiError, match="without a 'students' list"):
        client().list_page("students")


# -- paging -------------------------------------------------------------------------------------


def page(number: int, items: list[dict[str, str]], size: int = 2) -> None:
    responses.get(
        STUDENTS,
        json={"students": items},
        match=[matchers.query_param_matcher({"page-number": str(number), "page-size": str(size)})],
    )


@responses.activate
def test_exact_multiple_of_page_size_ends_on_the_empty_page(
    client: Callable[..., ArborClient],
) -> None:
    page(1, [student(1), student(2)])
    page(2, [student(3), student(4)])
    page(3, [])
    items = list(client().paginate("students"))
    assert [href_id(i["href"]) for i in items] == ["1", "2", "3", "4"]
    assert len(responses.calls) == 3


@responses.activate
def test_a_short_page_ends_the_list(client: Callable[..., ArborClient]) -> None:
    page(1, [student(1), student(2)])
    page(2, [student(3)])
    items = list(client().paginate("students"))
    assert [href_id(i["href"]) for i in items] == ["1", "2", "3"]
    assert len(responses.calls) == 2  # no request for page 3


@responses.activate
def test_an_empty_first_page_is_an_empty_list(client: Callable[..., ArborClient]) -> None:
    page(1, [])
    assert list(client().paginate("students")) == []
    assert len(responses.calls) == 1


@responses.activate
def test_a_repeated_page_fails_loudly(client: Callable[..., ArborClient]) -> None:
    page(1, [student(1), student(2)])
    page(2, [student(1), student(2)])  # the server ignores page-number
    with pytest.raises(PagingError, match="page 2 repeats page 1") as raised:
        list(client().paginate("students"))
    assert type(raised.value) is PagingError
    assert len(responses.calls) == 2


@responses.activate
def test_an_item_coming_back_on_a_later_page_means_the_data_moved(
    client: Callable[..., ArborClient],
) -> None:
    page(1, [student(1), student(2)])
    page(2, [student(2), student(3)])  # something was inserted in front of page 1
    with pytest.raises(ListingChangedError, match="came back on page 2"):
        list(client().paginate("students"))


def test_paging_past_the_sane_maximum_fails_loudly() -> None:
    paginator = ArborPaginator(page_size=1, max_pages=3)
    fetched: list[int] = []

    def endless(number: int) -> list[dict[str, str]]:
        fetched.append(number)
        return [student(number)]

    with pytest.raises(PagingError, match="after 3 pages"):
        list(paginator.pages(endless, what="students"))
    assert fetched == [1, 2, 3]


@pytest.mark.parametrize("size", [0, MAX_PAGE_SIZE + 1])
def test_page_size_outside_what_arbor_honours_is_refused(size: int) -> None:
    # A clamped page would look short and end the list early, silently.
    with pytest.raises(ValueError, match="page_size"):
        ArborPaginator(page_size=size)


@responses.activate
def test_changelog_pages_and_sends_from_revision(client: Callable[..., ArborClient]) -> None:
    url = f"{BASE}/attendance-records/changelog"

    def change(revision: int) -> dict[str, Any]:
        return {
            "changedObject": {"href": f"/rest-v2/attendance-records/{revision}"},
            "changeType": "update",
            "fromRevision": revision - 1,
            "toRevision": revision,
        }

    for number, items in ((1, [change(11), change(12)]), (2, [change(13)])):
        responses.get(
            url,
            json={"changes": items},
            match=[
                matchers.query_param_matcher(
                    {"from-revision": "10", "page-number": str(number), "page-size": "2"}
                )
            ],
        )
    changes = list(client().changelog("attendance-records", 10))
    assert [c["toRevision"] for c in changes] == [11, 12, 13]


# -- stubs --------------------------------------------------------------------------------------


@responses.activate
def test_a_stub_is_fetched_once_per_run(client: Callable[..., ArborClient]) -> None:
    person = {"entityType": "Person", "href": "/rest-v2/persons/7", "legalLastName": "X"}
    responses.get(f"{BASE}/persons/7", json={"person": person})
    arbor = client()
    stub = {"entityType": "Person", "href": "/rest-v2/persons/7"}
    assert arbor.resolve(stub) == person
    assert arbor.resolve(dict(stub)) == person
    assert len(responses.calls) == 1


@responses.activate
def test_listed_objects_kept_for_resolution_cost_no_request(
    client: Callable[..., ArborClient],
) -> None:
    marks = [
        {"entityType": "AttendanceMark", "href": "/rest-v2/attendance-marks/LATE", "code": "L"}
    ]
    responses.get(f"{BASE}/attendance-marks", json={"attendanceMarks": marks})
    arbor = client()
    list(arbor.paginate("attendance-marks", keep=True))
    assert arbor.resolve({"href": "/rest-v2/attendance-marks/LATE"})["code"] == "L"
    assert len(responses.calls) == 1


@responses.activate
def test_an_empty_object_for_a_stub_means_no_access(client: Callable[..., ArborClient]) -> None:
    responses.get(f"{BASE}/persons/7", json={})
    assert client().resolve({"href": "/rest-v2/persons/7"}) == {}


@responses.activate
def test_a_base_url_without_rest_v2_gets_it(client: Callable[..., ArborClient]) -> None:
    responses.get(STUDENTS, json=OK_BODY)
    arbor = ArborClient(
        "https://oakfield.uk.arbor.sc/", school_id="oakfield", username="u", password="p"
    )
    assert arbor.base_url == BASE
    assert arbor.list_page("students") == OK_BODY["students"]


def test_href_helpers() -> None:
    assert resource_path("/rest-v2/students/123") == "students/123"
    assert resource_path("https://x.uk.arbor.sc/rest-v2/students/123") == "students/123"
    assert resource_path("/oakfield/rest-v2/attendance-marks/LATE") == "attendance-marks/LATE"
    assert href_id("/rest-v2/students/123") == "123"
    assert list_key("attendance-records") == "attendanceRecords"
    assert list_key("in-care-status-assignments") == "inCareStatusAssignments"
    assert list_key("students") == "students"
