"""The shared paginators and the one paging-consistency policy, on hand-built pages."""

from __future__ import annotations

from typing import Any

import pytest

from registerwatch.adapters.base import (
    LinkPaginator,
    ListingChangedError,
    OffsetPaginator,
    PageNumberPaginator,
    read_consistently,
)
from registerwatch.errors import PagingError

ITEMS = [{"id": str(n)} for n in range(1, 8)]


def _ids(pages: list[list[Any]]) -> list[str]:
    return [item["id"] for page in pages for item in page]


def test_offset_paging_reads_every_item_once_and_stops_on_a_short_page() -> None:
    asked: list[int] = []

    def fetch(offset: int) -> list[dict[str, str]]:
        asked.append(offset)
        return ITEMS[offset : offset + 3]

    pages = list(OffsetPaginator(3).pages(fetch, what="x", identity=lambda i: i["id"]))
    assert _ids(pages) == [i["id"] for i in ITEMS]
    assert asked == [0, 3, 6]


def test_page_numbers_stop_on_an_empty_page_when_the_last_was_full() -> None:
    pages = list(PageNumberPaginator(7).pages(lambda n: ITEMS if n == 1 else [], what="x"))
    assert _ids(pages) == [i["id"] for i in ITEMS]


def test_a_link_is_followed_until_there_is_none_and_a_repeated_link_is_refused() -> None:
    site = {"/a": {"items": ITEMS[:2], "next": "/b"}, "/b": {"items": ITEMS[2:], "next": None}}
    paginator = LinkPaginator(
        "/a", lambda page: page["next"], records_of=lambda page: page["items"]
    )
    assert _ids(list(paginator.pages(site.__getitem__, what="x"))) == [i["id"] for i in ITEMS]
    loop = {"/a": {"items": ITEMS[:1], "next": "/a"}}
    looping = LinkPaginator("/a", lambda page: page["next"], records_of=lambda p: p["items"])
    with pytest.raises(PagingError, match="repeated"):
        list(looping.pages(loop.__getitem__, what="x"))


def test_a_moved_item_is_read_again_and_a_listing_that_keeps_moving_is_refused() -> None:
    reads = {"n": 0}

    def read() -> list[str]:
        reads["n"] += 1
        if reads["n"] < 3:
            raise ListingChangedError("x: moved")
        return ["ok"]

    assert read_consistently(read, what="x", vendor="v", school="s") == ["ok"]
    assert reads["n"] == 3

    def never() -> list[str]:
        raise ListingChangedError("x: moved")

    with pytest.raises(PagingError, match="kept changing while it was paged") as raised:
        read_consistently(never, what="x", vendor="v", school="s")
    assert type(raised.value) is PagingError
