"""The GO 4 Schools simulator's rendered pages: a day's session-mark pages are split and
encoded once and served as bytes, and what it serves is what rendering each request anew
serves (for every cursor, page size, fault and edit)."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from registerwatch.schema import Session
from registerwatch.simulator.generate import generate_school
from registerwatch.simulator.go4schools import Go4SchoolsApp
from registerwatch.simulator.model import GeneratedSchool
from registerwatch.simulator.server import FaultKind, Request, Response

AS_OF = date(2025, 10, 1)
HEADERS = {"authorization": "Bearer simulator-key"}


@pytest.fixture(scope="module")
def school() -> GeneratedSchool:
    return generate_school(
        seed=11, pupils=45, vendor="go4schools", as_of=AS_OF, inject_breaches=False
    )


def marks_path(day: date) -> str:
    return f"/customer/v1/academic-years/2026/attendance/student-session-marks/date/{day}"


def get(app: Go4SchoolsApp, day: date, cursor: int | None = None) -> Response:
    query = {"cursor": [str(cursor)]} if cursor is not None else {}
    return app.handle(Request("GET", marks_path(day), query, HEADERS, b""))


def body_of(response: Response) -> bytes:
    return response.body.encode() if isinstance(response.body, str) else response.body


def rendered_anew(app: Go4SchoolsApp, day: date, cursor: int | None) -> bytes:
    """The page as the general path renders it (no reuse)."""
    request = Request("GET", marks_path(day), {}, HEADERS, b"")
    rows = app._session_marks(app.school.marks, day)
    response = app._paged(
        request, "studentSessionMarks", "session-marks", rows, cursor, "student_id"
    )
    return body_of(response)


def walk(app: Go4SchoolsApp, day: date) -> list[dict[str, Any]]:
    cursor, pages = None, []
    while True:
        page = json.loads(body_of(get(app, day, cursor)))
        pages.append(page)
        if not page["has_more"]:
            return pages
        cursor = page["cursor"]


def school_days(school: GeneratedSchool) -> list[date]:
    return sorted({m.date for m in school.marks})


@pytest.mark.parametrize("page_size", [1, 7, 20, 100])
def test_every_page_and_cursor_is_served_as_rendering_it_anew(
    school: GeneratedSchool, page_size: int
) -> None:
    app = Go4SchoolsApp(school, page_size=page_size)
    for day in school_days(school)[:3]:
        student_ids = sorted({r["student_id"] for r in app._session_marks(school.marks, day)})
        # the page boundaries (served from the rendered pages) and every cursor between them
        for cursor in [None, 0, *student_ids, student_ids[-1] + 5]:
            assert body_of(get(app, day, cursor)) == rendered_anew(app, day, cursor)
            assert body_of(get(app, day, cursor)) == rendered_anew(app, day, cursor)  # reused
        pages = walk(app, day)
        assert sum(len(p["studentSessionMarks"]) for p in pages) == 2 * len(student_ids)
        assert len(pages) == -(-len(student_ids) // page_size)


def test_a_changed_page_size_is_served_at_the_new_size(school: GeneratedSchool) -> None:
    app = Go4SchoolsApp(school, page_size=10)
    day = school_days(school)[0]
    rows = len(app._session_marks(school.marks, day))
    assert 60 < rows <= 90  # so that 30 students a page makes two pages
    assert len(walk(app, day)) == -(-rows // 20)
    app.page_size = 30
    assert [len(p["studentSessionMarks"]) for p in walk(app, day)] == [60, rows - 60]


def test_malformed_spoils_a_reused_page_once(school: GeneratedSchool) -> None:
    app = Go4SchoolsApp(school, page_size=20)
    day = school_days(school)[1]
    clean = body_of(get(app, day))
    app.faults.arm(FaultKind.MALFORMED, 1)
    spoiled = json.loads(body_of(get(app, day)))["studentSessionMarks"]
    assert spoiled[0]["date"] == "2025-02-30T00:00:00" and "session" not in spoiled[2]
    assert [c.field for c in app.corrupted] == ["date", "session_mark_id", "session"]
    assert body_of(get(app, day)) == clean  # the rendered page itself was not touched


def test_broken_cursors_still_break_reused_pages(school: GeneratedSchool) -> None:
    app = Go4SchoolsApp(school, page_size=20)
    day = school_days(school)[2]
    first = json.loads(body_of(get(app, day)))
    app.set_broken_cursor("repeat")
    assert json.loads(body_of(get(app, day, first["cursor"]))) == first
    app.set_broken_cursor("missing")
    assert json.loads(body_of(get(app, day)))["cursor"] is None
    app.set_broken_cursor(None)
    assert json.loads(body_of(get(app, day, first["cursor"])))["studentSessionMarks"][0][
        "student_id"
    ] > int(first["cursor"])


def test_an_edit_is_served_on_the_next_request(school: GeneratedSchool) -> None:
    edited = generate_school(
        seed=11, pupils=45, vendor="go4schools", as_of=AS_OF, inject_breaches=False
    )
    app = Go4SchoolsApp(edited, page_size=100)
    mark = next(m for m in edited.marks if m.code == "/" and m.session is Session.AM)
    before = walk(app, mark.date)
    app.set_mark(mark.pupil_id, mark.date, Session.AM, "M")
    after = walk(app, mark.date)
    student = app.student_ids[mark.pupil_id]

    def mark_id_of(pages: list[dict[str, Any]]) -> int:
        (row,) = [
            r
            for p in pages
            for r in p["studentSessionMarks"]
            if r["student_id"] == student and r["session"] == "AM"
        ]
        return int(row["session_mark_id"])

    assert mark_id_of(before) == app.encode("/")[0]
    assert mark_id_of(after) == app.encode("M")[0]
    assert body_of(get(app, mark.date)) == rendered_anew(app, mark.date, None)
