"""Requests kept in flight ahead of the page being read: order, errors, retries, the end."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import responses

from registerwatch.adapters.base import ApiClient, OffsetPaginator, PageNumberPaginator
from registerwatch.adapters.base.inflight import abandoned, fetch_in_order
from registerwatch.errors import FatalApiError, PagingError, RetriableApiError
from registerwatch.retry import RetryPolicy

ITEMS = [{"id": str(n)} for n in range(1, 24)]  # 23 items: pages of 5 end on a short page


class Server:
    """Pages of ITEMS by number, answering out of order (later pages faster) and counting
    how many requests were in flight at once."""

    def __init__(self, size: int = 5, fail_on: int | None = None) -> None:
        self.size = size
        self.fail_on = fail_on
        self.asked: list[int] = []
        self.lock = threading.Lock()
        self.in_flight = 0
        self.most_in_flight = 0

    def page(self, number: int) -> list[dict[str, str]]:
        with self.lock:
            self.asked.append(number)
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            time.sleep(0.02 / number)  # page 1 slowest: answers arrive out of order
            if number == self.fail_on:
                raise FatalApiError(f"page {number} refused")
            return ITEMS[(number - 1) * self.size : number * self.size]
        finally:
            with self.lock:
                self.in_flight -= 1


def _ids(pages: list[list[Any]]) -> list[str]:
    return [item["id"] for page in pages for item in page]


def test_pages_asked_ahead_come_back_in_order_with_every_item_once() -> None:
    server = Server()
    paginator = PageNumberPaginator(5)
    paginator.max_in_flight = 4
    pages = list(paginator.pages(server.page, what="x", identity=lambda i: i["id"]))
    assert _ids(pages) == [i["id"] for i in ITEMS]
    assert [len(p) for p in pages] == [5, 5, 5, 5, 3]
    assert server.most_in_flight > 1
    # Pages 1-5 hold the list; at most max_in_flight - 1 pages past the end were asked.
    assert set(server.asked) >= {1, 2, 3, 4, 5}
    assert max(server.asked) <= 5 + 3


def test_a_one_page_listing_costs_one_request() -> None:
    server = Server(size=50)
    paginator = PageNumberPaginator(50)
    paginator.max_in_flight = 4
    assert _ids(list(paginator.pages(server.page, what="x"))) == [i["id"] for i in ITEMS]
    assert server.asked == [1]


def test_an_error_on_page_k_surfaces_after_the_pages_before_it_as_it_would_in_order() -> None:
    for in_flight in (1, 4):
        server = Server(fail_on=3)
        paginator = PageNumberPaginator(5)
        paginator.max_in_flight = in_flight
        got: list[list[Any]] = []
        with pytest.raises(FatalApiError, match="page 3 refused"):
            for page in paginator.pages(server.page, what="x"):
                got.append(page)
        assert _ids(got) == [i["id"] for i in ITEMS[:10]]
        assert threading.active_count() < 10  # the pool's threads were joined


def test_a_repeated_page_is_still_refused_when_pages_are_asked_ahead() -> None:
    paginator = PageNumberPaginator(5)
    paginator.max_in_flight = 4
    with pytest.raises(PagingError, match="repeats page 1"):
        list(paginator.pages(lambda n: ITEMS[:5], what="x", identity=lambda i: i["id"]))


def test_offsets_are_asked_ahead_and_a_longer_page_than_asked_restarts_the_prediction() -> None:
    asked: list[int] = []
    lock = threading.Lock()

    def fetch(offset: int) -> list[dict[str, str]]:
        with lock:
            asked.append(offset)
        # The server sends 6 items on its first page though 5 were asked.
        return ITEMS[offset : offset + (6 if offset == 0 else 5)]

    paginator = OffsetPaginator(5)
    paginator.max_in_flight = 4
    pages = list(paginator.pages(fetch, what="x", identity=lambda i: i["id"]))
    assert _ids(pages) == [i["id"] for i in ITEMS]
    assert 6 in asked and 0 in asked


def test_a_dropped_request_knows_it_is_abandoned_and_a_used_one_does_not() -> None:
    seen: dict[int, bool] = {}
    release = threading.Event()

    def fetch(number: int) -> list[dict[str, str]]:
        if number > 2:
            release.wait(5)  # still in flight when the consumer stops
        seen[number] = abandoned()
        return ITEMS[2 * (number - 1) : 2 * number]

    paginator = PageNumberPaginator(2)
    paginator.max_in_flight = 4
    pages = paginator.pages(fetch, what="x")
    assert _ids([next(pages), next(pages)]) == ["1", "2", "3", "4"]  # page 3 is sent ahead
    threading.Timer(0.2, release.set).start()  # page 3 ends once it has been dropped
    pages.close()  # the consumer stops: page 3 is dropped, and waited for
    assert seen == {1: False, 2: False, 3: True}


def test_fetch_in_order_keeps_the_order_and_at_most_n_in_flight() -> None:
    server = Server(size=1)
    got = list(fetch_in_order(server.page, range(1, 11), max_in_flight=3))
    assert _ids(got) == [str(n) for n in range(1, 11)]
    assert 1 < server.most_in_flight <= 3


def test_fetch_in_order_raises_the_first_failure_in_order_and_sends_nothing_after_it() -> None:
    server = Server(size=1, fail_on=4)
    got = []
    with pytest.raises(FatalApiError, match="page 4"):
        for page in fetch_in_order(server.page, range(1, 30), max_in_flight=3):
            got.append(page)
    assert _ids(got) == ["1", "2", "3"]
    assert max(server.asked) <= 4 + 2  # what was already in flight, no more


@responses.activate
def test_a_page_asked_ahead_is_retried_in_its_own_thread_and_counted() -> None:
    base = "http://mis.test/api"
    for number in (1, 2, 3, 4, 5, 6, 7):  # pages past the end are empty, as an MIS serves them
        if number == 3:
            responses.get(f"{base}/items?page={number}", status=503)
        body = [
            {"id": f"{number}-{n}"} for n in range(2 if number == 4 else 3 if number < 4 else 0)
        ]
        responses.get(f"{base}/items?page={number}", json=body)
    client = ApiClient(
        base,
        school_id="s",
        credential_hint="X",
        retry=RetryPolicy(max_attempts=3),
        sleep=lambda _s: None,
    )
    paginator = PageNumberPaginator(3)
    paginator.max_in_flight = client.max_concurrent_requests
    pages = list(paginator.pages(lambda n: client.get_json("items", {"page": n}), what="items"))
    assert [p[0]["id"] for p in pages] == ["1-0", "2-0", "3-0", "4-0"]
    assert client.request_count == len(responses.calls)
    statuses = [c.response.status_code for c in responses.calls]
    assert statuses.count(503) == 1  # page 3's first answer, retried in its thread
    assert len(responses.calls) <= 4 + 1 + 3  # 4 pages, one retry, at most 3 past the end


@responses.activate
def test_a_page_that_fails_every_retry_fails_the_listing_as_it_does_in_order() -> None:
    base = "http://mis.test/api"
    responses.get(f"{base}/items?page=1", json=[{"id": "a"}, {"id": "b"}])
    responses.get(f"{base}/items?page=2", status=503)
    responses.get(f"{base}/items?page=3", json=[])
    client = ApiClient(
        base,
        school_id="s",
        credential_hint="X",
        retry=RetryPolicy(max_attempts=2),
        sleep=lambda _s: None,
    )
    paginator = PageNumberPaginator(2)
    paginator.max_in_flight = 4
    with pytest.raises(RetriableApiError, match="gave up after 2 attempts"):
        list(paginator.pages(lambda n: client.get_json("items", {"page": n}), what="items"))
