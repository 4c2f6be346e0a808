"""Each simulator fault in turn: the adapter still reproduces the school, or says clearly why not.

Faults that cannot be seen from one pull (a stale cache, data changing between pages, an empty
day) are corrected by the next pull, which is what sync's trailing re-pull window does: the
tests show that second pull equals the school.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date
from typing import Any

import pytest
import requests
from g4s_school import FIRST_DAY, LAST_DAY, make_adapter
from structlog.testing import capture_logs

from registerwatch.adapters.go4schools import Go4SchoolsAdapter
from registerwatch.errors import PagingError, PermissionGapError
from registerwatch.schema import Mark, Pupil, Session
from registerwatch.simulator.go4schools import Corruption, Go4SchoolsApp
from registerwatch.simulator.model import GeneratedSchool
from registerwatch.simulator.server import FaultKind, SimulatorServer

PUPIL_FIELDS = {
    "id",
    "upn",
    "legal_forename",
    "legal_surname",
    "dob",
    "sex",
    "nc_year",
    "reg_group",
    "starting_day",
    "leaving_date",
    "ehcp",
    "fsm",
}
MARK_FIELDS = {"pupil_id", "date", "session", "code", "vendor_code", "minutes_late", "comment"}
MARKS_PATH = "student-session-marks/date/"


def pupils_of(records: Iterable[Pupil]) -> list[dict[str, Any]]:
    return sorted((p.model_dump(include=PUPIL_FIELDS) for p in records), key=lambda p: p["id"])


def marks_of(records: Iterable[Mark]) -> dict[tuple[str, date, Session], dict[str, Any]]:
    return {(m.pupil_id, m.date, m.session): m.model_dump(include=MARK_FIELDS) for m in records}


def everything(adapter: Go4SchoolsAdapter) -> tuple[list[dict[str, Any]], dict[Any, Any]]:
    pupils = adapter.pupils()
    marks = adapter.marks(FIRST_DAY, LAST_DAY)
    assert pupils.quarantined == [] and marks.quarantined == []
    return pupils_of(pupils.records), marks_of(marks.records)


# -- generic faults (VendorApp): retried, and the school arrives whole --------------------------


@pytest.mark.parametrize(
    "kind",
    [
        FaultKind.RATE_LIMIT,
        FaultKind.SERVER_ERROR,
        FaultKind.BAD_GATEWAY,
        FaultKind.UNAVAILABLE,
        FaultKind.HTML_MAINTENANCE,
        FaultKind.SLOW,
    ],
)
def test_generic_faults_are_retried_and_the_school_arrives(
    kind: FaultKind,
    app: Go4SchoolsApp,
    school: GeneratedSchool,
    new_adapter: Callable[..., Go4SchoolsAdapter],
) -> None:
    sleeps: list[float] = []
    adapter = new_adapter(sleep=sleeps.append, timeout=(1.0, 0.3))
    app.faults.arm(kind, times=2, path="students", retry_after=2, delay=0.6)
    app.faults.arm(kind, times=1, path=MARKS_PATH + "2025-09-10", retry_after=2, delay=0.6)
    pupils, marks = everything(adapter)
    assert pupils == pupils_of(school.pupils)
    assert marks == marks_of(school.marks)
    assert app.faults.fired[kind.value] == 3
    assert len(sleeps) == 3
    if kind is FaultKind.RATE_LIMIT:
        assert min(sleeps) >= 2.0  # Retry-After honoured


# -- EMPTY_PERMISSION: 200 with an empty list ---------------------------------------------------


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/students", "no students"),
        ("education-details", "no education details"),
        ("attendance/codes", "empty attendance code table"),
    ],
)
def test_an_empty_answer_where_data_must_exist_is_a_permission_gap(
    path: str,
    words: str,
    app: Go4SchoolsApp,
    school: GeneratedSchool,
    new_adapter: Callable[..., Go4SchoolsAdapter],
) -> None:
    app.faults.arm(FaultKind.EMPTY_PERMISSION, times=1, path=path)
    with pytest.raises(PermissionGapError) as raised:
        everything(new_adapter())
    message = str(raised.value)
    assert words in message and "oakfield" in message and "data officer" in message
    # The gap was transient here (times=1): the next run gets the whole school.
    assert everything(new_adapter()) == (pupils_of(school.pupils), marks_of(school.marks))


def test_no_marks_on_any_school_day_is_a_permission_gap(
    app: Go4SchoolsApp, adapter: Go4SchoolsAdapter
) -> None:
    app.faults.arm(FaultKind.EMPTY_PERMISSION, times=None, path=MARKS_PATH)
    # 10 school days, less the last one (the end of sync's window is its "today").
    with pytest.raises(
        PermissionGapError,
        match="no session marks for any of the 9 school days from 2025-09-08 to 2025-09-19",
    ):
        adapter.marks(FIRST_DAY, LAST_DAY)


def test_no_marks_on_dates_sync_called_school_days_is_a_permission_gap(
    app: Go4SchoolsApp, school: GeneratedSchool, new_adapter: Callable[..., Go4SchoolsAdapter]
) -> None:
    app.faults.arm(FaultKind.EMPTY_PERMISSION, times=None, path=MARKS_PATH)
    days = [date(2025, 9, 15), date(2025, 9, 16)]
    with pytest.raises(PermissionGapError, match="2 school days"):
        new_adapter().marks(FIRST_DAY, LAST_DAY, dates=days)
    # The caller's dates are the expectation: the calendar was not needed.
    assert not [p for p in app.requests if "timetables" in p]


def test_one_empty_school_day_is_reported_and_the_next_pull_fills_it(
    app: Go4SchoolsApp, school: GeneratedSchool, new_adapter: Callable[..., Go4SchoolsAdapter]
) -> None:
    empty_day = date(2025, 9, 12)
    app.faults.arm(FaultKind.EMPTY_PERMISSION, times=1, path=MARKS_PATH + empty_day.isoformat())
    with capture_logs() as events:
        first = new_adapter().marks(FIRST_DAY, LAST_DAY)
    warned = [e for e in events if e["event"] == "adapter.school_day_without_marks"]
    assert [(e["date"], e["log_level"]) for e in warned] == [("2025-09-12", "warning")]
    assert marks_of(first.records) == marks_of(m for m in school.marks if m.date != empty_day)
    assert marks_of(new_adapter().marks(FIRST_DAY, LAST_DAY).records) == marks_of(school.marks)


def test_an_empty_weekday_outside_term_is_not_a_gap(
    app: Go4SchoolsApp, adapter: Go4SchoolsAdapter
) -> None:
    half_term = date(2025, 10, 28)  # a Tuesday in half-term: no marks, and none expected
    with capture_logs() as events:
        batch = adapter.marks(half_term, half_term)
    assert batch.records == [] and batch.quarantined == []
    assert not [e for e in events if e["event"] == "adapter.school_day_without_marks"]


# -- STALE_CACHE: an older snapshot -------------------------------------------------------------


def test_a_stale_cache_is_corrected_by_the_next_pull(
    app: Go4SchoolsApp, school: GeneratedSchool, new_adapter: Callable[..., Go4SchoolsAdapter]
) -> None:
    day, key = date(2025, 9, 10), ("oakfield:1002", date(2025, 9, 10), Session.AM)
    app.set_mark(key[0], day, Session.AM, "O")  # resolved after the cache filled
    app.faults.arm(FaultKind.STALE_CACHE, times=1, path=MARKS_PATH + day.isoformat())
    stale = marks_of(new_adapter().marks(FIRST_DAY, LAST_DAY).records)
    assert stale[key]["code"] == "N"  # nothing in one pull can tell: G4S has no timestamps
    fresh = marks_of(new_adapter().marks(FIRST_DAY, LAST_DAY).records)
    assert fresh[key]["code"] == "O"
    assert fresh == marks_of(school.marks)


def test_stale_students_are_corrected_by_the_next_pull(
    app: Go4SchoolsApp, school: GeneratedSchool, new_adapter: Callable[..., Go4SchoolsAdapter]
) -> None:
    moved = school.pupils[0].model_copy(update={"reg_group": "9C"})
    school.pupils[0] = moved
    app.faults.arm(FaultKind.STALE_CACHE, times=None, path="students")
    stale = new_adapter().pupils().records
    assert next(p for p in stale if p.id == moved.id).reg_group == "9B"
    app.faults.clear()  # the cache expires
    assert pupils_of(new_adapter().pupils().records) == pupils_of(school.pupils)


# -- CHANGING_PAGES: the data moves while the cursor walks ---------------------------------------


def test_changes_between_pages_lose_nothing_and_the_next_pull_catches_up(
    app: Go4SchoolsApp, school: GeneratedSchool, new_adapter: Callable[..., Go4SchoolsAdapter]
) -> None:
    day = date(2025, 9, 10)
    before = marks_of(m for m in school.marks if m.date == day)
    app.faults.arm(FaultKind.CHANGING_PAGES, times=1, path=MARKS_PATH + day.isoformat())
    adapter = new_adapter()
    during = marks_of(adapter.marks(day, day).records)
    after = marks_of(m for m in school.marks if m.date == day)
    changed = {k for k in after if after[k] != before[k]}
    assert len(changed) == 2  # one mark already served, one not yet
    assert during.keys() == after.keys()  # nothing lost, nothing doubled
    assert {k for k in during if during[k] != after[k]} == {
        min(changed, key=lambda k: app.student_id(k[0]))
    }  # only the one already served
    assert marks_of(new_adapter().marks(day, day).records) == after
    history = adapter.amendments(day, day).records
    assert {(a.pupil_id, a.session) for a in history} == {(k[0], k[2]) for k in changed}


# -- MALFORMED: bad records are quarantined with field and reason, the rest arrive --------------


def test_malformed_marks_are_quarantined_and_the_rest_arrive(
    app: Go4SchoolsApp, school: GeneratedSchool, new_adapter: Callable[..., Go4SchoolsAdapter]
) -> None:
    day = date(2025, 9, 9)
    app.faults.arm(FaultKind.MALFORMED, times=1, path=MARKS_PATH + day.isoformat())
    batch = new_adapter().marks(FIRST_DAY, LAST_DAY)
    spoiled = [c for c in app.corrupted if c.resource == "session-marks"]
    assert [(c.student_id, c.session, c.field) for c in spoiled] == [
        (1001, "AM", "date"),
        (1001, "PM", "session_mark_id"),
        (1002, "AM", "session"),
    ]
    found = sorted((q.resource, q.record_ref, q.field, q.reason) for q in batch.quarantined)
    assert found == [
        (
            "student-session-marks",
            "2025-09-09/1001/AM",
            "date",
            "'2025-02-30T00:00:00' is not a valid date",
        ),
        (
            "student-session-marks",
            "2025-09-09/1001/PM",
            "session_mark_id",
            "unknown session_mark_id 9999 (not in the school's attendance code table)",
        ),
        (
            "student-session-marks",
            "2025-09-09/1002/?",
            "session",
            "required field 'session' is missing",
        ),
    ]
    lost = {(f"oakfield:{c.student_id}", day, Session(c.session)) for c in spoiled}
    assert marks_of(batch.records) == marks_of(
        m for m in school.marks if (m.pupil_id, m.date, m.session) not in lost
    )
    assert marks_of(new_adapter().marks(FIRST_DAY, LAST_DAY).records) == marks_of(school.marks)


def test_malformed_students_are_quarantined_and_the_rest_arrive(
    app: Go4SchoolsApp, school: GeneratedSchool, new_adapter: Callable[..., Go4SchoolsAdapter]
) -> None:
    app.faults.arm(FaultKind.MALFORMED, times=1, path="/students")
    batch = new_adapter().pupils()
    assert app.corrupted == [
        Corruption("students", 1001, None, None, "date_of_birth"),
        Corruption("students", 1002, None, None, "id"),
    ]
    assert sorted((q.resource, q.record_ref, q.field, q.reason) for q in batch.quarantined) == [
        ("students", "student #2", "id", "required field 'id' is missing"),
        # a date of birth is personal data: the reason never quotes it
        ("students", "student 1001", "date_of_birth", "the value is not a valid date"),
    ]
    assert pupils_of(batch.records) == pupils_of(
        p for p in school.pupils if p.mis_id not in {"1001", "1002"}
    )
    assert pupils_of(new_adapter().pupils().records) == pupils_of(school.pupils)


def test_malformed_education_details_quarantine_the_student_they_belong_to(
    app: Go4SchoolsApp, school: GeneratedSchool, new_adapter: Callable[..., Go4SchoolsAdapter]
) -> None:
    app.faults.arm(FaultKind.MALFORMED, times=1, path="education-details")
    batch = new_adapter().pupils()
    assert sorted((q.resource, q.record_ref, q.field) for q in batch.quarantined) == [
        ("education-details", "student #2", "student_id"),
        ("education-details", "student 1001", "admission_date"),
        ("education-details", "student 1002", "student_id"),
    ]
    assert {p.mis_id for p in batch.records} == {"1003", "1004", "1005"}


def test_malformed_amendments_are_quarantined(
    app: Go4SchoolsApp, new_adapter: Callable[..., Go4SchoolsAdapter]
) -> None:
    day = date(2025, 9, 9)
    app.set_mark("oakfield:1004", date(2025, 9, 9), Session.PM, "L")  # a 2nd amendment that day
    app.faults.arm(FaultKind.MALFORMED, times=1, path="amendments/date/" + day.isoformat())
    batch = new_adapter().amendments(day, day)
    assert batch.records == []
    assert sorted((q.field, q.reason) for q in batch.quarantined) == [
        ("amended_at", "'yesterday' is not a valid date-time"),
        ("session", "session 'XM' is not AM or PM"),
    ]


def test_a_malformed_calendar_row_is_kept_aside(
    app: Go4SchoolsApp, school: GeneratedSchool, adapter: Go4SchoolsAdapter
) -> None:
    app.faults.arm(FaultKind.MALFORMED, times=1, path="timetables")
    calendar = adapter.calendar()
    assert calendar is not None
    assert [(q.field, q.reason) for q in adapter.calendar_quarantined] == [
        ("date", "'not a date' is not a valid date")
    ]
    # The first listed day (3 September) was the spoiled one: the term starts a day later.
    assert calendar.terms[0].start == date(2025, 9, 4)


# -- a broken cursor ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "words"),
    [("repeat", "repeated"), ("backwards", "went backwards"), ("missing", "no cursor")],
)
def test_a_broken_cursor_stops_the_run_loudly(
    mode: str, words: str, school: GeneratedSchool, serve: Callable[[Any], SimulatorServer]
) -> None:
    app = Go4SchoolsApp(school, api_key="k", page_size=2, broken_cursor=mode)  # type: ignore[arg-type]
    adapter = make_adapter(serve(app).url, credentials={"api_key": "k"})
    with pytest.raises(PagingError, match=words) as raised:
        adapter.pupils()
    assert "/customer/v1/academic-years/2026/students" in str(raised.value)
    assert sum(n for p, n in app.requests.items() if p.endswith("/students")) <= 3
    adapter.close()


def test_the_broken_cursor_can_be_switched_over_http(
    server: SimulatorServer,
    app: Go4SchoolsApp,
    school: GeneratedSchool,
    new_adapter: Callable[..., Go4SchoolsAdapter],
) -> None:
    control = f"{server.url}/_sim/go4schools/cursor"
    answer = requests.post(control, json={"mode": "missing", "path": MARKS_PATH}, timeout=5)
    assert answer.json() == {"broken_cursor": "missing"}
    with pytest.raises(PagingError, match="no cursor"):
        new_adapter().marks(FIRST_DAY, FIRST_DAY)
    assert pupils_of(new_adapter().pupils().records) == pupils_of(school.pupils)  # other paths
    assert requests.delete(control, timeout=5).json() == {"broken_cursor": None}
    assert marks_of(new_adapter().marks(FIRST_DAY, LAST_DAY).records) == marks_of(school.marks)
    bad = requests.post(control, json={"mode": "sideways"}, timeout=5)
    assert bad.status_code == 400
