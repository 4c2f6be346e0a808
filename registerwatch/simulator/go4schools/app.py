"""The GO 4 Schools simulator's HTTP face: bearer-key auth, routing by academic year and
date, cursor paging (and the broken-cursor switch), the stale snapshot and the faults."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from datetime import date
from typing import Any

from registerwatch.schema import Amendment, Mark, Pupil
from registerwatch.simulator.go4schools.data import Go4SchoolsData
from registerwatch.simulator.go4schools.protocol import (
    AMENDMENTS_PATH,
    CURSOR_MODES,
    DROP,
    MALFORMATIONS,
    PREFIX,
    Corruption,
    CursorMode,
    academic_year_of,
    changed_code,
    date_of,
    error_response,
)
from registerwatch.simulator.model import GeneratedSchool
from registerwatch.simulator.server import FaultInjector, FaultKind, Request, Response

# One served page: its rows, has_more, the next cursor and the rendered body.
_Page = tuple[list[dict[str, Any]], bool, int | None, bytes]


class Go4SchoolsApp(Go4SchoolsData):
    """GO 4 Schools "customer v1" over a ``GeneratedSchool`` (see the package docstring)."""

    vendor = "go4schools"
    records_edit_history = True

    def __init__(
        self,
        school: GeneratedSchool,
        faults: FaultInjector | None = None,
        *,
        serve_amendments: bool = True,
        api_key: str = "simulator-key",
        page_size: int = 100,
        broken_cursor: CursorMode | None = None,
    ) -> None:
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        super().__init__(school, faults, serve_amendments=serve_amendments)
        self.api_key = api_key
        self.page_size = page_size
        self.broken_cursor: CursorMode | None = None
        self.broken_cursor_path: str | None = None
        if broken_cursor is not None:
            self.set_broken_cursor(broken_cursor)
        self.corrupted: list[Corruption] = []
        # id(rows) -> (those rows, (collection key, page size), their pages): see _pages_of
        self._rendered: dict[
            int, tuple[list[dict[str, Any]], tuple[str, int], dict[int | None, _Page]]
        ] = {}
        self._snapshot: tuple[list[Pupil], list[Mark], list[Amendment]] = ([], [], [])
        self.refresh_cache()
        # The day's rows are what a real MIS has in its tables before anyone asks: build them
        # now rather than on the first sync's first request.
        self._marks_by_day(self.school.marks)

    # -- switches for tests --------------------------------------------------------------------

    def set_broken_cursor(self, mode: CursorMode | None, path: str | None = None) -> None:
        """Break paging on every paged response (whose path contains ``path``); None mends it."""
        if mode is not None and mode not in CURSOR_MODES:
            raise ValueError(f"broken_cursor must be one of {CURSOR_MODES}, not {mode!r}")
        self.broken_cursor = mode
        self.broken_cursor_path = path

    def refresh_cache(self) -> None:
        """Take the snapshot that STALE_CACHE serves (the vendor's cache filling up)."""
        with self.lock:
            self._snapshot = (
                list(self.school.pupils),
                list(self.school.marks),
                list(self.school.amendments),
            )

    # -- control endpoint for the broken cursor -------------------------------------------------

    def _control(self, request: Request) -> Response:
        if request.path != "/_sim/go4schools/cursor":
            return super()._control(request)
        if request.method == "DELETE":
            self.set_broken_cursor(None)
            return Response.json({"broken_cursor": None})
        payload = json.loads(request.body or b"{}")
        try:
            self.set_broken_cursor(payload.get("mode"), payload.get("path"))
        except ValueError as exc:
            return error_response(400, str(exc))
        return Response.json({"broken_cursor": self.broken_cursor})

    # -- routing --------------------------------------------------------------------------------

    _YEAR_ROUTE = re.compile(r"^/academic-years/(?P<year>[^/]+)/(?P<rest>.+?)/?$")
    _DATE_ROUTE = re.compile(r"^(?P<resource>attendance/[a-z-]+)/date/(?P<day>[^/]+)$")

    def route(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return error_response(401, "Unauthorised. Your API key is not valid for this request")
        self._assign_student_ids()
        if not request.path.startswith(PREFIX + "/"):
            return error_response(404, "Not found")
        if request.method != "GET":
            return error_response(405, "Method not allowed")
        path = request.path[len(PREFIX) :]
        if path.rstrip("/") == "/school":
            return self._school()
        match = self._YEAR_ROUTE.match(path)
        if match is None:
            return error_response(404, "Not found")
        try:
            year = int(match["year"])
        except ValueError:
            return error_response(400, "Invalid Academic Year")
        if year not in self.academic_years():
            return error_response(400, "Invalid Academic Year")
        rest = match["rest"]
        cursor_arg = request.arg("cursor")
        cursor: int | None = None
        if cursor_arg is not None:
            try:
                cursor = int(cursor_arg)
            except ValueError:
                return error_response(400, "Invalid Cursor")
            if cursor < 0:
                return error_response(
                    400, "Invalid Cursor"
                )  # OBSERVED: "The cursor is less than 0"
        stale = self.faults.take(FaultKind.STALE_CACHE, request.path) is not None
        pupils, marks, amendments = (
            self._snapshot
            if stale
            else (self.school.pupils, self.school.marks, self.school.amendments)
        )

        if rest == "students":
            return self._paged(
                request, "students", "students", self._students(pupils, year), cursor, "id"
            )
        if rest == "students/education-details":
            return self._paged(
                request,
                "students",
                "education-details",
                self._education_details(pupils, year),
                cursor,
                "student_id",
            )
        if rest == "attendance/codes":
            return self._paged(request, "attendanceCodes", "codes", self._codes(), cursor, "id")
        if rest == "timetables/calendar":
            return self._paged(request, "calendar", "calendar", self._calendar(year), cursor, None)
        dated = self._DATE_ROUTE.match(rest)
        if dated is not None:
            resource = dated["resource"]
            try:
                day = date.fromisoformat(dated["day"])
            except ValueError:
                return error_response(400, "Invalid date.")
            if academic_year_of(day) != year:
                return error_response(400, "Invalid date.")
            if resource == "attendance/student-session-marks":
                if cursor is not None and self.faults.take(FaultKind.CHANGING_PAGES, request.path):
                    self._change_between_pages(day, cursor)
                    marks = self.school.marks
                return self._paged(
                    request,
                    "studentSessionMarks",
                    "session-marks",
                    self._session_marks(marks, day),
                    cursor,
                    "student_id",
                    reuse=True,
                )
            if resource == AMENDMENTS_PATH and self.serve_amendments:
                return self._paged(
                    request,
                    "studentSessionMarkAmendments",
                    "amendments",
                    self._amendments(amendments, day),
                    cursor,
                    "id",
                )
        return error_response(404, "Not found")

    # -- paging and the faults that shape a page ------------------------------------------------

    def _paged(
        self,
        request: Request,
        key: str,
        resource: str,
        rows: list[dict[str, Any]],
        cursor: int | None,
        id_field: str | None,
        *,
        reuse: bool = False,
    ) -> Response:
        """One page of ``rows`` after ``cursor``. ``reuse``: ``rows`` is a list the data layer
        keeps and never changes (a day's session marks), so its pages are split and rendered
        once and served as bytes until the list is replaced (see ``_pages_of``)."""
        if self.faults.take(FaultKind.EMPTY_PERMISSION, request.path) is not None:
            return Response.json({key: [], "has_more": False, "cursor": None})
        broken = (
            self.broken_cursor
            if (self.broken_cursor_path is None or self.broken_cursor_path in request.path)
            else None
        )
        if reuse and broken is None and rows:
            served = self._pages_of(key, rows, id_field).get(cursor)
            if served is not None:  # else a cursor inside a page: the general path below
                if self.faults.take(FaultKind.MALFORMED, request.path) is not None:
                    spoiled = self._spoil(resource, _public(served[0], id_field))
                    return Response.json({key: spoiled, "has_more": served[1], "cursor": served[2]})
                return Response(body=served[3])
        key_of = _key_of(id_field)
        rows = sorted(rows, key=key_of)
        if broken == "repeat":
            cursor = None  # ignore where the client is: always answer with the first page
        remaining = [r for r in rows if cursor is None or key_of(r) > cursor]
        page = _first_page(remaining, key_of, self.page_size)
        has_more = len(page) < len(remaining)
        next_cursor: int | None = key_of(page[-1]) if has_more else None
        if has_more and broken == "backwards" and cursor is not None:
            next_cursor = cursor - 1
        elif has_more and broken == "missing":
            next_cursor = None
        body = _public(page, id_field)
        if self.faults.take(FaultKind.MALFORMED, request.path) is not None:
            body = self._spoil(resource, body)
        return Response.json({key: body, "has_more": has_more, "cursor": next_cursor})

    def _pages_of(
        self, key: str, rows: list[dict[str, Any]], id_field: str | None
    ) -> dict[int | None, _Page]:
        """Every page of ``rows`` by the cursor that asks for it (None: the first), each with
        its body rendered, exactly as the general path of ``_paged`` would answer it.

        A first sync asks for each page once, and every later sync for the same pages again:
        splitting the day's rows and encoding them for each request was most of the
        simulator's work per page. Held while ``rows`` is the same list (it is kept here, so
        its id cannot be reused) and the page size has not changed.
        """
        cached = self._rendered.get(id(rows))
        if cached is not None and cached[0] is rows and cached[1] == (key, self.page_size):
            return cached[2]
        key_of = _key_of(id_field)
        remaining = sorted(rows, key=key_of)
        pages: dict[int | None, _Page] = {}
        cursor: int | None = None
        while True:
            page = _first_page(remaining, key_of, self.page_size)
            remaining = remaining[len(page) :]
            has_more = bool(remaining)
            next_cursor = key_of(page[-1]) if has_more else None
            payload = {key: _public(page, id_field), "has_more": has_more, "cursor": next_cursor}
            # Response.json's own encoding, once: the bytes are the same as rendering anew.
            body = json.dumps(payload, default=str).encode()
            pages[cursor] = (page, has_more, next_cursor, body)
            if next_cursor is None:
                break
            cursor = next_cursor
        if len(self._rendered) >= 4096:  # a long-lived simulator editing marks all day
            self._rendered.clear()
        self._rendered[id(rows)] = (rows, (key, self.page_size), pages)
        return pages

    def _spoil(self, resource: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        rows = copy.deepcopy(rows)
        for row, (field, bad) in zip(rows, MALFORMATIONS.get(resource, ()), strict=False):
            student = row.get("id") if resource == "students" else row.get("student_id")
            day = date_of(row.get("date"))
            self.corrupted.append(
                Corruption(
                    resource=resource,
                    student_id=student,
                    day=day,
                    session=row.get("session"),
                    field=field,
                )
            )
            if bad is DROP:
                row.pop(field, None)
            else:
                row[field] = bad
        return rows

    def _change_between_pages(self, day: date, cursor: int) -> None:
        """Edit one mark already served (id <= cursor) and one not yet served (id > cursor)."""
        todays = [m for m in self.school.marks if m.date == day and m.pupil_id in self.student_ids]
        served = [m for m in todays if self.student_ids[m.pupil_id] <= cursor]
        unserved = [m for m in todays if self.student_ids[m.pupil_id] > cursor]
        for group in (served, unserved):
            if not group:
                continue
            mark = min(group, key=lambda m: (self.student_ids[m.pupil_id], m.session.value))
            self.set_mark(mark.pupil_id, day, mark.session, changed_code(mark.code))


def _key_of(id_field: str | None) -> Callable[[dict[str, Any]], int]:
    """A row's paging key: its id, or its position for a listing without ids (the calendar)."""
    field = id_field or "_position"

    def key_of(row: dict[str, Any]) -> int:
        return int(row[field])

    return key_of


def _first_page(
    rows: list[dict[str, Any]], key_of: Callable[[dict[str, Any]], int], page_size: int
) -> list[dict[str, Any]]:
    """The first page of ``rows`` (sorted by key): whole students (both sessions of a day), so
    that the cursor, the last student id, never splits a pupil's marks across pages."""
    page: list[dict[str, Any]] = []
    taken: set[int] = set()
    for row in rows:
        row_key = key_of(row)
        if row_key not in taken and len(taken) >= page_size:
            break
        taken.add(row_key)
        page.append(row)
    return page


def _public(page: list[dict[str, Any]], id_field: str | None) -> list[dict[str, Any]]:
    """The rows as served: without the simulator's own ``_`` fields. Only the calendar (paged
    by position, with no id) carries one; other rows are served as they are."""
    if id_field is not None:
        return list(page)
    return [{k: v for k, v in row.items() if not k.startswith("_")} for row in page]
