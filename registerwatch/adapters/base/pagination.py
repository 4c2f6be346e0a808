"""Paginators (page number, offset, cursor, link) and the one paging-consistency policy.

Shaped after the Meltano Singer SDK's ``pagination.py``: a paginator holds a current value
(a page number, an offset, a cursor, a link), learns the next one from each page it is shown
(``get_next``) and refuses to go round in circles (``advance``). Unlike the SDK's, these are
shown the parsed page, not the HTTP response: the HTTP client has already classified and
parsed it inside its retry loop.

Offset-style paging cannot see data that moves while it is read: an item of an earlier page
may come back on a later one, and another is then never seen. ``pages(identity=...)`` detects
that (``ListingChangedError``) and :func:`read_consistently` is the one policy for it: read the
listing again from the start, a few times, then give up with ``PagingError`` rather than store
a listing that is merely plausible.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

import structlog

from registerwatch.adapters.base.inflight import Prefetcher
from registerwatch.errors import PagingError, UnsafeResponseError

log = structlog.get_logger("registerwatch.adapters")

V = TypeVar("V")
R = TypeVar("R")

# A sane bound: 10,000 pages of 100 is a million rows, far beyond any school's window. Paging
# past it means the server is not ending the list: fail loudly.
MAX_PAGES = 10_000
# How many times a listing is read from the start when it changed while being paged.
MAX_LISTING_READS = 3
# Records one page may hold before it is refused as junk ([sync] / [schools.mis]
# max_records_per_page). Every vendor pages at 1,000 or fewer, so a page ten times that is a
# runaway or hostile answer, not a school: mapping (and quarantining) a million junk records
# would hold the night and the memory for nothing.
MAX_RECORDS_PER_PAGE = 10_000


def check_page_size(count: int, *, limit: int, what: str, number: int) -> None:
    """UnsafeResponseError (fatal for this school, this run) for a page over ``limit``."""
    if count > limit:
        raise UnsafeResponseError(
            f"{what}: page {number} holds {count} records, more than the limit of {limit} "
            "per page — refused as a junk or runaway answer; nothing from this school was "
            "stored. If the MIS really pages this large, raise max_records_per_page in "
            "[schools.mis]"
        )


class ListingChangedError(PagingError):
    """Records moved between pages (an item of an earlier page came back on a later one):
    the data changed under offset paging, so the listing must be read again."""


def page_records(page: Any) -> list[Any]:
    """The records of a page that is a plain list (vendors override ``records_of``)."""
    return page if isinstance(page, list) else []


class Paginator(Generic[V]):
    """A start value, the rule for the next one, and the guards every paginator shares."""

    def __init__(
        self,
        start_value: V,
        *,
        max_pages: int = MAX_PAGES,
        records_of: Callable[[Any], list[Any]] = page_records,
        max_records: int = MAX_RECORDS_PER_PAGE,
    ) -> None:
        self.start_value = start_value
        self.max_pages = max_pages
        self.records_of = records_of
        self.max_records = max_records
        # Requests kept in flight when the next values are known before the pages are read
        # (``following``); 1 reads one page at a time. A vendor's client sets it from its
        # ``max_concurrent_requests``.
        self.max_in_flight = 1

    def following(self, current: V, steps: int) -> V | None:
        """The value ``steps`` pages after ``current`` when it can be known without reading
        the pages between (page numbers, offsets of a fixed size); None when only a page can
        tell (a cursor, a link): those are read one at a time."""
        return None

    def get_next(
        self, page: Any, current: V, *, what: str
    ) -> V | None:  # pragma: no cover - abstract
        """The value that fetches the page after ``page``; None when ``page`` was the last."""
        raise NotImplementedError

    def pages(
        self,
        fetch: Callable[[V], Any],
        *,
        what: str,
        identity: Callable[[Any], str | None] | None = None,
    ) -> Iterator[list[Any]]:
        """Every non-empty page's records, in order.

        ``identity`` (an item's stable id) turns on the consistency checks: a page that
        repeats the previous one means the server ignores the paging parameter
        (``PagingError``); an item that already came on an earlier page means the data moved
        (``ListingChangedError``: see :func:`read_consistently`).
        """
        ahead = self.following(self.start_value, 1) is not None
        with Prefetcher(
            fetch,
            self.following,
            max_in_flight=self.max_in_flight if ahead else 1,
            limit=self.max_pages,
        ) as prefetcher:
            yield from self._pages(prefetcher.get, what=what, identity=identity)

    def _pages(
        self,
        fetch: Callable[[V], Any],
        *,
        what: str,
        identity: Callable[[Any], str | None] | None,
    ) -> Iterator[list[Any]]:
        seen: set[str] = set()
        previous: list[str] | None = None
        current = self.start_value
        for number in range(1, self.max_pages + 1):
            page = fetch(current)
            records = self.records_of(page)
            check_page_size(len(records), limit=self.max_records, what=what, number=number)
            if identity is not None:
                ids = [i for i in map(identity, records) if i is not None]
                if ids and ids == previous:
                    raise PagingError(
                        f"{what}: page {number} repeats page {number - 1} — the "
                        "MIS is not honouring the paging parameter; stopping "
                        "rather than looping"
                    )
                moved = seen.intersection(ids)
                if moved:
                    raise ListingChangedError(
                        f"{what}: {len(moved)} item(s) of an earlier "
                        f"page came back on page {number}: the data "
                        "changed while paging"
                    )
                seen.update(ids)
                previous = ids
            if records:
                yield records
            following = self.get_next(page, current, what=what)
            if following is None:
                return
            current = self.advance(current, following, what=what, number=number)
        raise PagingError(
            f"{what}: still full pages after {self.max_pages} pages — more than "
            f"{self.max_pages} pages means the MIS is not ending the list"
        )

    def advance(self, current: V, following: V, *, what: str, number: int) -> V:
        """Refuse a next value that does not move on (the SDK's "loop detected" check)."""
        if following == current:
            raise PagingError(
                f"{what}: the next page value {following!r} repeated (page "
                f"{number}); stopped rather than loop"
            )
        return following


class PageNumberPaginator(Paginator[int]):
    """Page numbers from 1 with a fixed page size; a page shorter than the size is the last."""

    def __init__(
        self,
        page_size: int,
        *,
        max_page_size: int | None = None,
        max_pages: int = MAX_PAGES,
        start: int = 1,
        records_of: Callable[[Any], list[Any]] = page_records,
    ) -> None:
        if page_size < 1 or (max_page_size is not None and page_size > max_page_size):
            raise ValueError(f"page_size must be 1-{max_page_size or 'any'}; got {page_size}")
        super().__init__(start, max_pages=max_pages, records_of=records_of)
        self.page_size = page_size

    def get_next(self, page: Any, current: int, *, what: str) -> int | None:
        return None if len(self.records_of(page)) < self.page_size else current + 1

    def following(self, current: int, steps: int) -> int | None:
        return current + steps


class OffsetPaginator(Paginator[int]):
    """An item offset from 0 with a fixed limit; a page shorter than the limit is the last."""

    def __init__(
        self,
        page_size: int,
        *,
        max_pages: int = MAX_PAGES,
        records_of: Callable[[Any], list[Any]] = page_records,
    ) -> None:
        if page_size < 1:
            raise ValueError(f"page_size must be at least 1; got {page_size}")
        super().__init__(0, max_pages=max_pages, records_of=records_of)
        self.page_size = page_size

    def get_next(self, page: Any, current: int, *, what: str) -> int | None:
        count = len(self.records_of(page))
        return None if count < self.page_size else current + count

    def following(self, current: int, steps: int) -> int | None:
        # A page that is not the last is full, so it moves the offset by exactly page_size. A
        # server that returns more than asked moves it further: the prediction then misses and
        # the prefetcher starts again from the real offset.
        return current + steps * self.page_size


class CursorPaginator(Paginator[int | None]):
    """``has_more`` and an integer ``cursor`` (the last id returned), checked strictly.

    Each cursor must be a non-negative integer greater than the one before. Anything else (has
    more with no cursor, a repeated or smaller cursor, a cursor that is not an integer) raises
    PagingError: silently stopping would drop records, and following would loop for ever. An
    empty page with more to come and a larger cursor is followed (a filter may leave a page
    empty); ``max_pages`` bounds even that.
    """

    def __init__(
        self,
        *,
        max_pages: int = MAX_PAGES,
        has_more_key: str = "has_more",
        cursor_key: str = "cursor",
        records_of: Callable[[Any], list[Any]] = page_records,
    ) -> None:
        super().__init__(None, max_pages=max_pages, records_of=records_of)
        self.has_more_key = has_more_key
        self.cursor_key = cursor_key

    def get_next(self, page: Any, current: int | None, *, what: str) -> int | None:
        has_more = page.get(self.has_more_key, False) if isinstance(page, dict) else False
        if has_more is False or has_more is None:
            return None
        if has_more is not True:
            raise PagingError(
                f"{what} broke its paging contract: {self.has_more_key} is "
                f"{has_more!r}, not true or false"
            )
        raw = page.get(self.cursor_key)
        if raw is None:
            raise PagingError(
                f"{what} broke its paging contract: {self.has_more_key} is true but "
                "there is no cursor; stopped rather than miss the remaining "
                "records"
            )
        if (
            isinstance(raw, bool)
            or not isinstance(raw, int | str)
            or not str(raw).lstrip("-").isdigit()
        ):
            raise PagingError(f"{what} broke its paging contract: cursor {raw!r} is not an integer")
        return int(raw)

    def advance(
        self, current: int | None, following: int | None, *, what: str, number: int
    ) -> int | None:
        assert following is not None
        if current is not None and following == current:
            raise PagingError(
                f"{what} broke its paging contract: cursor {following} repeated "
                f"(page {number}); stopped rather than loop"
            )
        if current is not None and following < current:
            raise PagingError(
                f"{what} broke its paging contract: cursor went backwards from "
                f"{current} to {following} (page {number}); stopped rather than "
                "read records twice"
            )
        if following < 0:
            raise PagingError(f"{what} broke its paging contract: cursor {following} is negative")
        return following


class LinkPaginator(Paginator[str]):
    """Follows the next link a page carries (HATEOAS ``links.next``, or an RFC 8288 ``Link``
    header the vendor's fetch puts in the page); no link ends the list."""

    def __init__(
        self,
        first: str,
        next_link: Callable[[Any], str | None],
        *,
        max_pages: int = MAX_PAGES,
        records_of: Callable[[Any], list[Any]] = page_records,
    ) -> None:
        super().__init__(first, max_pages=max_pages, records_of=records_of)
        self.next_link = next_link

    def get_next(self, page: Any, current: str, *, what: str) -> str | None:
        return self.next_link(page) or None


def read_consistently(
    read: Callable[[], R], *, what: str, vendor: str, school: str, reads: int = MAX_LISTING_READS
) -> R:
    """``read()`` again from the start while it raises ListingChangedError, up to ``reads``
    times; then PagingError, and nothing of the listing is used."""
    for attempt in range(1, reads + 1):
        try:
            return read()
        except ListingChangedError as exc:
            if attempt == reads:
                raise PagingError(
                    f"{what} kept changing while it was paged ({_reason(exc, what)}); after it "
                    f"kept changing over {attempt} reads nothing from it was used — the next "
                    "run will retry"
                ) from exc
            log.warning(
                "adapter.listing_moved",
                vendor=vendor,
                school=school,
                what=what,
                attempt=attempt,
                reason=_reason(exc, what),
            )
    raise AssertionError("unreachable")  # pragma: no cover


def _reason(exc: Exception, what: str) -> str:
    text = str(exc)
    return text[len(what) + 2 :] if text.startswith(f"{what}: ") else text
