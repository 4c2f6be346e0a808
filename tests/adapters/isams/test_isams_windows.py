"""Batch date windows: with an API key the windows after the first are asked for two at a time
(in the background, used in window order); over OAuth one by one; a failed window stops the
pull with its own error and leaves no request thread behind."""

from __future__ import annotations

import threading
from datetime import date

import pytest
from isams_school import make_adapter, serve
from lxml import etree

from registerwatch.errors import FatalApiError
from registerwatch.schema import Mark
from registerwatch.simulator.isams import BATCH_PATH, IsamsApp, message_body
from registerwatch.simulator.model import GeneratedSchool
from registerwatch.simulator.server import Request, Response

START, END = date(2024, 8, 1), date(2024, 11, 30)  # four windows


def codes(marks: list[Mark]) -> dict[tuple[str, date, str], str]:
    return {(m.pupil_id, m.date, m.session.value): m.code for m in marks}


class InFlight:
    """Wraps an app's ``handle``: counts Batch requests being served at once."""

    def __init__(self, app: IsamsApp) -> None:
        self.lock = threading.Lock()
        self.now = self.most = 0
        self.windows: list[str] = []
        self._handle = app.handle
        app.handle = self  # type: ignore[method-assign]

    def __call__(self, request: Request) -> Response:
        if request.path != BATCH_PATH:
            return self._handle(request)
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
            found = etree.fromstring(request.body).find(".//RegistrationStatus")
            self.windows.append("" if found is None else found.get("StartDate", ""))
        try:
            return self._handle(request)
        finally:
            with self.lock:
                self.now -= 1


@pytest.mark.parametrize(
    ("credentials", "at_once"),
    [
        ({"api_key": "simulator-key"}, 2),
        ({"client_id": "registerwatch", "client_secret": "simulator"}, 1),
    ],
)
def test_windows_after_the_first_are_asked_for_two_at_a_time_with_a_key(
    school: GeneratedSchool, credentials: dict[str, str], at_once: int
) -> None:
    app = IsamsApp(school)
    app.latency_seconds = 0.3  # slept outside the app's lock: overlapping requests overlap
    counter = InFlight(app)
    with serve(app) as server:
        adapter = make_adapter(server.url, **credentials)
        marks = adapter.marks(START, END)
    assert codes(marks.records) == codes(school.marks) and len(marks.records) == len(school.marks)
    assert len(counter.windows) == 4 and marks.requests == 4 + adapter.client.tokens_fetched
    assert counter.windows[0] == "2024-08-01"  # the first window alone, first
    assert counter.most == at_once


def test_a_failed_window_stops_the_pull_with_its_error(school: GeneratedSchool) -> None:
    app = IsamsApp(school)
    served = app.handle

    def refuse_october(request: Request) -> Response:
        if request.path == BATCH_PATH and b'StartDate="2024-10-02"' in request.body:
            body = message_body("InvalidApiKey", "Invalid API Key", "The API key is invalid.")
            return Response(status=401, body=body, content_type="text/xml")
        return served(request)

    app.handle = refuse_october  # type: ignore[method-assign]
    with serve(app) as server:
        adapter = make_adapter(server.url, api_key="simulator-key")
        with pytest.raises(FatalApiError, match="rejected the API key"):
            adapter.marks(START, END)
    assert not [t for t in threading.enumerate() if t.name.startswith("isams-batch")]
