"""Fewer and overlapping round trips: the pupils' persons (and forms, years, genders...) are
fetched several at a time, and marks() reuses the registers registers() listed in the same sync.
Whatever the order the answers come back in, the records and the quarantine are the same."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from arbor_support import SCHOOL_ID, TERM_END, TERM_START

from registerwatch.adapters.arbor import ArborAdapter
from registerwatch.errors import FatalApiError
from registerwatch.simulator.arbor import ArborApp, error_envelope
from registerwatch.simulator.server import FaultKind, Request, Response, SimulatorServer

MakeAdapter = Callable[..., ArborAdapter]


class InFlight:
    """Wraps an app's ``handle``: how many person requests were being answered at once."""

    def __init__(self, app: ArborApp, answer: Callable[[Request], Response | None]) -> None:
        self._handle = app.handle
        self._answer = answer
        self._lock = threading.Lock()
        self.now = self.most = 0
        self.persons: list[str] = []
        app.handle = self  # type: ignore[method-assign]

    def __call__(self, request: Request) -> Response:
        if "/persons/" not in request.path:
            return self._handle(request)
        with self._lock:
            self.now += 1
            self.most = max(self.most, self.now)
            self.persons.append(request.path)
        try:
            threading.Event().wait(0.01)  # a distant MIS: the answers overlap when asked so
            return self._answer(request) or self._handle(request)
        finally:
            with self._lock:
                self.now -= 1


def pupils_of(adapter: ArborAdapter) -> tuple[list[Any], list[tuple[str | None, str | None]]]:
    batch = adapter.pupils()
    records = sorted(batch.records, key=lambda p: p.id)
    return records, sorted((q.record_ref, q.field) for q in batch.quarantined)


def test_persons_are_fetched_several_at_a_time_with_the_same_result(
    make_adapter: MakeAdapter, app: ArborApp, server: SimulatorServer
) -> None:
    watch = InFlight(app, lambda request: None)
    one_by_one = pupils_of(make_adapter(workers=1))
    assert watch.most == 1
    students = len(app._static["students"])
    assert len(watch.persons) == students
    watch.most, watch.persons = 0, []
    together = pupils_of(make_adapter(workers=4))
    assert together == one_by_one and together[0]
    assert watch.most > 1
    assert sorted(watch.persons) == sorted(set(watch.persons)) and len(watch.persons) == students


def test_a_person_arbor_says_does_not_exist_is_quarantined_with_its_student(
    make_adapter: MakeAdapter, app: ArborApp, server: SimulatorServer
) -> None:
    student = app._static["students"][1]
    gone = student["person"]["href"]

    def answer(request: Request) -> Response | None:
        if request.path == gone:
            return error_envelope(404, "Not Found", "ResourceNotFoundException", "no person")
        return None

    watch = InFlight(app, answer)
    records, quarantined = pupils_of(make_adapter(workers=4))
    assert quarantined == [(student["href"], "person")]
    assert f"{SCHOOL_ID}:{student['href'].rsplit('/', 1)[-1]}" not in {p.id for p in records}
    assert len(records) == len(app._static["students"]) - 1
    assert watch.persons.count(gone) == 1  # the 404 is kept, not asked again while mapping


def test_a_refused_lookup_fails_the_pull_naming_the_credentials(
    make_adapter: MakeAdapter, app: ArborApp, server: SimulatorServer
) -> None:
    refused = app._static["students"][2]["person"]["href"]

    def answer(request: Request) -> Response | None:
        if request.path == refused:
            return error_envelope(403, "Forbidden", "PermissionException", "no access")
        return None

    InFlight(app, answer)
    with pytest.raises(FatalApiError, match="returned 403") as raised:
        make_adapter(workers=4).pupils()
    assert "check OAKFIELD_ARBOR_USERNAME" in str(raised.value)


def test_marks_reuse_the_registers_listed_in_the_same_sync(
    make_adapter: MakeAdapter, app: ArborApp, server: SimulatorServer
) -> None:
    def register_pages() -> int:
        return sum(n for path, n in app.requests.items() if path.endswith("attendance-registers"))

    adapter = make_adapter()
    adapter.begin_sync(TERM_END)
    adapter.registers(TERM_START, TERM_END)
    listed = register_pages()
    assert listed >= 1
    reused = adapter.marks(TERM_START, TERM_END)
    assert register_pages() == listed
    # A second marks() pull of the window (no registers() before it) lists them again, and
    # maps the same marks.
    again = adapter.marks(TERM_START, TERM_END)
    assert register_pages() == 2 * listed
    assert again.records == reused.records and reused.records


class Queries:
    """Wraps an app's ``handle``: the start of each attendance-records window asked for."""

    def __init__(self, app: ArborApp) -> None:
        self._handle = app.handle
        self.starts: list[str] = []
        app.handle = self  # type: ignore[method-assign]

    def __call__(self, request: Request) -> Response:
        if request.path.endswith("/attendance-records"):
            self.starts.extend(request.query.get("filters.startDatetime.from", []))
        return self._handle(request)


def by_key(marks: list[Any]) -> list[Any]:
    return sorted(marks, key=lambda m: (m.pupil_id, m.date, m.session))


@pytest.mark.parametrize(
    "fault",
    [None, FaultKind.CHANGING_PAGES, FaultKind.STALE_CACHE, FaultKind.RATE_LIMIT],
)
def test_a_long_window_read_as_short_windows_at_once_gives_the_marks_of_one_listing(
    make_adapter: MakeAdapter, app: ArborApp, server: SimulatorServer, fault: FaultKind | None
) -> None:
    queries = Queries(app)
    if fault is not None:
        app.faults.arm(fault, times=1, path="attendance-records")
    split = make_adapter(workers=4, listing_window_days=3).marks(TERM_START, TERM_END)
    windows = sorted(set(queries.starts))
    assert windows == [
        f"{day} 00:00:00" for day in ("2025-09-08", "2025-09-11", "2025-09-14", "2025-09-17")
    ]
    if fault is not None:
        assert app.faults.fired[fault.value] == 1
    whole = make_adapter(workers=1).marks(TERM_START, TERM_END)  # as the MIS is now
    assert by_key(split.records) == by_key(whole.records) and whole.records
    assert split.quarantined == whole.quarantined == []


def test_malformed_records_in_one_short_window_are_quarantined_by_href(
    make_adapter: MakeAdapter, app: ArborApp, server: SimulatorServer
) -> None:
    whole = make_adapter(workers=1).marks(TERM_START, TERM_END)
    app.faults.arm(FaultKind.MALFORMED, times=1, path="attendance-records")
    split = make_adapter(workers=4, listing_window_days=3).marks(TERM_START, TERM_END)
    assert sorted(q.record_ref or "" for q in split.quarantined) == sorted(app.corrupted)
    assert {q.field for q in split.quarantined} == {"startDatetime", "attendanceMark", "student"}
    assert len(split.records) == len(whole.records) - len(app.corrupted)
