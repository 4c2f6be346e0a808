"""Several requests of one school in flight at once, their results used in order.

A first sync reads a school year of marks page by page. Sequentially, the client waits while
the MIS builds each page, and the MIS waits while the client maps it: with a few requests in
flight the two overlap, and with a distant MIS the round trips overlap too. Only what can be
asked without the previous answer is asked ahead: page numbers, offsets with a fixed page
size, a known list of pages or objects. A cursor or a next link still goes one at a time.

Results are always consumed in the order they were asked, so everything that inspects a page
(the paginators' consistency checks, the end of the list, the mapping) sees what it would
have seen sequentially. Each request keeps its own retries (``ApiClient.request`` runs whole
in a worker thread). The first failure in order is raised when its turn comes, exactly where
a sequential read would have raised it; requests asked after it are cancelled or, if already
running, waited for and their results dropped, so no request outlives the read that asked it.
A request so abandoned (a page past the end of the list, say) is not retried
(:func:`abandoned`, asked by ``ApiClient.request``): the read never waits out a backoff for a
page it will not use.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

V = TypeVar("V")
R = TypeVar("R")

_local = threading.local()


class _Ticket:
    """One request sent ahead; ``dropped`` once its result will not be used."""

    __slots__ = ("dropped",)

    def __init__(self) -> None:
        self.dropped = False


def abandoned() -> bool:
    """True in a worker thread whose request's result will not be used (see the module
    docstring): the HTTP client then gives up at the first failure instead of retrying."""
    ticket = getattr(_local, "ticket", None)
    return ticket is not None and bool(ticket.dropped)


def _run(fetch: Callable[[V], R], value: V, ticket: _Ticket) -> R:
    _local.ticket = ticket
    try:
        return fetch(value)
    finally:
        _local.ticket = None


# Requests of one school in flight at once when a vendor adopts concurrent paging
# (ApiClient.max_concurrent_requests): enough to hide a 50 ms round trip behind the mapping of
# the page before it, few enough not to look like a burst to an MIS's rate limiter.
DEFAULT_MAX_CONCURRENT_REQUESTS = 4


def fetch_in_order(
    fetch: Callable[[V], R],
    values: Iterable[V],
    *,
    max_in_flight: int,
    thread_name_prefix: str = "registerwatch-fetch",
) -> Generator[R, None, None]:
    """``fetch(value)`` for each of ``values``, yielded in order, at most ``max_in_flight`` at
    once (1: plainly sequential, no thread). Stopping early (close the iterator) cancels what
    was not yet sent and waits for what is running."""
    if max_in_flight <= 1:
        for value in values:
            yield fetch(value)
        return
    pending: deque[tuple[Future[R], _Ticket]] = deque()
    source = iter(values)
    with ThreadPoolExecutor(max_in_flight, thread_name_prefix=thread_name_prefix) as pool:

        def send(value: V) -> None:
            ticket = _Ticket()
            pending.append((pool.submit(_run, fetch, value, ticket), ticket))

        try:
            for value in source:
                send(value)
                if len(pending) >= max_in_flight:
                    break
            while pending:
                result = pending.popleft()[0].result()
                for value in source:  # top up by one
                    send(value)
                    break
                yield result
        finally:
            for future, ticket in pending:
                ticket.dropped = True
                future.cancel()  # running ones finish; the pool's exit waits for them


class Prefetcher(Generic[V, R]):
    """Answers ``get(value)`` from requests sent ahead along a predicted sequence of values.

    ``following(value, steps)`` predicts the value ``steps`` pages after ``value`` (None: not
    predictable). The window grows from one request as pages keep coming full (1, 2, 4... up
    to ``max_in_flight``), so a one-page listing costs one request, and a listing's end costs
    at most ``max_in_flight - 1`` requests for pages past it. Asked for a value other than the
    next predicted one, it drops what it sent ahead and starts again from that value.
    """

    def __init__(
        self,
        fetch: Callable[[V], R],
        following: Callable[[V, int], V | None],
        *,
        max_in_flight: int,
        limit: int,
    ) -> None:
        self._fetch = fetch
        self._following = following
        self._max = max(1, max_in_flight)
        self._limit = limit  # values asked in all (the paginator's max_pages)
        self._pool: ThreadPoolExecutor | None = None
        self._ahead: deque[tuple[V, Future[R], _Ticket]] = deque()
        self._asked = 0
        self._window = 1
        self._last: tuple[V] | None = None  # the value sent last, while its sequence holds

    def get(self, value: V) -> R:
        if self._max == 1:
            return self._fetch(value)
        if self._ahead and self._ahead[0][0] != value:
            self._drop()
        if not self._ahead:
            self._send(value)
        future = self._ahead.popleft()[1]
        self._top_up()
        result = future.result()
        self._window = min(self._max, self._window * 2)
        return result

    def close(self) -> None:
        self._drop()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def __enter__(self) -> Prefetcher[V, R]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, value: V) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._max, thread_name_prefix="registerwatch-fetch")
        self._asked += 1
        self._last = (value,)
        ticket = _Ticket()
        self._ahead.append((value, self._pool.submit(_run, self._fetch, value, ticket), ticket))

    def _top_up(self) -> None:
        # What was sent and not yet consumed, plus the page being consumed now, stays within
        # the window.
        while self._last is not None and len(self._ahead) + 1 < self._window:
            if self._asked >= self._limit:
                return
            following = self._following(self._last[0], 1)
            if following is None:
                return
            self._send(following)

    def _drop(self) -> None:
        while self._ahead:
            _, future, ticket = self._ahead.pop()
            ticket.dropped = True
            future.cancel()
        self._last = None
        # Already running: those finish (their results are dropped); close() waits for them,
        # so no request is left using the session after the read that asked it.
