"""Go4SchoolsClient on hand-built responses: status -> exception, retries, strict cursor paging."""

from __future__ import annotations

from typing import Any

import pytest
import requests
import responses
from responses import matchers

from registerwatch.adapters.base import RetryPolicy
from registerwatch.adapters.go4schools import (
    CursorPaginator,
    Go4SchoolsClient,
    ResourceNotFoundError,
    normalise_academic_year,
)
from registerwatch.errors import FatalApiError, PagingError, PermissionGapError, RetriableApiError

BASE = "https://g4s.test/customer/v1"
PATH = "academic-years/2026/students"
URL = f"{BASE}/{PATH}"
HINT = "OAKFIELD_G4S_API_KEY"


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client(sleeps: list[float]) -> Go4SchoolsClient:
    return Go4SchoolsClient(
        "https://g4s.test",
        school_id="oakfield",
        api_key="secret-key",
        credential_hint=HINT,
        sleep=sleeps.append,
        retry=RetryPolicy(max_attempts=3, base_delay=0.001, max_delay=0.002),
    )


def page(
    records: list[dict[str, Any]], has_more: Any = False, cursor: Any = None
) -> dict[str, Any]:
    return {"students": records, "has_more": has_more, "cursor": cursor}


OK = page([{"id": 1}])


# -- transport ----------------------------------------------------------------------------------


@responses.activate
def test_sends_the_key_as_a_bearer_token_and_accepts_either_base_url(
    client: Go4SchoolsClient,
) -> None:
    responses.get(URL, json=OK)
    assert client.get_json(PATH) == OK
    assert responses.calls[0].request.headers["Authorization"] == "Bearer secret-key"
    other = Go4SchoolsClient(BASE + "/", school_id="oakfield", api_key="k")
    assert other.base_url == client.base_url == BASE
    assert "secret-key" not in repr(client)


# -- status -> exception table ------------------------------------------------------------------

FATAL_CASES = [
    # status, body, exception, words the message must hold
    (
        401,
        {"error": "Unauthorised. Your API key is not valid for this request"},
        FatalApiError,
        ["401", "Unauthorised. Your API key is not valid", HINT],
    ),
    (
        403,
        {"error": "Forbidden. Your data officer has disabled this module or embargoed it"},
        FatalApiError,
        ["403", "data officer", HINT],
    ),
    (404, {"error": "Not found"}, ResourceNotFoundError, ["404", "base_url"]),
    (400, {"error": "Invalid date."}, FatalApiError, ["400", "Invalid date."]),
    (400, {"error": "Invalid Academic Year"}, FatalApiError, ["academic_year"]),
    (400, {"error": "Invalid Cursor"}, PagingError, ["Invalid Cursor", "cursor"]),
    (422, {"message": "Unprocessable"}, FatalApiError, ["422", "Unprocessable"]),
]


@pytest.mark.parametrize(
    ("status", "body", "error", "words"),
    FATAL_CASES,
    ids=[f"{c[0]}-{c[2].__name__}" for c in FATAL_CASES],
)
@responses.activate
def test_client_errors_are_fatal_at_once(
    client: Go4SchoolsClient,
    sleeps: list[float],
    status: int,
    body: dict[str, str],
    error: type[Exception],
    words: list[str],
) -> None:
    responses.get(URL, json=body, status=status)
    with pytest.raises(error) as raised:
        client.get_json(PATH)
    assert type(raised.value) is error
    for word in words:
        assert word in str(raised.value)
    assert "secret-key" not in str(raised.value)
    assert len(responses.calls) == 1 and sleeps == []


RETRIED_THEN_OK = [
    ("500", {"status": 500, "body": "Internal server error. Try again later."}),
    ("502", {"status": 502, "body": "<html>Bad gateway</html>", "content_type": "text/html"}),
    ("503", {"status": 503, "body": "Service unavailable"}),
    (
        "html-200",
        {
            "status": 200,
            "body": "<!DOCTYPE html><html><body>Maintenance</body></html>",
            "content_type": "text/html",
        },
    ),
    (
        "garbled-json-200",
        {"status": 200, "body": '{"students": [', "content_type": "application/json"},
    ),
    ("timeout", {"body": requests.exceptions.ReadTimeout("read timed out")}),
    ("connection-reset", {"body": requests.exceptions.ConnectionError("reset")}),
]


@pytest.mark.parametrize(("name", "first"), RETRIED_THEN_OK, ids=[c[0] for c in RETRIED_THEN_OK])
@responses.activate
def test_transient_failures_are_retried(
    client: Go4SchoolsClient, sleeps: list[float], name: str, first: dict[str, Any]
) -> None:
    responses.get(URL, **first)
    responses.get(URL, json=OK)
    assert client.get_json(PATH) == OK
    assert len(responses.calls) == 2
    assert len(sleeps) == 1


@responses.activate
def test_429_waits_at_least_retry_after(client: Go4SchoolsClient, sleeps: list[float]) -> None:
    responses.get(
        URL, json={"error": "Too many requests"}, status=429, headers={"Retry-After": "3"}
    )
    responses.get(URL, json=OK)
    assert client.get_json(PATH) == OK
    assert sleeps and sleeps[0] >= 3.0


@responses.activate
def test_a_retry_after_longer_than_we_wait_gives_up_without_sleeping(
    client: Go4SchoolsClient, sleeps: list[float]
) -> None:
    responses.get(
        URL, json={"error": "Too many requests"}, status=429, headers={"Retry-After": "3600"}
    )
    with pytest.raises(RetriableApiError, match="Retry-After") as raised:
        client.get_json(PATH)
    assert raised.value.retry_after == 3600.0
    assert sleeps == []


@responses.activate
def test_retries_exhausted_raise_retriable_error_naming_the_attempts(
    client: Go4SchoolsClient, sleeps: list[float]
) -> None:
    responses.get(URL, body="Service unavailable", status=503)
    with pytest.raises(RetriableApiError, match="gave up after 3 attempts"):
        client.get_json(PATH)
    assert len(responses.calls) == 3
    assert len(sleeps) == 2


# -- cursor paging ------------------------------------------------------------------------------


def add_pages(*pages: dict[str, Any]) -> None:
    """Page n answers the request carrying the cursor page n-1 gave (none for page 1)."""
    cursor: Any = None
    for body in pages:
        match = [
            matchers.query_param_matcher({"cursor": str(cursor)} if cursor is not None else {})
        ]
        responses.get(URL, json=body, match=match)
        cursor = body.get("cursor")


@responses.activate
def test_has_more_false_ends_the_walk(client: Go4SchoolsClient) -> None:
    add_pages(page([{"id": 1}, {"id": 2}], has_more=False, cursor=2))
    assert client.collect(PATH) == [{"id": 1}, {"id": 2}]
    assert len(responses.calls) == 1


@responses.activate
def test_the_cursor_is_followed_until_has_more_is_false(client: Go4SchoolsClient) -> None:
    add_pages(
        page([{"id": 1}, {"id": 2}], True, 2),
        page([{"id": 3}, {"id": 4}], True, 4),
        page([{"id": 5}]),
    )
    assert [r["id"] for r in client.collect(PATH)] == [1, 2, 3, 4, 5]
    assert [c.request.url for c in responses.calls] == [URL, f"{URL}?cursor=2", f"{URL}?cursor=4"]


@responses.activate
def test_an_empty_page_with_an_advancing_cursor_is_followed(client: Go4SchoolsClient) -> None:
    add_pages(page([{"id": 1}], True, 1), page([], True, 7), page([{"id": 8}]))
    assert [r["id"] for r in client.collect(PATH)] == [1, 8]


BROKEN_PAGING = [
    ("repeated", [page([{"id": 1}], True, 1), page([{"id": 1}], True, 1)], "repeated"),
    ("empty-page-same-cursor", [page([{"id": 1}], True, 1), page([], True, 1)], "repeated"),
    ("backwards", [page([{"id": 5}], True, 5), page([{"id": 6}], True, 3)], "backwards"),
    ("no-cursor", [page([{"id": 1}], True, None)], "no cursor"),
    ("not-an-integer", [page([{"id": 1}], True, "next-please")], "not an integer"),
    ("negative", [page([{"id": 1}], True, -4)], "negative"),
    ("has-more-not-boolean", [page([{"id": 1}], "yes", 1)], "has_more"),
]


@pytest.mark.parametrize(
    ("name", "pages", "words"), BROKEN_PAGING, ids=[c[0] for c in BROKEN_PAGING]
)
@responses.activate
def test_a_broken_cursor_fails_loudly(
    client: Go4SchoolsClient, name: str, pages: list[dict[str, Any]], words: str
) -> None:
    add_pages(*pages)
    with pytest.raises(PagingError, match=words) as raised:
        client.collect(PATH)
    assert "oakfield" in str(raised.value) and "/customer/v1/academic-years/2026/students" in str(
        raised.value
    )


@responses.activate
def test_page_limit_stops_an_endless_walk() -> None:
    client = Go4SchoolsClient(
        BASE, school_id="oakfield", api_key="k", paginator=CursorPaginator(max_pages=3)
    )
    add_pages(page([], True, 1), page([], True, 2), page([], True, 3), page([], True, 4))
    with pytest.raises(PagingError, match="more than 3 pages"):
        client.collect(PATH)


@pytest.mark.parametrize("key", ["studentSessionMarks", "StudentSessionMarks", "marks"])
@responses.activate
def test_records_come_from_the_first_list_whatever_its_casing(
    client: Go4SchoolsClient, key: str
) -> None:
    responses.get(URL, json={"has_more": False, key: [{"student_id": 1}], "cursor": None})
    assert client.collect(PATH) == [{"student_id": 1}]


@responses.activate
def test_a_page_without_a_list_is_fatal(client: Go4SchoolsClient) -> None:
    responses.get(URL, json={"error": "Something odd", "has_more": False})
    with pytest.raises(FatalApiError, match="without a list of records"):
        client.collect(PATH)


def test_permission_gap_is_a_fatal_api_error() -> None:
    assert issubclass(PermissionGapError, FatalApiError)


# -- academic years -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("2026", "2026"),
        (2026, "2026"),
        ("2025-2026", "2026"),
        ("2025/2026", "2026"),
        ("2025/26", "2026"),
        ("2025-26", "2026"),
        (" 2025 - 2026 ", "2026"),
        ("1999/00", "2000"),
    ],
)
def test_academic_year_forms_normalise_to_the_ending_year(given: str | int, expected: str) -> None:
    assert normalise_academic_year(given) == expected


@pytest.mark.parametrize("given", ["2025-2027", "2025/25", "next year", "25/26", ""])
def test_academic_year_nonsense_is_refused(given: str) -> None:
    with pytest.raises(ValueError):
        normalise_academic_year(given)
