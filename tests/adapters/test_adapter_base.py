"""The shared adapter parts: retry classification, backoff, mapping helpers, de-duplication."""

from datetime import UTC, date, datetime, timedelta

import pytest
import requests
import responses

from registerwatch.adapters.base import (
    ApiClient,
    RetryPolicy,
    dedupe_marks,
    normalise_code,
    parse_date,
    parse_retry_after,
)
from registerwatch.errors import FatalApiError, InvalidRecord, RetriableApiError
from registerwatch.schema import Mark

BASE = "http://mis.test/api"


def client(**kw):
    sleeps: list[float] = []
    c = ApiClient(
        BASE,
        school_id="oakfield",
        credential_hint="OAKFIELD_API_KEY",
        retry=RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.02),
        sleep=sleeps.append,
        **kw,
    )
    return c, sleeps


@responses.activate
@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_retried_then_succeed(status):
    responses.get(f"{BASE}/x", status=status)
    responses.get(f"{BASE}/x", json={"ok": 1})
    c, sleeps = client()
    assert c.get_json("x") == {"ok": 1}
    assert len(sleeps) == 1


@responses.activate
def test_429_waits_at_least_retry_after():
    responses.get(f"{BASE}/x", status=429, headers={"Retry-After": "7"})
    responses.get(f"{BASE}/x", json=[])
    c, sleeps = client()
    assert c.get_json("x") == []
    assert sleeps == [7.0]


@responses.activate
def test_a_retry_after_longer_than_we_wait_gives_up_at_once():
    responses.get(f"{BASE}/x", status=429, headers={"Retry-After": "86400"})
    c, sleeps = client()
    with pytest.raises(RetriableApiError, match="asked to wait 86400s"):
        c.get_json("x")
    assert sleeps == []


@responses.activate
@pytest.mark.parametrize("status", [401, 403])
def test_auth_failures_are_fatal_and_name_the_credential(status):
    responses.get(f"{BASE}/x", status=status)
    c, sleeps = client()
    with pytest.raises(FatalApiError, match="check OAKFIELD_API_KEY") as exc:
        c.get_json("x")
    assert "school 'oakfield'" in str(exc.value)
    assert sleeps == []


@responses.activate
def test_other_4xx_is_fatal_without_retry():
    responses.get(f"{BASE}/x", status=404, body="no such thing")
    c, sleeps = client()
    with pytest.raises(FatalApiError, match="404"):
        c.get_json("x")
    assert sleeps == [] and len(responses.calls) == 1


@responses.activate
def test_html_maintenance_page_with_200_is_retried():
    responses.get(
        f"{BASE}/x", body="<!DOCTYPE html><html>maintenance</html>", content_type="text/html"
    )
    responses.get(f"{BASE}/x", json={"ok": True})
    c, _ = client()
    assert c.get_json("x") == {"ok": True}


@responses.activate
def test_truncated_json_is_retried_like_a_5xx():
    responses.get(f"{BASE}/x", body='{"data": [1, 2', content_type="application/json")
    responses.get(f"{BASE}/x", json={"data": [1, 2]})
    c, sleeps = client()
    assert c.get_json("x") == {"data": [1, 2]}
    assert len(sleeps) == 1


@responses.activate
def test_timeouts_are_retried_and_exhaustion_says_the_next_run_retries():
    responses.get(f"{BASE}/x", body=requests.Timeout("read timed out"))
    c, sleeps = client()
    with pytest.raises(RetriableApiError, match="gave up after 4 attempts"):
        c.get_json("x")
    assert len(sleeps) == 3
    # exponential with jitter: each delay within [ceiling/2, ceiling]
    assert all(0.005 <= d <= 0.02 for d in sleeps)


def test_parse_retry_after_forms():
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    later = (datetime.now(UTC) + timedelta(seconds=30)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert 25 <= parse_retry_after(later) <= 31


def test_normalise_code_keeps_national_codes_and_maps_aliases():
    aliases = {"<": "C1", ">": "C2", "?": "J1", "PRES": "/"}
    kw = {"resource": "marks", "record_ref": "r1"}
    assert normalise_code("N", aliases, **kw) == "N"
    assert normalise_code("<", aliases, **kw) == "C1"
    assert normalise_code("pres", aliases, **kw) == "/"
    with pytest.raises(InvalidRecord):
        normalise_code("i", aliases, **kw)  # single letters are case-sensitive
    assert normalise_code("c2", aliases, **kw) == "C2"
    with pytest.raises(InvalidRecord) as exc:
        normalise_code("Q9", aliases, **kw)
    assert exc.value.field == "code" and "unknown attendance code 'Q9'" in exc.value.reason
    with pytest.raises(InvalidRecord, match="missing"):
        normalise_code("", aliases, **kw)


def test_parse_date_never_quotes_a_date_of_birth():
    with pytest.raises(InvalidRecord) as exc:
        parse_date("2011-02-30", resource="pupils", record_ref="p1", field="dob")
    assert "2011-02-30" not in str(exc.value)
    with pytest.raises(InvalidRecord, match="'2025-13-01'"):
        parse_date("2025-13-01", resource="marks", record_ref="m1", field="date")
    assert parse_date("2025-11-03T08:45:00", resource="m", record_ref="1", field="d") == date(
        2025, 11, 3
    )


def _mark(code, at=None):
    return Mark(pupil_id="s:1", date=date(2025, 11, 3), session="AM", code=code, recorded_at=at)


def test_dedupe_drops_what_the_mis_itself_supersedes_and_leaves_ties_to_sync():
    t0 = datetime(2025, 11, 3, 8, 50, tzinfo=UTC)
    later = _mark("I", t0 + timedelta(minutes=5))
    assert dedupe_marks([later, _mark("N", t0)]) == [later]
    assert dedupe_marks([_mark("N", t0), later]) == [later]
    # no timestamp loses to a timestamp, whatever the order
    assert dedupe_marks([_mark("O"), _mark("N", t0)])[0].code == "N"
    assert dedupe_marks([_mark("N", t0), _mark("O")])[0].code == "N"
    # equal timestamps (or none): no order to choose by, so both stay for sync's duplicate
    # policy (exact copies dropped, disagreeing versions quarantined), never feed order
    assert [m.code for m in dedupe_marks([_mark("N", t0), _mark("I", t0)])] == ["N", "I"]
    assert [m.code for m in dedupe_marks([_mark("N"), _mark("O")])] == ["N", "O"]
    other_session = Mark(pupil_id="s:1", date=date(2025, 11, 3), session="PM", code="\\")
    assert len(dedupe_marks([_mark("N"), other_session])) == 2


@responses.activate
def test_an_unreachable_server_is_named_as_such_not_as_slow():
    responses.get(f"{BASE}/x", body=requests.ConnectionError("refused"))
    c, _ = client()
    with pytest.raises(RetriableApiError, match=r"could not be reached at http://mis.test/api"):
        c.get_json("x")
