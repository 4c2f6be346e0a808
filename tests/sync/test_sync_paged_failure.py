"""A school whose marks are read with several pages in flight (adapters.base.inflight): the
store gets what a sequential read gives it, and a page that fails mid-listing leaves the store
exactly as it was, as a failure of a sequential read does."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime
from typing import Any

from sync_support import (
    AS_OF,
    NOW,
    FakeAdapter,
    FakeMis,
    fake_mis,
    make_settings,
    marks_for,
    pupil,
    school_days,
    school_table,
)

from registerwatch.adapters.base import Batch, PageNumberPaginator
from registerwatch.errors import FatalApiError
from registerwatch.schema import Mark
from registerwatch.store import Store
from registerwatch.sync import sync_school

PAGE = 25
LATER = datetime(2025, 10, 2, 19, 0, tzinfo=UTC)


class PagedAdapter(FakeAdapter):
    """Serves the marks in pages of PAGE, up to 4 in flight; page ``fail_on`` is refused."""

    def __init__(self, mis: FakeMis, *, in_flight: int, fail_on: int | None = None) -> None:
        super().__init__(mis)
        self.in_flight = in_flight
        self.fail_on = fail_on
        self.asked: list[int] = []
        self.lock = threading.Lock()

    def marks(self, start: date, end: date) -> Batch[Mark]:
        self._fetch("marks", start, end)
        wanted = [m for m in self.mis.marks if start <= m.date <= end]

        def page(number: int) -> list[Mark]:
            with self.lock:
                self.asked.append(number)
            if number == self.fail_on:
                raise FatalApiError(f"school {self.school_id!r}: page {number} refused")
            return wanted[(number - 1) * PAGE : number * PAGE]

        paginator = PageNumberPaginator(PAGE)
        paginator.max_in_flight = self.in_flight
        records: list[Any] = [m for p in paginator.pages(page, what="marks") for m in p]
        return self._batch("marks", records)


def _school() -> tuple[Any, FakeMis]:
    settings = make_settings([school_table("oakfield", fake_mis("oakfield"))])
    school = settings.schools[0]
    pupils = [pupil("oakfield", n) for n in range(1, 5)]
    days = school_days(school.to_calendar(), date(2025, 9, 3), AS_OF)
    return school, FakeMis("oakfield", pupils=pupils, marks=marks_for(pupils, days))


def _state(store: Any) -> tuple[Any, ...]:
    return (
        [(m.pupil_id, m.date, m.session, m.code) for m in store.marks("oakfield")],
        [(r.seq, r.hash) for r in store.ledger()],
        store.get_bookmark("oakfield", "marks"),
        store.pupils("oakfield"),
    )


def test_pages_in_flight_store_what_a_sequential_read_stores(store: Any, tmp_path: Any) -> None:
    school, mis = _school()
    other = Store.open(f"sqlite:///{tmp_path / 'sequential.db'}")
    try:
        concurrent = PagedAdapter(mis, in_flight=4)
        sequential = PagedAdapter(mis, in_flight=1)
        ok = sync_school(store, school, concurrent, as_of=AS_OF, clock=lambda: NOW)
        also = sync_school(other, school, sequential, as_of=AS_OF, clock=lambda: NOW)
        assert ok.status == also.status == "ok"
        assert ok.marks_new == also.marks_new == len(mis.marks) > 4 * PAGE
        assert _state(store)[0] == _state(other)[0]
        assert [(r.kind, r.pupil_id, r.payload) for r in store.ledger()] == [
            (r.kind, r.pupil_id, r.payload) for r in other.ledger()
        ]
        last = len(mis.marks) // PAGE + 1
        assert set(sequential.asked) == set(range(1, last + 1))
        assert set(concurrent.asked) >= set(sequential.asked)  # plus at most 3 past the end
        assert max(concurrent.asked) <= last + 3
    finally:
        other.close()


def test_a_page_failing_mid_listing_leaves_the_store_as_it_was(store: Any) -> None:
    school, mis = _school()
    first = sync_school(
        store, school, PagedAdapter(mis, in_flight=4), as_of=AS_OF, clock=lambda: NOW
    )
    assert first.status == "ok"
    before = _state(store)
    mis.set(mis.marks[0].pupil_id, mis.marks[0].date, mis.marks[0].session, "L")

    failing = PagedAdapter(mis, in_flight=4, fail_on=3)
    result = sync_school(store, school, failing, as_of=AS_OF, clock=lambda: LATER)

    assert result.status == "failed"
    assert result.error is not None and "page 3 refused" in result.error
    assert _state(store) == before  # nothing written: no mark, ledger entry or bookmark moved
    assert max(failing.asked) <= 3 + 3  # nothing sent beyond what was already in flight
