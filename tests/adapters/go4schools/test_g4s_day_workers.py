"""Dates fetched a few at a time (``day_workers``, ``DayReader``): the same marks and
amendments in the same order as one date at a time, every request counted, a failed date
raised as it would be one at a time, and no worker left behind."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date

import pytest
from g4s_school import FIRST_DAY, LAST_DAY, make_adapter

from registerwatch.adapters.go4schools import DAY_WORKERS, Go4SchoolsAdapter
from registerwatch.adapters.go4schools.client import DayReader
from registerwatch.errors import ConfigError, FatalApiError, RetriableApiError
from registerwatch.simulator.go4schools import Go4SchoolsApp
from registerwatch.simulator.server import FaultKind, SimulatorServer

DATES_PATH = "attendance/student-session-marks/date/"


def pull(adapter: Go4SchoolsAdapter) -> tuple[list[object], list[object], int, int]:
    marks = adapter.marks(FIRST_DAY, LAST_DAY)
    amendments = adapter.amendments(FIRST_DAY, LAST_DAY)
    return (
        [m.model_dump() for m in marks.records],
        [a.model_dump() for a in amendments.records],
        marks.requests,
        amendments.requests,
    )


def worker_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("registerwatch-g4s")]


def test_dates_at_a_time_give_what_one_at_a_time_gives(
    app: Go4SchoolsApp, new_adapter: Callable[..., Go4SchoolsAdapter]
) -> None:
    assert DAY_WORKERS > 1
    one = new_adapter(day_workers=1)
    one_result = pull(one)
    asked_one_at_a_time = sum(app.requests.values())
    app.requests.clear()
    many = new_adapter(day_workers=4)
    assert pull(many) == one_result
    marks, _amendments, mark_requests, amendment_requests = one_result
    assert marks  # the school has marks on these dates
    # every request counted once, whichever client sent it
    assert sum(app.requests.values()) == asked_one_at_a_time
    assert mark_requests + amendment_requests < asked_one_at_a_time  # + probe and code table
    assert len(many.days._clients) <= 4 and not worker_threads()


def test_a_failed_date_raises_as_one_at_a_time_would(
    app: Go4SchoolsApp, server: SimulatorServer
) -> None:
    day = date(2025, 9, 10)
    errors = []
    for workers in (1, 4):
        adapter = make_adapter(server.url, day_workers=workers)
        try:
            adapter.marks(FIRST_DAY, FIRST_DAY)  # the code table, before the fault
            app.faults.arm(FaultKind.SERVER_ERROR, 10, DATES_PATH + day.isoformat())
            with pytest.raises(RetriableApiError) as raised:
                adapter.marks(FIRST_DAY, LAST_DAY)
            errors.append(str(raised.value))
        finally:
            adapter.close()
            app.faults.clear()
    assert errors[0] == errors[1] and day.isoformat() in errors[0]
    assert not worker_threads()


def test_a_fatal_answer_on_one_date_stops_the_pull(
    app: Go4SchoolsApp, server: SimulatorServer
) -> None:
    adapter = make_adapter(server.url, day_workers=3)
    try:
        adapter.marks(FIRST_DAY, FIRST_DAY)
        app.api_key = "revoked"
        with pytest.raises(FatalApiError, match="401"):
            adapter.marks(FIRST_DAY, LAST_DAY)
    finally:
        adapter.close()
    assert not worker_threads()


def test_day_workers_must_be_at_least_one(server: SimulatorServer) -> None:
    with pytest.raises(ConfigError, match="day_workers"):
        make_adapter(server.url, day_workers=0)
    with pytest.raises(ValueError, match="workers"):
        DayReader(make_adapter(server.url).client, lambda: make_adapter(server.url).client, 0)


def test_one_path_or_one_worker_uses_the_main_client(server: SimulatorServer) -> None:
    adapter = make_adapter(server.url, day_workers=4)
    try:
        adapter.marks(FIRST_DAY, FIRST_DAY)
        assert adapter.days._clients == []  # one date: nothing to overlap
        adapter.marks(FIRST_DAY, LAST_DAY)
        assert 1 <= len(adapter.days._clients) <= 4
    finally:
        adapter.close()
