"""The adapter against the iSAMS simulator over loopback: everything fetched equals the school,
with every fault switched on in turn."""

from __future__ import annotations

import importlib
from datetime import UTC, date, datetime
from typing import Any

import pytest
import requests
from isams_school import (
    FAST_RETRY,
    FIRST_DAY,
    LAST_DAY,
    SCHOOL_ID,
    UNMARKED,
    build_school,
    make_adapter,
    serve,
)
from lxml import etree
from structlog.testing import capture_logs

from registerwatch.adapters.base import Batch, RetryPolicy
from registerwatch.adapters.isams import (
    IsamsAdapter,
    MethodsNotAllocatedError,
    parse_message,
)
from registerwatch.errors import FatalApiError, PagingError, PermissionGapError, RetriableApiError
from registerwatch.schema import Mark, Pupil, Session
from registerwatch.simulator.isams import BATCH_PATH, IsamsApp
from registerwatch.simulator.model import GeneratedSchool
from registerwatch.simulator.server import FaultKind, SimulatorServer

# What iSAMS exposes about a pupil (everything else stays at the schema default).
REST_PUPIL_FIELDS = (
    "id",
    "school_id",
    "mis_id",
    "upn",
    "legal_forename",
    "legal_surname",
    "middle_names",
    "preferred_forename",
    "dob",
    "sex",
    "nc_year",
    "reg_group",
    "starting_day",
    "leaving_date",
    "boarder",
)
BATCH_PUPIL_FIELDS = tuple(f for f in REST_PUPIL_FIELDS if f != "leaving_date")
MARK_FIELDS = ("pupil_id", "date", "session", "code", "minutes_late", "comment", "recorded_at")


def expected_pupils(
    school: GeneratedSchool, fields: tuple[str, ...] = REST_PUPIL_FIELDS, current_only: bool = False
) -> dict[str, Pupil]:
    today = school.as_of or LAST_DAY
    return {
        p.id: Pupil(**{f: getattr(p, f) for f in fields})
        for p in school.pupils
        if not current_only or p.leaving_date is None or p.leaving_date >= today
    }


def mark_view(marks: list[Mark]) -> dict[tuple[str, date, Session], tuple[Any, ...]]:
    view = {}
    for mark in marks:
        key = (mark.pupil_id, mark.date, mark.session)
        assert key not in view, f"two marks for {key}"
        view[key] = tuple(getattr(mark, f) for f in MARK_FIELDS)
    return view


def assert_reproduces(adapter: IsamsAdapter, school: GeneratedSchool) -> None:
    pupils = adapter.pupils()
    assert pupils.quarantined == []
    assert {p.id: p for p in pupils.records} == expected_pupils(school)
    marks = adapter.marks(FIRST_DAY, LAST_DAY)
    assert marks.quarantined == []
    assert mark_view(marks.records) == mark_view(school.marks)


# -- the whole school -------------------------------------------------------------------------


def test_everything_fetched_equals_the_school(
    adapter: IsamsAdapter, school: GeneratedSchool
) -> None:
    pupils = adapter.pupils()
    assert len(pupils.records) == 5 and pupils.quarantined == []
    assert {p.id: p for p in pupils.records} == expected_pupils(school)

    marks = adapter.marks(FIRST_DAY, LAST_DAY)
    assert marks.quarantined == []
    assert len(marks.records) == len(school.marks) == 89
    assert mark_view(marks.records) == mark_view(school.marks)
    assert (UNMARKED[0], UNMARKED[1], UNMARKED[2]) not in {
        (m.pupil_id.split(":")[1], m.date, m.session) for m in marks.records
    }
    late = next(m for m in marks.records if m.code == "L")
    assert (late.minutes_late, late.comment, late.vendor_code) == (12, "missed the bus", "L")
    assert all(
        m.source_ref and m.source_ref.startswith("RegistrationStatus ") for m in marks.records
    )

    assert adapter.exposes_amendments is True
    amendments = adapter.amendments(FIRST_DAY, LAST_DAY)
    assert amendments.quarantined == []
    assert _amendment_view(amendments.records) == _amendment_view(school.amendments)

    calendar = adapter.calendar()
    assert calendar is not None and calendar.school_id == SCHOOL_ID
    assert calendar.terms == school.calendar.terms
    assert adapter.registers(FIRST_DAY, LAST_DAY).records == []


def test_marks_and_amendments_keep_the_instants(
    adapter: IsamsAdapter, school: GeneratedSchool
) -> None:
    marks = adapter.marks(FIRST_DAY, LAST_DAY).records
    timed = [m for m in marks if m.recorded_at is not None]
    assert 0 < len(timed) < len(marks)
    first = min(timed, key=lambda m: (m.date, m.session.value, m.pupil_id))
    assert first.recorded_at == datetime(2024, 9, 9, 7, 52, tzinfo=UTC)  # 08:52 BST
    (complete,) = [a for a in adapter.amendments(FIRST_DAY, LAST_DAY).records if a.reason]
    assert complete.amended_at == datetime(2024, 9, 10, 10, 5, tzinfo=UTC)


def test_duplicate_rows_are_served_and_collapsed(
    app: IsamsApp, adapter: IsamsAdapter, school: GeneratedSchool
) -> None:
    document = _raw_batch(app, adapter)
    rows = document.findall("RegistrationManager/RegistrationStatuses/RegistrationStatus")
    keys = [(r.findtext("PupilId"), r.findtext("RegistrationDateTime")) for r in rows]
    assert len(keys) > len(set(keys))  # the simulator repeats rows on purpose
    unregistered = [r for r in rows if r.findtext("Registered") == "0"]
    assert [(r.findtext("PupilId"), r.findtext("RegistrationDateTime")) for r in unregistered] == [
        (UNMARKED[0], "2024-09-20T13:15:00")
    ]
    assert mark_view(adapter.marks(FIRST_DAY, LAST_DAY).records) == mark_view(school.marks)


def test_api_key_only_reads_current_pupils_from_batch(
    server: SimulatorServer, school: GeneratedSchool
) -> None:
    adapter = make_adapter(server.url, api_key="simulator-key")
    pupils = adapter.pupils()
    assert {p.id: p for p in pupils.records} == expected_pupils(
        school, BATCH_PUPIL_FIELDS, current_only=True
    )
    assert len(pupils.records) == 4  # the leaver is only listed by REST
    assert mark_view(adapter.marks(FIRST_DAY, LAST_DAY).records) == mark_view(school.marks)
    assert adapter.client.tokens_fetched == 0


def test_client_credentials_only_read_batch_over_oauth(
    server: SimulatorServer, school: GeneratedSchool
) -> None:
    adapter = make_adapter(server.url, client_id="registerwatch", client_secret="simulator")
    assert_reproduces(adapter, school)
    assert adapter.client.tokens_fetched == 1


def test_a_window_longer_than_a_month_is_split(
    adapter: IsamsAdapter, app: IsamsApp, school: GeneratedSchool
) -> None:
    marks = adapter.marks(date(2024, 8, 1), date(2024, 10, 31))
    assert marks.requests == 3
    assert mark_view(marks.records) == mark_view(school.marks)


def test_a_custom_cutoff_changes_nothing_when_registers_sit_either_side(
    server: SimulatorServer, school: GeneratedSchool
) -> None:
    adapter = IsamsAdapter(
        school_id=SCHOOL_ID,
        base_url=server.url,
        credentials={"api_key": "simulator-key"},
        retry=FAST_RETRY,
        sleep=lambda _s: None,
        pm_cutoff=datetime(2000, 1, 1, 13, 0).time(),
    )
    assert mark_view(adapter.marks(FIRST_DAY, LAST_DAY).records) == mark_view(school.marks)
    late_cutoff = IsamsAdapter(
        school_id=SCHOOL_ID,
        base_url=server.url,
        credentials={"api_key": "simulator-key"},
        retry=FAST_RETRY,
        sleep=lambda _s: None,
        pm_cutoff=datetime(2000, 1, 1, 13, 30).time(),
    )
    # 13:15 registers now fall in the morning: the morning's first period (08:45) wins.
    marks = late_cutoff.marks(FIRST_DAY, LAST_DAY).records
    assert {m.session for m in marks} == {Session.AM}


def test_edits_are_recorded_in_the_audit_and_seen_on_the_next_pull(
    app: IsamsApp, adapter: IsamsAdapter, school: GeneratedSchool
) -> None:
    pupil = school.pupils[2].id
    app.set_mark(pupil, date(2024, 9, 12), Session.AM, "M")  # was L
    assert app.delete_mark(pupil, date(2024, 9, 13), Session.PM)
    marks = mark_view(adapter.marks(FIRST_DAY, LAST_DAY).records)
    assert marks[(pupil, date(2024, 9, 12), Session.AM)][3] == "M"
    assert (pupil, date(2024, 9, 13), Session.PM) not in marks
    edits = [
        (a.date, a.session, a.original_code, a.amended_code, a.reason, a.amended_by_name)
        for a in adapter.amendments(FIRST_DAY, LAST_DAY).records
        if a.pupil_id == pupil
    ]
    assert sorted(edits) == [
        (date(2024, 9, 12), Session.AM, "L", "M", None, "Simulator"),
        (date(2024, 9, 13), Session.PM, "\\", None, None, "Simulator"),
    ]


def test_logs_carry_counts_never_pupil_data(
    app: IsamsApp, adapter: IsamsAdapter, school: GeneratedSchool
) -> None:
    app.faults.arm(FaultKind.MALFORMED, path=BATCH_PATH)
    app.faults.arm(FaultKind.SERVER_ERROR, path="/api/students")
    with capture_logs() as logs:
        adapter.pupils()
        adapter.marks(FIRST_DAY, LAST_DAY)
    events = {entry["event"] for entry in logs}
    assert {
        "adapter.token_fetched",
        "adapter.request_retried",
        "adapter.resource_fetched",
    } <= events
    fetched = [e for e in logs if e["event"] == "adapter.resource_fetched"]
    assert [(e["resource"], e["records"], e["quarantined"]) for e in fetched] == [
        ("students", 5, 0),
        ("RegistrationStatus", 86, 3),
    ]
    text = repr(logs)
    for pupil in school.pupils:
        for value in (pupil.mis_id, pupil.upn, pupil.legal_forename, pupil.legal_surname):
            if value:
                assert value not in text


def test_an_empty_window_in_term_is_logged(adapter: IsamsAdapter) -> None:
    with capture_logs() as logs:
        marks = adapter.marks(date(2024, 10, 28), date(2024, 11, 1))  # half term
    assert list(marks.records) == []
    assert [e for e in logs if e["event"] == "adapter.window_without_rows"] == [
        {
            "event": "adapter.window_without_rows",
            "log_level": "warning",
            "vendor": "isams",
            "school": SCHOOL_ID,
            "start": "2024-10-28",
            "end": "2024-11-01",
        }
    ]


# -- generic faults ---------------------------------------------------------------------------


_GENERIC = (
    FaultKind.RATE_LIMIT,
    FaultKind.SERVER_ERROR,
    FaultKind.BAD_GATEWAY,
    FaultKind.UNAVAILABLE,
    FaultKind.HTML_MAINTENANCE,
)


@pytest.mark.parametrize(
    ("kind", "path"),
    [
        *(
            (kind, path)
            for kind in _GENERIC
            for path in ("/api/students", BATCH_PATH, "/auth/connect/token")
        ),
        (FaultKind.DEADLOCK, BATCH_PATH),  # deadlock bodies come from the Batch API
    ],
)
def test_transient_faults_are_retried_and_the_school_still_arrives(
    app: IsamsApp, adapter: IsamsAdapter, school: GeneratedSchool, kind: FaultKind, path: str
) -> None:
    app.faults.arm(kind, times=2, path=path, retry_after=0)
    assert_reproduces(adapter, school)
    assert app.faults.fired[kind.value] == 2


def test_a_slow_answer_times_out_and_is_retried(
    app: IsamsApp, server: SimulatorServer, school: GeneratedSchool
) -> None:
    app.faults.arm(FaultKind.SLOW, times=1, path=BATCH_PATH, delay=0.6)
    adapter = IsamsAdapter(
        school_id=SCHOOL_ID,
        base_url=server.url,
        credentials={"api_key": "simulator-key"},
        timeout=(1.0, 0.3),
        retry=FAST_RETRY,
        sleep=lambda _s: None,
    )
    assert mark_view(adapter.marks(FIRST_DAY, LAST_DAY).records) == mark_view(school.marks)
    assert app.faults.fired["slow"] == 1


def test_a_deadlock_that_persists_is_reported_as_retriable(
    app: IsamsApp, adapter: IsamsAdapter
) -> None:
    app.faults.arm(FaultKind.DEADLOCK, times=None, path=BATCH_PATH)
    with pytest.raises(RetriableApiError, match=r"database lock.*gave up after 4 attempts"):
        adapter.marks(FIRST_DAY, LAST_DAY)


def test_the_deadlock_body_has_the_recorded_shape(app: IsamsApp, server: SimulatorServer) -> None:
    app.faults.arm(FaultKind.DEADLOCK, path=BATCH_PATH)
    answer = requests.post(f"{server.url}{BATCH_PATH}?apiKey=simulator-key", timeout=5)
    assert answer.status_code == 500
    assert answer.content.startswith(
        b'<?xml version="1.0" encoding="utf-16"?>\n<Message>\n'
        b"  <MessageId>UnhandledException</MessageId>"
    )
    message = parse_message(answer.content)
    assert message is not None and message.description.endswith("Rerun the transaction.")


# -- vendor faults ----------------------------------------------------------------------------


def test_empty_permission_on_pupils_is_reported_then_clears(
    app: IsamsApp, adapter: IsamsAdapter, school: GeneratedSchool
) -> None:
    app.faults.arm(FaultKind.EMPTY_PERMISSION, path="/api/students")
    with pytest.raises(PermissionGapError) as caught:
        adapter.pupils()
    assert "returned no pupils from /api/students" in str(caught.value)
    assert "OAKFIELD_ISAMS_API_KEY" in str(caught.value)
    assert_reproduces(adapter, school)


def test_empty_permission_on_batch_names_the_missing_section(
    app: IsamsApp, adapter: IsamsAdapter, school: GeneratedSchool
) -> None:
    app.faults.arm(FaultKind.EMPTY_PERMISSION, path=BATCH_PATH)
    with pytest.raises(
        PermissionGapError,
        match="without <RegistrationManager/PresentCodes> for Registration_GetPresentCodes",
    ):
        adapter.marks(FIRST_DAY, LAST_DAY)
    assert_reproduces(adapter, school)


def test_empty_permission_on_batch_pupils(app: IsamsApp, server: SimulatorServer) -> None:
    app.faults.arm(FaultKind.EMPTY_PERMISSION, path=BATCH_PATH)
    adapter = make_adapter(server.url, api_key="simulator-key")
    with pytest.raises(PermissionGapError, match="PupilManager/CurrentPupils"):
        adapter.pupils()


def test_stale_cache_serves_the_answer_from_before_a_change(
    app: IsamsApp, adapter: IsamsAdapter, school: GeneratedSchool
) -> None:
    before = mark_view(adapter.marks(FIRST_DAY, LAST_DAY).records)
    pupil_id = school.pupils[0].id
    app.set_mark(pupil_id, date(2024, 9, 11), Session.AM, "M")
    app.faults.arm(FaultKind.STALE_CACHE, path=BATCH_PATH)
    stale = mark_view(adapter.marks(FIRST_DAY, LAST_DAY).records)
    assert stale == before
    assert stale[(pupil_id, date(2024, 9, 11), Session.AM)][3] == "/"
    fresh = mark_view(adapter.marks(FIRST_DAY, LAST_DAY).records)
    assert fresh == mark_view(school.marks)
    assert fresh[(pupil_id, date(2024, 9, 11), Session.AM)][3] == "M"


def test_the_24_hour_cache_hides_changes_until_it_expires(school: GeneratedSchool) -> None:
    clock = _Clock()
    app = IsamsApp(school, cache_seconds=86_400, clock=clock)
    with serve(app) as server:
        adapter = make_adapter(server.url, api_key="simulator-key")
        adapter.marks(FIRST_DAY, LAST_DAY)
        app.set_mark(school.pupils[0].id, date(2024, 9, 11), Session.AM, "M")
        clock.now += 86_399
        cached = mark_view(adapter.marks(FIRST_DAY, LAST_DAY).records)
        assert cached[(school.pupils[0].id, date(2024, 9, 11), Session.AM)][3] == "/"
        clock.now += 2
        assert mark_view(adapter.marks(FIRST_DAY, LAST_DAY).records) == mark_view(school.marks)


def test_changing_pages_are_detected_and_repulled(
    app: IsamsApp, adapter: IsamsAdapter, school: GeneratedSchool
) -> None:
    adapter.rest_page_size = 2
    app.faults.arm(FaultKind.CHANGING_PAGES, path="/api/students")
    pupils = adapter.pupils()
    assert app.faults.fired["changing"] == 1
    assert {p.id: p for p in pupils.records} == expected_pupils(school)
    assert app.requests["/api/students"] == 3 + 3  # a spoiled pull, then a clean one


def test_pages_that_never_settle_are_a_paging_error(app: IsamsApp, adapter: IsamsAdapter) -> None:
    adapter.rest_page_size = 2
    app.faults.arm(FaultKind.CHANGING_PAGES, times=None, path="/api/students")
    with pytest.raises(PagingError, match="kept changing while it was paged"):
        adapter.pupils()


def test_malformed_marks_are_quarantined_and_the_rest_arrive(
    app: IsamsApp, adapter: IsamsAdapter, school: GeneratedSchool
) -> None:
    app.faults.arm(FaultKind.MALFORMED, path=BATCH_PATH)
    marks = adapter.marks(FIRST_DAY, LAST_DAY)
    broken = [c for c in app.corrupted if c.resource == "RegistrationStatus"]
    assert [c.field for c in broken] == ["RegistrationDateTime", "Code", "PupilId"]
    assert [(q.resource, q.record_ref, q.field) for q in marks.quarantined] == [
        (c.resource, c.record_ref, c.field) for c in broken
    ]
    assert [q.reason for q in marks.quarantined] == [
        f"{_bad_date(app, broken[0].record_ref)!r} is not a valid date-time",
        "unknown attendance code 'QQ'",
        "required field 'PupilId' is missing",
    ]
    lost = {c.truth for c in broken}
    expected = {k: v for k, v in mark_view(school.marks).items() if k not in lost}
    assert mark_view(marks.records) == expected
    assert len(marks.records) == len(school.marks) - 3
    # The fault was one answer: the next pull is whole again.
    assert mark_view(adapter.marks(FIRST_DAY, LAST_DAY).records) == mark_view(school.marks)


def test_malformed_students_are_quarantined_and_the_rest_arrive(
    app: IsamsApp, adapter: IsamsAdapter, school: GeneratedSchool
) -> None:
    app.faults.arm(FaultKind.MALFORMED, path="/api/students")
    pupils = adapter.pupils()
    assert [(q.field, q.reason.split(" is ")[-1]) for q in pupils.quarantined] == [
        ("dob", "not a valid date"),
        ("schoolId", "missing"),
    ]
    lost = {c.truth for c in app.corrupted}
    assert {p.id: p for p in pupils.records} == {
        k: v for k, v in expected_pupils(school).items() if k not in lost
    }
    assert len(pupils.records) == 3


def test_malformed_batch_pupils_and_amendments(
    app: IsamsApp, server: SimulatorServer, school: GeneratedSchool
) -> None:
    adapter = make_adapter(server.url, api_key="simulator-key")
    app.faults.arm(FaultKind.MALFORMED, path=BATCH_PATH)
    pupils = adapter.pupils()
    assert [(q.record_ref, q.field) for q in pupils.quarantined] == [
        (app.corrupted[0].record_ref, "DOB"),
        ("CurrentPupils at Pupil[2]", "SchoolId"),
    ]
    assert len(pupils.records) == 2
    app.faults.arm(FaultKind.MALFORMED, path=BATCH_PATH)
    amendments = adapter.amendments(FIRST_DAY, LAST_DAY)
    assert [(q.field, q.reason) for q in amendments.quarantined] == [
        ("AmendedCode", "unknown attendance code 'QQ'")
    ]
    assert len(amendments.records) == len(school.amendments) - 1


def test_expiring_tokens_are_refreshed(
    app: IsamsApp, adapter: IsamsAdapter, school: GeneratedSchool
) -> None:
    adapter.rest_page_size = 2  # three pages: every page after the first meets a used token
    app.faults.arm(FaultKind.EXPIRING_TOKENS, times=None)
    pupils = adapter.pupils()
    assert {p.id: p for p in pupils.records} == expected_pupils(school)
    assert adapter.client.tokens_fetched == 3
    assert app.faults.fired["expiring_tokens"] == 2


def test_expiring_tokens_on_batch_over_oauth(
    app: IsamsApp, server: SimulatorServer, school: GeneratedSchool
) -> None:
    adapter = make_adapter(server.url, client_id="registerwatch", client_secret="simulator")
    app.faults.arm(FaultKind.EXPIRING_TOKENS, times=None)
    assert_reproduces(adapter, school)
    assert adapter.client.tokens_fetched >= 2


def test_tokens_expire_after_their_lifetime(school: GeneratedSchool) -> None:
    clock = _Clock()
    app = IsamsApp(school, token_lifetime=600, clock=clock)
    with serve(app) as server:
        adapter = make_adapter(server.url)
        adapter.client.clock = clock  # one clock for both sides
        adapter.pupils()
        clock.now += 601
        assert len(adapter.pupils().records) == 5
        assert adapter.client.tokens_fetched == 2


def test_per_key_throttling_is_waited_out(school: GeneratedSchool) -> None:
    clock = _Clock()
    app = IsamsApp(school, throttle_limit=1, throttle_window=5.0, clock=clock)
    waited: list[float] = []

    def sleep(seconds: float) -> None:
        waited.append(seconds)
        clock.now += seconds

    with serve(app) as server:
        adapter = IsamsAdapter(
            school_id=SCHOOL_ID,
            base_url=server.url,
            credentials={"api_key": "simulator-key"},
            retry=FAST_RETRY,
            sleep=sleep,
        )
        adapter.marks(FIRST_DAY, LAST_DAY)
        marks = adapter.marks(FIRST_DAY, LAST_DAY)
    assert mark_view(marks.records) == mark_view(school.marks)
    assert waited == [5.0]


# -- Batch errors from the simulator ----------------------------------------------------------


def test_a_wrong_api_key_is_fatal_and_names_the_credential(server: SimulatorServer) -> None:
    adapter = make_adapter(server.url, api_key="wrong")
    with pytest.raises(FatalApiError, match=r"rejected the API key.*OAKFIELD_ISAMS_API_KEY"):
        adapter.marks(FIRST_DAY, LAST_DAY)


def test_wrong_client_credentials_are_fatal(server: SimulatorServer) -> None:
    adapter = make_adapter(server.url, client_id="registerwatch", client_secret="nope")
    with pytest.raises(FatalApiError, match="refused the client credentials"):
        adapter.pupils()


def test_amendments_not_served_means_not_exposed(school: GeneratedSchool) -> None:
    with serve(IsamsApp(school, serve_amendments=False)) as server:
        adapter = make_adapter(server.url, api_key="simulator-key")
        assert adapter.exposes_amendments is False
        assert adapter.amendments(FIRST_DAY, LAST_DAY) == Batch()
        assert mark_view(adapter.marks(FIRST_DAY, LAST_DAY).records) == mark_view(school.marks)


@pytest.mark.parametrize(
    ("query", "body", "status", "message_id", "description"),
    [
        ("", b"", 400, "MissingParameter", 'A required field "apiKey" was not supplied'),
        ("?apiKey=nope", b"", 401, "InvalidApiKey", "The API key is invalid."),
        (
            "?apiKey=simulator-key",
            b"not xml",
            500,
            "UnhandledException",
            "Data at the root level is invalid. Line 1, position 1.",
        ),
        (
            "?apiKey=simulator-key",
            b"<Filters><MethodsToRun><Method>Registration_GetRegistrationStatus</Method>"
            b"</MethodsToRun></Filters>",
            400,
            "FiltersRequiredException",
            'Method "Registration - GetRegistrationStatus" requires at least one filter.',
        ),
        (
            "?apiKey=simulator-key",
            b"<Filters><MethodsToRun><Method>SchoolReports_GetRecords</Method></MethodsToRun>"
            b"</Filters>",
            403,
            "MethodsNotAllocatedToKeyException",
            "not allocated to the requested key: schoolreports_getrecords",
        ),
    ],
)
def test_batch_errors_have_the_recorded_shape(
    server: SimulatorServer, query: str, body: bytes, status: int, message_id: str, description: str
) -> None:
    answer = requests.post(f"{server.url}{BATCH_PATH}{query}", data=body, timeout=5)
    assert answer.status_code == status
    assert answer.content.startswith(b'<?xml version="1.0" encoding="utf-16"?>')
    message = parse_message(answer.content)
    assert message is not None
    assert message.message_id == message_id
    assert description in message.description


def test_the_filter_variants_seen_in_the_wild_are_accepted(server: SimulatorServer) -> None:
    for body in (
        b"<Filters><MethodsToRun><Method>Registration_GetRegistrationStatus</Method>"
        b'</MethodsToRun><RegistrationManager><RegistrationStatus startDate="2024-09-09" '
        b'endDate="2024-09-09"/></RegistrationManager></Filters>',
        b"<Filters><MethodsToRun><Method>registration_getregistrationstatus</Method>"
        b'</MethodsToRun><RegistrationStatuses><RegistrationStatus StartDate="2024-09-09" '
        b'EndDate="2024-09-09"/></RegistrationStatuses></Filters>',
    ):
        answer = requests.post(
            f"{server.url}{BATCH_PATH}?apiKey=simulator-key", data=body, timeout=5
        )
        assert answer.status_code == 200, answer.text
        rows = etree.fromstring(answer.content).findall(
            "RegistrationManager/RegistrationStatuses/RegistrationStatus"
        )
        assert {r.findtext("RegistrationDateTime")[:10] for r in rows} == {"2024-09-09"}


def test_methods_not_allocated_through_the_adapter(app: IsamsApp, adapter: IsamsAdapter) -> None:
    app.allocated_methods.discard("Registration_GetPresentCodes")
    with pytest.raises(MethodsNotAllocatedError) as caught:
        adapter.marks(FIRST_DAY, LAST_DAY)
    assert caught.value.methods == ["registration_getpresentcodes"]
    assert "OAKFIELD_ISAMS_API_KEY" in str(caught.value)


def test_a_page_beyond_total_pages_is_empty(server: SimulatorServer) -> None:
    token = requests.post(
        f"{server.url}/auth/connect/token",
        timeout=5,
        data={
            "grant_type": "client_credentials",
            "client_id": "registerwatch",
            "client_secret": "simulator",
        },
    ).json()["access_token"]
    answer = requests.get(
        f"{server.url}/api/students",
        params={"page": 9, "pageSize": 2},
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    ).json()
    assert answer == {"students": [], "page": 9, "totalPages": 3, "totalCount": 5}


# -- a generated school, when the generator is there ------------------------------------------


def test_a_generated_school_is_reproduced() -> None:
    try:
        generate = importlib.import_module("registerwatch.simulator.generate")
    except ImportError:
        pytest.skip("registerwatch.simulator.generate is not there yet")
    if not hasattr(generate, "generate_school"):
        pytest.skip("generate_school is not there yet")
    size = getattr(generate, "MIN_PUPILS_FOR_BREACHES", 80)  # the smallest school it makes
    school: GeneratedSchool = generate.generate_school(seed=7, pupils=size, vendor="isams")
    marks = school.marks
    start, end = min(m.date for m in marks), max(m.date for m in marks)
    with serve(IsamsApp(school)) as server:
        adapter = IsamsAdapter(
            school_id=school.school.id,
            base_url=server.url,
            credentials={
                "client_id": "registerwatch",
                "client_secret": "simulator",
                "api_key": "simulator-key",
            },
            retry=FAST_RETRY,
            sleep=lambda _s: None,
        )
        pupils = adapter.pupils()
        fetched = adapter.marks(start, end)
        amendments = adapter.amendments(start, end)
    assert pupils.quarantined == [] and fetched.quarantined == []
    assert {p.id: p for p in pupils.records} == expected_pupils(school)
    # iSAMS has one "Present" code: the national symbol comes from the session.
    truth = [
        m.model_copy(update={"code": "/" if m.session is Session.AM else "\\"})
        if m.code in ("/", "\\")
        else m
        for m in marks
    ]
    assert mark_view(fetched.records) == mark_view(truth)
    assert amendments.quarantined == []
    assert _amendment_view(amendments.records) == _amendment_view(school.amendments)
    assert len(amendments.records) == len(school.amendments) > 0


# -- helpers ----------------------------------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _amendment_view(amendments: list[Any]) -> list[Any]:
    """Amendments without their source_ref (the MIS's own id), in a stable order."""
    return sorted(
        (a.model_copy(update={"source_ref": None}) for a in amendments),
        key=lambda a: (
            a.pupil_id,
            a.date,
            a.session.value,
            a.amended_at.timestamp() if a.amended_at else 0.0,
        ),
    )


def _raw_batch(app: IsamsApp, adapter: IsamsAdapter) -> etree._Element:
    return adapter.client.batch(
        ["Registration_GetRegistrationStatus"], {"RegistrationStatus": (FIRST_DAY, LAST_DAY)}
    )


def _bad_date(app: IsamsApp, record_ref: str) -> str:
    ident = record_ref.split()[-1]
    for key, value in app._row_ids.items():
        if str(value) == ident:
            day: date = key[1]
            session = key[2]
            clock = "08:45:00" if session == "AM" else "13:15:00"
            return f"{day.year}-02-30T{clock}"
    raise AssertionError(record_ref)


def test_fixture_school_is_what_the_tests_assume() -> None:
    school = build_school()
    assert len(school.pupils) == 5
    assert len({m.pupil_id for m in school.marks}) == 5
    assert RetryPolicy().max_attempts > FAST_RETRY.max_attempts
