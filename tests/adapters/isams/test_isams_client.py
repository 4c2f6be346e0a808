"""The iSAMS client on hand-built responses: each status maps to the right exception, tokens are
refreshed once, and REST paging survives (or refuses) listings that change while paged."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from isams_school import FAST_RETRY
from structlog.testing import capture_logs

from registerwatch.adapters.base import RetryPolicy
from registerwatch.adapters.isams import IsamsClient, XmlDocumentError, parse_xml
from registerwatch.adapters.isams.client import BATCH_PATH, TOKEN_PATH
from registerwatch.errors import ConfigError, FatalApiError, PagingError, RetriableApiError

BASE = "https://oakfield.isams.cloud"
STUDENTS = f"{BASE}/api/students"
HINT = "OAKFIELD_ISAMS_CLIENT_SECRET"
REST_CREDS = {"client_id": "rw", "client_secret": "s3cret"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _client(
    credentials: dict[str, str] | None = None,
    *,
    sleeps: list[float] | None = None,
    retry: RetryPolicy = FAST_RETRY,
    clock: Callable[[], float] | None = None,
    timeout: tuple[float, float] = (1.0, 1.0),
) -> IsamsClient:
    return IsamsClient(
        BASE,
        school_id="oakfield",
        credentials=credentials or REST_CREDS,
        credential_hint=HINT,
        retry=retry,
        timeout=timeout,
        sleep=(sleeps.append if sleeps is not None else lambda _s: None),
        clock=clock or Clock(),
    )


def _token_endpoint(tokens: list[str], expires_in: int = 3600) -> None:
    for token in tokens:
        responses.post(
            f"{BASE}{TOKEN_PATH}",
            json={"access_token": token, "expires_in": expires_in, "token_type": "Bearer"},
        )


def _page(
    items: list[dict[str, Any]], page: int, total_pages: int | None, total_count: int | None
) -> dict[str, Any]:
    body: dict[str, Any] = {"students": items, "page": page}
    if total_pages is not None:
        body["totalPages"] = total_pages
    if total_count is not None:
        body["totalCount"] = total_count
    return body


def _students(*ids: str) -> list[dict[str, Any]]:
    return [{"schoolId": i} for i in ids]


def _page_number(request: requests.PreparedRequest) -> int:
    return int(parse_qs(urlsplit(request.url).query)["page"][0])


# -- auth -------------------------------------------------------------------------------------


@responses.activate
def test_token_is_fetched_once_and_sent_as_bearer() -> None:
    _token_endpoint(["tok-1"])
    responses.get(STUDENTS, json=_page(_students("1", "2"), 1, 1, 2))
    client = _client()
    pages = list(client.rest_pages("/api/students", "students"))
    assert pages == [(1, _students("1", "2"))]
    token_call, students_call = responses.calls
    assert parse_qs(token_call.request.body) == {
        "grant_type": ["client_credentials"],
        "client_id": ["rw"],
        "client_secret": ["s3cret"],
    }
    assert "Authorization" not in token_call.request.headers
    assert students_call.request.headers["Authorization"] == "Bearer tok-1"
    assert parse_qs(urlsplit(students_call.request.url).query) == {
        "page": ["1"],
        "pageSize": ["100"],
    }


@responses.activate
def test_401_refreshes_the_token_once_then_succeeds() -> None:
    _token_endpoint(["tok-1", "tok-2"])
    responses.get(STUDENTS, status=401, json={"error": "invalid_token"})
    responses.get(STUDENTS, json=_page(_students("1"), 1, 1, 1))
    client = _client()
    assert client.rest_get("/api/students")["students"] == _students("1")
    assert client.tokens_fetched == 2
    assert responses.calls[-1].request.headers["Authorization"] == "Bearer tok-2"


@responses.activate
def test_401_after_a_refresh_is_fatal_and_names_the_credential() -> None:
    _token_endpoint(["tok-1", "tok-2", "tok-3"])
    responses.get(STUDENTS, status=401, json={"error": "invalid_token"})
    client = _client()
    with pytest.raises(FatalApiError, match=f"MIS returned 401 — check {HINT}"):
        client.rest_get("/api/students")
    assert client.tokens_fetched == 2  # the first token and exactly one refresh
    assert [c.request.url.split("?")[0] for c in responses.calls].count(STUDENTS) == 2


@responses.activate
def test_refused_client_credentials_are_fatal_without_retry() -> None:
    responses.post(f"{BASE}{TOKEN_PATH}", status=400, json={"error": "invalid_client"})
    with pytest.raises(FatalApiError) as caught:
        _client().rest_get("/api/students")
    assert "refused the client credentials (invalid_client)" in str(caught.value)
    assert HINT in str(caught.value)
    assert len(responses.calls) == 1


@responses.activate
def test_token_response_without_a_token_is_fatal() -> None:
    responses.post(f"{BASE}{TOKEN_PATH}", json={"hello": "world"})
    with pytest.raises(FatalApiError, match="without an access_token"):
        _client().rest_get("/api/students")


@responses.activate
def test_token_is_renewed_before_it_expires() -> None:
    clock = Clock()
    _token_endpoint(["tok-1", "tok-2"], expires_in=300)
    responses.get(STUDENTS, json=_page([], 1, 0, 0))
    client = _client(clock=clock)
    client.rest_get("/api/students")
    clock.now += 280  # inside the renewal margin (30 s) of a 300 s token
    client.rest_get("/api/students")
    clock.now += 100
    client.rest_get("/api/students")
    assert client.tokens_fetched == 2
    assert [
        c.request.headers.get("Authorization")
        for c in responses.calls
        if c.request.url.startswith(STUDENTS)
    ] == ["Bearer tok-1", "Bearer tok-2", "Bearer tok-2"]


@responses.activate
def test_token_endpoint_5xx_is_retried() -> None:
    responses.post(f"{BASE}{TOKEN_PATH}", status=503)
    _token_endpoint(["tok-1"])
    responses.get(STUDENTS, json=_page([], 1, 0, 0))
    assert _client().rest_get("/api/students")["totalCount"] == 0


def test_credentials_must_be_complete() -> None:
    with pytest.raises(ConfigError, match="both a client id and a client secret"):
        _client({"client_id": "rw"})
    with pytest.raises(ConfigError, match="no iSAMS credentials configured"):
        _client({"api_key": "  "})


@responses.activate
def test_batch_sends_the_api_key_in_the_query_and_no_token() -> None:
    responses.post(
        f"{BASE}{BATCH_PATH}", body=b"<iSAMS><SchoolManager/></iSAMS>", content_type="text/xml"
    )
    client = _client({"api_key": "k-1", **REST_CREDS})
    client.batch(["School_GetSchoolTerms"])
    (call,) = responses.calls
    assert parse_qs(urlsplit(call.request.url).query) == {"apiKey": ["k-1"]}
    assert "Authorization" not in call.request.headers
    assert call.request.headers["Content-Type"] == "application/xml"
    assert b"<Method>School_GetSchoolTerms</Method>" in call.request.body


@responses.activate
def test_batch_over_oauth_sends_the_client_id_and_a_token() -> None:
    _token_endpoint(["tok-1"])
    responses.post(f"{BASE}{BATCH_PATH}", body=b"<iSAMS/>", content_type="text/xml")
    _client().batch(["School_GetSchoolTerms"])
    call = responses.calls[-1]
    assert parse_qs(urlsplit(call.request.url).query) == {"apiKey": ["rw"]}
    assert call.request.headers["Authorization"] == "Bearer tok-1"


# -- status → exception -----------------------------------------------------------------------


@responses.activate
def test_429_honours_retry_after() -> None:
    sleeps: list[float] = []
    _token_endpoint(["tok-1"])
    responses.get(STUDENTS, status=429, headers={"Retry-After": "3"})
    responses.get(STUDENTS, json=_page([], 1, 0, 0))
    _client(sleeps=sleeps).rest_get("/api/students")
    assert sleeps == [3.0]


@responses.activate
def test_retry_after_longer_than_we_wait_gives_up_at_once() -> None:
    _token_endpoint(["tok-1"])
    responses.get(STUDENTS, status=429, headers={"Retry-After": "3600"})
    with pytest.raises(RetriableApiError, match="asked to wait 3600s") as caught:
        _client().rest_get("/api/students")
    assert caught.value.retry_after == 3600.0


@responses.activate
def test_throttled_batch_message_is_retriable_with_retry_after() -> None:
    sleeps: list[float] = []
    body = (
        b'<?xml version="1.0" encoding="utf-16"?>\n<Message>\n'
        b"  <MessageId>ThrottledException</MessageId>\n  <Title>Limit</Title>\n</Message>"
    )
    responses.post(
        f"{BASE}{BATCH_PATH}",
        body=body,
        status=429,
        headers={"Retry-After": "2"},
        content_type="text/xml",
    )
    responses.post(f"{BASE}{BATCH_PATH}", body=b"<iSAMS/>", content_type="text/xml")
    _client({"api_key": "k"}, sleeps=sleeps).batch(["School_GetSchoolTerms"])
    assert sleeps == [2.0]


@pytest.mark.parametrize("status", [500, 502, 503, 504])
@responses.activate
def test_5xx_is_retried_then_succeeds(status: int) -> None:
    sleeps: list[float] = []
    _token_endpoint(["tok-1"])
    responses.get(STUDENTS, status=status, body="<html><body>oops</body></html>")
    responses.get(STUDENTS, json=_page(_students("7"), 1, 1, 1))
    assert _client(sleeps=sleeps).rest_get("/api/students")["students"] == _students("7")
    assert len(sleeps) == 1 and 0 < sleeps[0] <= FAST_RETRY.max_delay


@responses.activate
def test_5xx_that_persists_gives_up_after_max_attempts() -> None:
    _token_endpoint(["tok-1"])
    responses.get(STUDENTS, status=503)
    with pytest.raises(RetriableApiError, match="gave up after 4 attempts"):
        _client().rest_get("/api/students")
    assert len(responses.calls) == 1 + FAST_RETRY.max_attempts


@responses.activate
def test_timeout_is_retried() -> None:
    _token_endpoint(["tok-1"])
    responses.get(STUDENTS, body=requests.ReadTimeout("slow"))
    responses.get(STUDENTS, json=_page([], 1, 0, 0))
    assert _client().rest_get("/api/students")["totalPages"] == 0


@responses.activate
def test_timeout_that_persists_is_retriable_after_max_attempts() -> None:
    _token_endpoint(["tok-1"])
    responses.get(STUDENTS, body=requests.ConnectTimeout("no route"))
    with pytest.raises(RetriableApiError, match="did not answer in time"):
        _client().rest_get("/api/students")
    assert len(responses.calls) == 1 + FAST_RETRY.max_attempts


@responses.activate
def test_html_maintenance_page_with_200_is_retriable() -> None:
    _token_endpoint(["tok-1"])
    responses.get(
        STUDENTS,
        body="<!DOCTYPE html><html><body>Maintenance</body></html>",
        content_type="text/html",
    )
    with pytest.raises(RetriableApiError, match="HTML page instead of data"):
        _client().rest_get("/api/students")


@responses.activate
def test_html_page_on_the_batch_endpoint_is_retriable() -> None:
    responses.post(
        f"{BASE}{BATCH_PATH}", body="<html><body>down</body></html>", content_type="text/html"
    )
    responses.post(f"{BASE}{BATCH_PATH}", body=b"<iSAMS/>", content_type="text/xml")
    assert _client({"api_key": "k"}).batch(["School_GetSchoolTerms"]).tag == "iSAMS"


@pytest.mark.parametrize("status", [400, 404, 405])
@responses.activate
def test_other_4xx_is_fatal_at_once(status: int) -> None:
    _token_endpoint(["tok-1"])
    responses.get(STUDENTS, status=status, json={"error": "nope"})
    with pytest.raises(FatalApiError, match=f"MIS returned {status}"):
        _client().rest_get("/api/students")
    assert len(responses.calls) == 2  # the token, then one try


@responses.activate
def test_403_is_fatal_and_names_the_credential() -> None:
    _token_endpoint(["tok-1"])
    responses.get(STUDENTS, status=403, json={"error": "forbidden"})
    with pytest.raises(FatalApiError, match=f"403 — check {HINT}"):
        _client().rest_get("/api/students")


@responses.activate
def test_malformed_json_is_retriable() -> None:
    _token_endpoint(["tok-1"])
    responses.get(STUDENTS, body="{not json", content_type="application/json")
    with pytest.raises(RetriableApiError, match="malformed JSON"):
        _client(retry=RetryPolicy(max_attempts=1)).rest_get("/api/students")


@responses.activate
def test_malformed_batch_xml_is_retriable_and_not_an_isams_root_too() -> None:
    responses.post(f"{BASE}{BATCH_PATH}", body=b"<iSAMS><PupilManager>", content_type="text/xml")
    with pytest.raises(RetriableApiError, match="unusable document: malformed XML"):
        _client({"api_key": "k"}).batch(["Pupil_GetCurrentPupils"])
    responses.upsert(
        responses.POST, f"{BASE}{BATCH_PATH}", body=b"<Other/>", content_type="text/xml"
    )
    with pytest.raises(RetriableApiError, match=r"returned <Other> instead of <iSAMS>"):
        _client({"api_key": "k"}).batch(["Pupil_GetCurrentPupils"])


@responses.activate
def test_a_truncated_answer_is_retried_and_its_body_never_quoted() -> None:
    responses.post(
        f"{BASE}{BATCH_PATH}",
        content_type="text/xml",
        body=b"<iSAMS><PupilManager><CurrentPupils><Pupil><Forename>Ava",
    )
    responses.post(f"{BASE}{BATCH_PATH}", body=b"<iSAMS/>", content_type="text/xml")
    _token_endpoint(["tok-1"])
    responses.get(
        STUDENTS,
        body='{"students": [{"forename": "Ava", "surn',
        status=200,
        content_type="application/json",
    )
    responses.get(STUDENTS, json=_page([], 1, 0, 0))
    client = _client({"api_key": "k", **REST_CREDS})
    with capture_logs() as logs:
        assert client.batch(["Pupil_GetCurrentPupils"]).tag == "iSAMS"
        assert client.rest_get("/api/students")["totalCount"] == 0
    retried = [e for e in logs if e["event"] == "adapter.request_retried"]
    assert [e["path"] for e in retried] == [BATCH_PATH, "/api/students"]
    assert "unusable document" in retried[0]["reason"]
    assert "malformed JSON" in retried[1]["reason"]
    assert "Ava" not in repr(logs)


# -- safe XML ---------------------------------------------------------------------------------


def test_xml_with_a_dtd_or_entities_is_refused() -> None:
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><iSAMS>&lol2;</iSAMS>'
    )
    with pytest.raises(XmlDocumentError, match="DTD"):
        parse_xml(laughs)
    external = b'<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><iSAMS>&xxe;</iSAMS>'
    with pytest.raises(XmlDocumentError, match="DTD"):
        parse_xml(external)


def test_real_utf16_and_bom_bodies_parse_too() -> None:
    text = '<?xml version="1.0" encoding="utf-16"?><iSAMS><Name>Zoë</Name></iSAMS>'
    assert parse_xml(text.encode("utf-16")).findtext("Name") == "Zoë"
    assert parse_xml(text.encode("utf-16-le")).findtext("Name") == "Zoë"
    assert (
        parse_xml(b"\xef\xbb\xbf<iSAMS><Name>Zo\xc3\xab</Name></iSAMS>").findtext("Name") == "Zoë"
    )
    with pytest.raises(XmlDocumentError, match="not valid UTF-8"):
        parse_xml(b"<iSAMS>\xc3\x28</iSAMS>")


# -- paging -----------------------------------------------------------------------------------


def _paged(
    pages: dict[int, list[dict[str, Any]]], total_pages: int, total_count: int, log: list[int]
) -> Callable[[requests.PreparedRequest], tuple[int, dict[str, str], str]]:
    def callback(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        number = _page_number(request)
        log.append(number)
        if number > max(total_pages, 1):  # page 1 is always asked for
            raise AssertionError(f"asked for page {number} beyond totalPages {total_pages}")
        return 200, {}, json.dumps(_page(pages.get(number, []), number, total_pages, total_count))

    return callback


@responses.activate
def test_paging_follows_total_pages_and_never_asks_beyond_it() -> None:
    _token_endpoint(["tok-1"])
    asked: list[int] = []
    responses.add_callback(
        responses.GET,
        STUDENTS,
        callback=_paged(
            {1: _students("1", "2"), 2: _students("3", "4"), 3: _students("5")}, 3, 5, asked
        ),
    )
    pages = list(_client().rest_pages("/api/students", "students", page_size=2))
    assert [n for n, _ in pages] == [1, 2, 3]
    assert [s["schoolId"] for _, items in pages for s in items] == ["1", "2", "3", "4", "5"]
    assert asked == [1, 2, 3]


@responses.activate
def test_an_empty_listing_is_one_request() -> None:
    _token_endpoint(["tok-1"])
    asked: list[int] = []
    responses.add_callback(responses.GET, STUDENTS, callback=_paged({}, 0, 0, asked))
    assert list(_client().rest_pages("/api/students", "students")) == [(1, [])]
    assert asked == [1]


@responses.activate
def test_totals_changing_mid_pull_restarts_from_page_one() -> None:
    _token_endpoint(["tok-1"])
    answers = iter(
        [
            _page(_students("1", "2"), 1, 2, 4),
            _page(_students("3", "4"), 2, 3, 5),  # a pupil was added while we paged
            _page(_students("0", "1"), 1, 3, 5),
            _page(_students("2", "3"), 2, 3, 5),
            _page(_students("4"), 3, 3, 5),
        ]
    )
    responses.add_callback(
        responses.GET, STUDENTS, callback=lambda _r: (200, {}, json.dumps(next(answers)))
    )
    pages = list(_client().rest_pages("/api/students", "students", page_size=2))
    assert [s["schoolId"] for _, items in pages for s in items] == ["0", "1", "2", "3", "4"]


@responses.activate
def test_a_record_shifting_across_pages_is_detected_and_repulled() -> None:
    _token_endpoint(["tok-1"])
    answers = iter(
        [
            _page(_students("1", "2"), 1, 2, 4),
            _page(_students("2", "3"), 2, 2, 4),  # "4" moved to the front: "2" repeats, "4" lost
            _page(_students("4", "1"), 1, 2, 4),
            _page(_students("2", "3"), 2, 2, 4),
        ]
    )
    responses.add_callback(
        responses.GET, STUDENTS, callback=lambda _r: (200, {}, json.dumps(next(answers)))
    )
    pages = list(_client().rest_pages("/api/students", "students", page_size=2))
    assert sorted(s["schoolId"] for _, items in pages for s in items) == ["1", "2", "3", "4"]


@responses.activate
def test_a_listing_that_keeps_changing_is_a_paging_error() -> None:
    _token_endpoint(["tok-1"])
    state = {"count": 4}

    def callback(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        state["count"] += 1  # grows on every request
        return (
            200,
            {},
            json.dumps(
                _page(
                    _students(str(_page_number(request))), _page_number(request), 2, state["count"]
                )
            ),
        )

    responses.add_callback(responses.GET, STUDENTS, callback=callback)
    with pytest.raises(PagingError, match="kept changing while it was paged"):
        list(_client().rest_pages("/api/students", "students", page_size=1))
    assert len(responses.calls) == 1 + 2 * 3  # token + two pages per pull, three pulls


@responses.activate
def test_fewer_records_than_total_count_is_repulled_then_refused() -> None:
    _token_endpoint(["tok-1"])
    responses.get(STUDENTS, json=_page(_students("1"), 1, 1, 2))
    with pytest.raises(PagingError, match="collected 1 records but totalCount says 2"):
        list(_client().rest_pages("/api/students", "students"))


@responses.activate
def test_a_server_answering_the_wrong_page_is_a_paging_error() -> None:
    _token_endpoint(["tok-1"])
    responses.get(STUDENTS, json=_page(_students("1"), 1, 2, 2))
    with pytest.raises(PagingError, match="asked for page 2 and answered page 1"):
        list(_client().rest_pages("/api/students", "students", page_size=1))


@responses.activate
def test_without_totals_paging_stops_on_a_short_page() -> None:
    _token_endpoint(["tok-1"])
    answers = iter(
        [_page(_students("1", "2"), 1, None, None), _page(_students("3"), 2, None, None)]
    )
    responses.add_callback(
        responses.GET, STUDENTS, callback=lambda _r: (200, {}, json.dumps(next(answers)))
    )
    pages = list(_client().rest_pages("/api/students", "students", page_size=2))
    assert [n for n, _ in pages] == [1, 2]
