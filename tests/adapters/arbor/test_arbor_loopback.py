"""ArborAdapter against the Arbor-style simulator on loopback: the school comes back exactly,
with every fault switched on in turn.

"Exactly" means every field Arbor-style REST carries. What it does not carry is fixed in
``expected_*`` below and documented in docs/adapters/arbor.md: the mark's vendor code is
Arbor's, times are kept to the second, ``recorded_by`` / ``taken_by`` / FSM / social worker /
boarder / contacts / addresses / closures are not exposed, and ``source_ref`` is the href.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

import pytest
import requests
from arbor_support import (
    PAGE_SIZE,
    SCHOOL_ID,
    TERM_END,
    TERM_START,
    AppSwitch,
)
from pydantic import SecretStr
from structlog.testing import capture_logs

from registerwatch.adapters.arbor import ArborAdapter
from registerwatch.errors import ConfigError, FatalApiError, PagingError
from registerwatch.schema import (
    Amendment,
    AmendmentSource,
    Mark,
    Pupil,
    Register,
    Session,
)
from registerwatch.simulator.arbor import AMENDMENTS, ATTENDANCE_MARKS, ArborApp
from registerwatch.simulator.model import GeneratedSchool
from registerwatch.simulator.server import FaultKind, SimulatorServer

MakeAdapter = Callable[..., ArborAdapter]
NOT_EXPOSED_PUPIL_FIELDS: dict[str, Any] = {
    "fsm": False,
    "has_social_worker": False,
    "boarder": False,
    "deletion_ground": None,
    "address": None,
    "future_address": None,
    "new_school": None,
    "contacts": [],
}


def to_second(value: datetime | None) -> datetime | None:
    return None if value is None else value.replace(microsecond=0)


def expected_pupils(school: GeneratedSchool) -> list[Pupil]:
    return sorted(
        (p.model_copy(update=NOT_EXPOSED_PUPIL_FIELDS) for p in school.pupils), key=lambda p: p.id
    )


def expected_registers(school: GeneratedSchool) -> list[Register]:
    return sorted(
        (
            r.model_copy(
                update={
                    "taken_by": None,
                    "opened_at": to_second(r.opened_at),
                    "completed_at": to_second(r.completed_at),
                    "source_ref": f"/rest-v2/attendance-registers/{index}",
                }
            )
            for index, r in enumerate(school.registers, start=1)
        ),
        key=register_key,
    )


def expected_marks(app: ArborApp, school: GeneratedSchool) -> list[Mark]:
    return sorted(
        (
            m.model_copy(
                update={
                    "vendor_code": ATTENDANCE_MARKS[m.code][1],
                    "recorded_by": None,
                    "recorded_at": to_second(m.recorded_at),
                    "source_ref": f"/rest-v2/attendance-records/"
                    f"{app.record_id(m.pupil_id, m.date, m.session)}",
                }
            )
            for m in school.marks
        ),
        key=mark_key,
    )


def expected_amendments(school: GeneratedSchool) -> list[Amendment]:
    return [
        a.model_copy(
            update={"source": AmendmentSource.MIS, "source_ref": f"/rest-v2/{AMENDMENTS}/{index}"}
        )
        for index, a in enumerate(school.amendments, start=1)
    ]


def register_key(r: Register) -> tuple[str, date, str]:
    return (r.group, r.date, r.session.value)


def mark_key(m: Mark) -> tuple[str, date, str]:
    return (m.pupil_id, m.date, m.session.value)


def window(school: GeneratedSchool) -> tuple[date, date]:
    days = [m.date for m in school.marks] + [r.date for r in school.registers]
    return min(days), max(days)


def events(logs: Sequence[Mapping[str, Any]]) -> list[str]:
    return [entry["event"] for entry in logs]


# -- the whole school -----------------------------------------------------------------------------


def test_everything_comes_back_exactly(
    make_adapter: MakeAdapter, app: ArborApp, school: GeneratedSchool, sleeps: list[float]
) -> None:
    adapter = make_adapter()
    pupils = adapter.pupils()
    registers = adapter.registers(TERM_START, TERM_END)
    marks = adapter.marks(TERM_START, TERM_END)
    amendments = adapter.amendments(TERM_START, TERM_END)
    calendar = adapter.calendar()

    assert sorted(pupils.records, key=lambda p: p.id) == expected_pupils(school)
    assert sorted(registers.records, key=register_key) == expected_registers(school)
    assert sorted(marks.records, key=mark_key) == expected_marks(app, school)
    assert amendments.records == expected_amendments(school)
    assert calendar is not None and calendar.terms == school.calendar.terms
    assert calendar.closures == []  # closures are not read from Arbor
    for batch in (pupils, registers, marks, amendments):
        assert batch.quarantined == []
        assert batch.requests > 0
    assert adapter.exposes_amendments is True
    assert sleeps == []  # nothing was retried
    # the fixture's own edge cases really are in the data compared above
    assert len(school.marks) == 85 and len(school.registers) == 40
    assert {m.vendor_code for m in marks.records} >= {"1", "2", "3"}
    assert sum(r.completed_at is None for r in registers.records) == 1


def test_marks_page_through_a_window_and_no_further(
    make_adapter: MakeAdapter, app: ArborApp, school: GeneratedSchool
) -> None:
    first_week = (TERM_START, date(2025, 9, 12))
    marks = make_adapter().marks(*first_week)
    expected = [m for m in expected_marks(app, school) if m.date <= first_week[1]]
    assert sorted(marks.records, key=mark_key) == expected
    # 44 records in pages of 7: 7 pages, the last one short
    assert app.requests["/rest-v2/attendance-records"] == -(-len(expected) // PAGE_SIZE)


def test_a_school_prefixed_base_url_and_the_sdk_spelling_work(
    server: SimulatorServer, make_adapter: MakeAdapter, school: GeneratedSchool
) -> None:
    pupils = make_adapter(base_url=f"{server.url}/{SCHOOL_ID}/rest-v2").pupils()
    assert sorted(pupils.records, key=lambda p: p.id) == expected_pupils(school)
    auth = ("registerwatch", "simulator")
    camel = requests.get(f"{server.url}/rest-v2/Students", auth=auth, timeout=5).json()
    assert len(camel["students"]) == len(school.pupils)
    upns = requests.get(
        f"{server.url}/rest-v2/uk-dfe-upn-assignments",
        auth=auth,
        params={"filters.student.equals": "/rest-v2/students/1003"},
        timeout=5,
    ).json()["upnAssignments"]
    assert sorted(u["endDatetime"] is None for u in upns) == [False, True]


# -- generic faults ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind",
    [
        FaultKind.RATE_LIMIT,
        FaultKind.SERVER_ERROR,
        FaultKind.BAD_GATEWAY,
        FaultKind.UNAVAILABLE,
        FaultKind.HTML_MAINTENANCE,
    ],
)
def test_transient_faults_are_retried_and_the_marks_still_arrive(
    make_adapter: MakeAdapter,
    app: ArborApp,
    school: GeneratedSchool,
    sleeps: list[float],
    kind: FaultKind,
) -> None:
    app.faults.arm(kind, times=2, path="attendance-records", retry_after=2)
    marks = make_adapter().marks(TERM_START, TERM_END)
    assert sorted(marks.records, key=mark_key) == expected_marks(app, school)
    assert app.faults.fired[kind.value] == 2
    assert len(sleeps) == 2
    if kind is FaultKind.RATE_LIMIT:
        assert all(delay >= 2 for delay in sleeps)  # Retry-After honoured


def test_a_failing_stub_resolution_is_retried(
    make_adapter: MakeAdapter, app: ArborApp, school: GeneratedSchool, sleeps: list[float]
) -> None:
    app.faults.arm(FaultKind.UNAVAILABLE, times=3, path="/persons/")
    pupils = make_adapter().pupils()
    assert sorted(pupils.records, key=lambda p: p.id) == expected_pupils(school)
    assert app.faults.fired["503"] == 3 and len(sleeps) == 3


def test_a_response_slower_than_the_read_timeout_is_retried(
    make_adapter: MakeAdapter, app: ArborApp, school: GeneratedSchool, sleeps: list[float]
) -> None:
    app.faults.arm(FaultKind.SLOW, times=1, path="attendance-registers", delay=1.5)
    registers = make_adapter(timeout=(1.0, 0.5)).registers(TERM_START, TERM_END)
    assert sorted(registers.records, key=register_key) == expected_registers(school)
    assert app.faults.fired["slow"] == 1 and len(sleeps) == 1


def test_retries_running_out_fail_the_run_with_a_retriable_error(
    make_adapter: MakeAdapter, app: ArborApp
) -> None:
    app.faults.arm(FaultKind.UNAVAILABLE, times=None, path="students")
    with pytest.raises(Exception, match="gave up after 4 attempts") as raised:
        make_adapter().pupils()
    assert type(raised.value).__name__ == "RetriableApiError"


def test_credentials_from_the_config_layer_are_secret_strings(
    make_adapter: MakeAdapter, school: GeneratedSchool
) -> None:
    adapter = make_adapter(
        credentials={"username": SecretStr("registerwatch"), "password": SecretStr("simulator")}
    )
    assert len(adapter.pupils().records) == len(school.pupils)


def test_missing_credentials_are_a_config_error(make_adapter: MakeAdapter) -> None:
    with pytest.raises(ConfigError, match="no password — set OAKFIELD_ARBOR_USERNAME"):
        make_adapter(credentials={"username": "registerwatch"})


def test_wrong_credentials_fail_at_once_naming_them(
    make_adapter: MakeAdapter, app: ArborApp, sleeps: list[float]
) -> None:
    adapter = make_adapter(credentials={"username": "registerwatch", "password": "wrong"})
    with pytest.raises(FatalApiError) as raised:
        adapter.pupils()
    assert "401" in str(raised.value)
    assert "OAKFIELD_ARBOR_USERNAME / OAKFIELD_ARBOR_PASSWORD" in str(raised.value)
    assert "wrong" not in str(raised.value)
    assert app.requests["/rest-v2/students"] == 1 and sleeps == []


# -- vendor-shaped faults ---------------------------------------------------------------------


def edit_the_register(app: ArborApp) -> None:
    """A data manager's edits after the app started: two changes, one new mark, one deletion."""
    app.set_mark(f"{SCHOOL_ID}:1001", date(2025, 9, 8), Session.PM, "I")
    app.set_mark(f"{SCHOOL_ID}:1002", date(2025, 9, 16), Session.AM, "O")
    app.set_mark(f"{SCHOOL_ID}:1003", date(2025, 9, 18), Session.PM, "M")  # was unmarked
    assert app.delete_mark(f"{SCHOOL_ID}:1004", date(2025, 9, 17), Session.AM)


def test_a_stale_cached_listing_is_detected_and_pulled_again(
    make_adapter: MakeAdapter, app: ArborApp, school: GeneratedSchool
) -> None:
    edit_the_register(app)
    # One page holds the whole window, so the whole listing is the old snapshot: only the
    # changelog can tell (its revisions are newer than the listing's revisionIds).
    app.faults.arm(FaultKind.STALE_CACHE, times=1, path="attendance-records")
    with capture_logs() as logs:
        marks = make_adapter(page_size=200).marks(TERM_START, TERM_END)
    assert sorted(marks.records, key=mark_key) == expected_marks(app, school)
    assert app.faults.fired["stale"] == 1
    assert events(logs) == ["adapter.listing_behind_changelog"]
    assert app.requests["/rest-v2/attendance-records"] == 2  # the stale read and one more


def test_one_stale_page_among_fresh_ones_still_ends_correct(
    make_adapter: MakeAdapter, app: ArborApp, school: GeneratedSchool
) -> None:
    edit_the_register(app)
    app.faults.arm(FaultKind.STALE_CACHE, times=1, path="attendance-records")
    with capture_logs() as logs:
        marks = make_adapter().marks(TERM_START, TERM_END)
    assert sorted(marks.records, key=mark_key) == expected_marks(app, school)
    assert app.faults.fired["stale"] == 1
    # the old page orders records differently from the fresh ones, so paging sees them move
    assert "adapter.listing_moved" in events(logs)


def test_a_listing_that_stays_stale_is_patched_from_the_changelog(
    make_adapter: MakeAdapter, app: ArborApp, school: GeneratedSchool
) -> None:
    edit_the_register(app)
    app.faults.arm(FaultKind.STALE_CACHE, times=None, path="attendance-records")
    with capture_logs() as logs:
        marks = make_adapter().marks(TERM_START, TERM_END)
    assert sorted(marks.records, key=mark_key) == expected_marks(app, school)
    assert app.faults.fired["stale"] >= 2
    assert "adapter.listing_patched_from_changelog" in events(logs)


def test_data_changing_between_pages_is_detected_and_pulled_again(
    make_adapter: MakeAdapter, app: ArborApp, school: GeneratedSchool
) -> None:
    before = {mark_key(m): m.recorded_at for m in school.marks}
    app.faults.arm(FaultKind.CHANGING_PAGES, times=1, path="attendance-records")
    with capture_logs() as logs:
        marks = make_adapter().marks(TERM_START, TERM_END)
    assert app.faults.fired["changing"] == 1
    changed = [m for m in school.marks if m.recorded_at != before[mark_key(m)]]
    assert len(changed) == 1  # the simulator really re-saved a record mid-listing
    assert sorted(marks.records, key=mark_key) == expected_marks(app, school)
    assert "adapter.listing_moved" in events(logs)


def test_data_that_never_stops_changing_fails_loudly(
    make_adapter: MakeAdapter, app: ArborApp
) -> None:
    app.faults.arm(FaultKind.CHANGING_PAGES, times=None, path="attendance-records")
    with pytest.raises(PagingError, match="kept changing over 3 reads"):
        make_adapter().marks(TERM_START, TERM_END)


def test_malformed_records_are_quarantined_while_the_rest_arrive(
    make_adapter: MakeAdapter, app: ArborApp, school: GeneratedSchool
) -> None:
    app.faults.arm(FaultKind.MALFORMED, times=1, path="attendance-records")
    marks = make_adapter().marks(TERM_START, TERM_END)
    assert len(app.corrupted) == 3
    assert [(q.record_ref, q.field) for q in marks.quarantined] == list(
        zip(app.corrupted, ["startDatetime", "attendanceMark", "student"], strict=True)
    )
    reasons = [q.reason for q in marks.quarantined]
    assert "'2024-02-30 08:45:00' is not a valid date-time" in reasons[0]
    assert reasons[1] == "unknown attendance code '9'"
    assert reasons[2] == "required field 'student' is missing"
    expected = [m for m in expected_marks(app, school) if m.source_ref not in app.corrupted]
    assert sorted(marks.records, key=mark_key) == expected
    assert len(expected) == len(school.marks) - 3


def test_malformed_students_are_quarantined_while_the_rest_arrive(
    make_adapter: MakeAdapter, app: ArborApp, school: GeneratedSchool
) -> None:
    app.faults.arm(FaultKind.MALFORMED, times=1, path="students")
    pupils = make_adapter().pupils()
    assert [(q.record_ref, q.field) for q in pupils.quarantined] == list(
        zip(app.corrupted, ["mostRecentEntryDate", "person"], strict=True)
    )
    broken = {f"{SCHOOL_ID}:{ref.rsplit('/', 1)[-1]}" for ref in app.corrupted}
    assert sorted(pupils.records, key=lambda p: p.id) == [
        p for p in expected_pupils(school) if p.id not in broken
    ]


@pytest.mark.parametrize(
    ("path", "call", "message"),
    [
        ("students", "pupils", "returned no students"),
        ("/persons/", "pupils", "empty person records for all 5 students"),
        ("attendance-records", "marks", "returned no attendance records"),
        ("attendance-registers", "marks", "returned no attendance registers"),
        ("attendance-registers", "registers", "returned no attendance registers"),
    ],
)
def test_a_permission_gap_is_reported_not_taken_for_an_empty_school(
    make_adapter: MakeAdapter, app: ArborApp, path: str, call: str, message: str
) -> None:
    app.faults.arm(FaultKind.EMPTY_PERMISSION, times=None, path=path)
    adapter = make_adapter()
    method = getattr(adapter, call)
    with pytest.raises(FatalApiError, match=message) as raised:
        method() if call == "pupils" else method(TERM_START, TERM_END)
    assert "permission" in str(raised.value)
    assert app.faults.fired["empty"] >= 1


def test_a_window_with_no_records_and_no_registers_is_simply_empty(
    make_adapter: MakeAdapter,
) -> None:
    adapter = make_adapter()
    half_term = (date(2025, 10, 27), date(2025, 10, 31))
    assert adapter.marks(*half_term).records == []
    assert adapter.registers(*half_term).records == []


# -- amendments and the change feed -------------------------------------------------------------


@pytest.mark.parametrize("app", [{"serve_amendments": False}], indirect=True)
def test_without_the_amendment_resource_amendments_are_not_exposed(
    server: SimulatorServer, make_adapter: MakeAdapter
) -> None:
    adapter = make_adapter()
    assert adapter.exposes_amendments is False
    batch = adapter.amendments(TERM_START, TERM_END)
    assert batch.records == [] and batch.quarantined == []
    reply = requests.get(
        f"{server.url}/rest-v2/{AMENDMENTS}", auth=("registerwatch", "simulator"), timeout=5
    )
    assert reply.status_code == 404
    assert reply.json()["response"]["errors"][0]["exception"] == "ResourceNotFoundException"


def test_changes_since_a_revision_name_the_changed_marks(
    make_adapter: MakeAdapter, app: ArborApp, school: GeneratedSchool
) -> None:
    adapter = make_adapter()
    everything, baseline = adapter.changes_since(0)
    assert baseline == 1 and everything == set(school.marks_by_key())
    assert adapter.changes_since(baseline) == (set(), baseline)
    edit_the_register(app)
    changed, newest = adapter.changes_since(baseline)
    assert newest == baseline + 4
    assert changed == {
        (f"{SCHOOL_ID}:1001", date(2025, 9, 8), Session.PM),
        (f"{SCHOOL_ID}:1002", date(2025, 9, 16), Session.AM),
        (f"{SCHOOL_ID}:1003", date(2025, 9, 18), Session.PM),
        (f"{SCHOOL_ID}:1004", date(2025, 9, 17), Session.AM),
    }


# -- a generated school, when the generator exists ------------------------------------------------


def test_a_generated_school_comes_back_exactly(loopback: tuple[SimulatorServer, AppSwitch]) -> None:
    generate = pytest.importorskip("registerwatch.simulator.generate")
    # The generator's smallest school that still gets every injected breach.
    school = generate.generate_school(seed=7, pupils=generate.MIN_PUPILS_FOR_BREACHES)
    app = ArborApp(school)
    start, end = window(school)
    running, switch = loopback
    switch.current = app
    adapter = ArborAdapter(
        school_id=school.school.id,
        base_url=f"{running.url}/rest-v2",
        credentials={"username": "registerwatch", "password": "simulator"},
        sleep=lambda _: None,
        page_size=500,
    )
    try:
        pupils = adapter.pupils()
        registers = adapter.registers(start, end)
        marks = adapter.marks(start, end)
        amendments = adapter.amendments(start, end)
    finally:
        adapter.close()
        switch.current = None
    assert len(school.marks) > 1000  # a real-sized window, many pages
    assert sorted(pupils.records, key=lambda p: p.id) == expected_pupils(school)
    assert sorted(registers.records, key=register_key) == expected_registers(school)
    assert sorted(marks.records, key=mark_key) == expected_marks(app, school)
    assert sorted(amendments.records, key=lambda a: a.source_ref or "") == sorted(
        expected_amendments(school), key=lambda a: a.source_ref or ""
    )
    for batch in (pupils, registers, marks, amendments):
        assert batch.quarantined == []
