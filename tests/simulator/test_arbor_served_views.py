"""The Arbor simulator renders each listing page once and reuses it: what it serves must still
follow every change (a mark saved, a mark edited straight into the school's list before the
first request, a resource list grown by a test), byte for byte as if rendered afresh."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from registerwatch.schema import Session
from registerwatch.simulator.arbor import ArborApp
from registerwatch.simulator.arbor.protocol import AMENDMENTS
from registerwatch.simulator.generate import generate_school
from registerwatch.simulator.model import GeneratedSchool
from registerwatch.simulator.server import FaultKind, Request, Response

AUTH = {"authorization": "Basic cmVnaXN0ZXJ3YXRjaDpzaW11bGF0b3I="}  # registerwatch:simulator


@pytest.fixture
def school() -> GeneratedSchool:
    return generate_school(
        seed=3, pupils=12, vendor="arbor", as_of=date(2025, 10, 1), inject_breaches=False
    )


def get(app: ArborApp, path: str, **query: str) -> Response:
    request = Request(
        method="GET",
        path=f"/rest-v2/{path}",
        query={k.replace("_", "-"): [v] for k, v in query.items()},
        headers=AUTH,
        body=b"",
    )
    return app.handle(request)


def listing(app: ArborApp, path: str, **query: str) -> Any:
    response = get(app, path, **query)
    assert response.status == 200
    return json.loads(response.body)


def record_for(app: ArborApp, pupil_id: str, day: date, session: Session) -> dict[str, Any]:
    ident = app.record_id(pupil_id, day, session)
    (record,) = [
        r
        for r in listing(app, "attendance-records", page_size="1000")["attendanceRecords"]
        if r["href"] == f"/rest-v2/attendance-records/{ident}"
    ]
    return record


def test_a_saved_mark_is_served_on_the_next_read_of_a_page_read_before(
    school: GeneratedSchool,
) -> None:
    app = ArborApp(school)
    mark = school.marks[0]
    before = record_for(app, mark.pupil_id, mark.date, mark.session)
    new_code = "I" if mark.code != "I" else "M"
    app.set_mark(mark.pupil_id, mark.date, mark.session, new_code)
    after = record_for(app, mark.pupil_id, mark.date, mark.session)
    assert before["attendanceMark"]["href"] != after["attendanceMark"]["href"]
    assert after["attendanceMark"]["href"].endswith(
        {"I": "/ILLNESS", "M": "/MEDICAL_APPOINTMENT"}[new_code]
    )
    assert after["revisionId"] == before["revisionId"] + 1
    # The stale snapshot still serves the mark as the app started with it.
    app.faults.arm(FaultKind.STALE_CACHE, path="attendance-records")
    stale = listing(app, "attendance-records", page_size="1000")["attendanceRecords"]
    assert before in stale and after not in stale


def test_a_mark_edited_into_the_list_before_any_request_is_not_served_from_the_snapshot(
    school: GeneratedSchool,
) -> None:
    app = ArborApp(school)
    app.faults.arm(FaultKind.STALE_CACHE, path="attendance-records")
    snapshot = listing(app, "attendance-records", page_size="1000")["attendanceRecords"]
    index, mark = next((n, m) for n, m in enumerate(school.marks) if m.code == "/")
    school.marks[index] = mark.model_copy(update={"code": "M", "vendor_code": "M"})
    current = listing(app, "attendance-records", page_size="1000")["attendanceRecords"]
    ident = f"/rest-v2/attendance-records/{app.record_id(mark.pupil_id, mark.date, mark.session)}"
    marks_of = {
        name: {r["href"]: r["attendanceMark"]["href"] for r in rows}
        for name, rows in (("snapshot", snapshot), ("current", current))
    }
    assert marks_of["snapshot"][ident] == "/rest-v2/attendance-marks/PRESENT"
    assert marks_of["current"][ident] == "/rest-v2/attendance-marks/MEDICAL_APPOINTMENT"


def test_pages_and_items_follow_a_resource_list_that_grew(school: GeneratedSchool) -> None:
    app = ArborApp(school)
    served = app._static[AMENDMENTS]
    first = listing(app, AMENDMENTS, page_size="1000")["attendanceRecordAmendments"]
    assert first == json.loads(json.dumps(served))
    extra = {**served[0], "href": f"/rest-v2/{AMENDMENTS}/{len(served) + 1}", "reason": "Late"}
    served.append(extra)
    again = listing(app, AMENDMENTS, page_size="1000")["attendanceRecordAmendments"]
    assert again[-1] == extra and len(again) == len(first) + 1
    item = json.loads(get(app, f"{AMENDMENTS}/{len(served)}").body)
    assert item == {"attendanceRecordAmendment": extra}


def test_the_changelog_from_a_revision_serves_only_later_changes(
    school: GeneratedSchool,
) -> None:
    app = ArborApp(school)
    everything = listing(app, "attendance-records/changelog", page_size="1000")["changes"]
    assert len(everything) == len(school.marks)
    assert {c["toRevision"] for c in everything} == {1}
    assert listing(app, "attendance-records/changelog", from_revision="1")["changes"] == []
    mark = school.marks[1]
    app.set_mark(mark.pupil_id, mark.date, mark.session, "I" if mark.code != "I" else "M")
    (change,) = listing(app, "attendance-records/changelog", from_revision="1")["changes"]
    assert change["changeType"] == "update" and change["toRevision"] == 2
    full = listing(app, "attendance-records/changelog", page_size="1000")["changes"]
    assert full[:-1] == everything and full[-1] == change
