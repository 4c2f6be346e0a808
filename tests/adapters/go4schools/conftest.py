"""Fixtures for the GO 4 Schools tests: the hand-built school, its simulator, adapters.

One loopback server serves the whole session and each test plugs its own ``Go4SchoolsApp``
into it (``serve``): stopping a ``SimulatorServer`` waits out its 0.5 s poll interval, which
per test would cost more than all the requests together.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from g4s_school import API_KEY, build_school, make_adapter

from registerwatch.adapters.go4schools import Go4SchoolsAdapter
from registerwatch.simulator import server as simulator_server
from registerwatch.simulator.go4schools import Go4SchoolsApp
from registerwatch.simulator.model import GeneratedSchool
from registerwatch.simulator.server import Request, Response, SimulatorServer, VendorApp


class _Switch(VendorApp):
    """Hands each request to the app of the running test."""

    vendor = "go4schools-tests"

    def __init__(self) -> None:  # no school of its own: nothing of VendorApp's state is used
        self.current: VendorApp | None = None

    def handle(self, request: Request) -> Response:
        if self.current is None:
            return Response.json({"error": "no app plugged in"}, status=503)
        return self.current.handle(request)


@pytest.fixture(scope="session")
def _shared_server() -> Iterator[tuple[SimulatorServer, _Switch]]:
    switch = _Switch()
    running = SimulatorServer(switch)
    # Workaround until server.py sets it: without TCP_NODELAY every loopback response waits
    # ~40 ms for a delayed ACK (headers and body are written separately), 40x slower. Only
    # this server's handler is changed.
    running._server.RequestHandlerClass = _NoDelayHandler
    with running:
        yield running, switch


class _NoDelayHandler(simulator_server._Handler):
    disable_nagle_algorithm = True


@pytest.fixture
def serve(
    _shared_server: tuple[SimulatorServer, _Switch],
) -> Iterator[Callable[[VendorApp], SimulatorServer]]:
    """Plug an app into the shared loopback server; returns the server (for its url)."""
    running, switch = _shared_server

    def plug(app: VendorApp) -> SimulatorServer:
        switch.current = app
        return running

    yield plug
    switch.current = None


@pytest.fixture
def school() -> GeneratedSchool:
    return build_school()


@pytest.fixture
def app(school: GeneratedSchool) -> Go4SchoolsApp:
    # Two students a page, so every resource takes several cursor pages.
    return Go4SchoolsApp(school, api_key=API_KEY, page_size=2)


@pytest.fixture
def server(app: Go4SchoolsApp, serve: Callable[[VendorApp], SimulatorServer]) -> SimulatorServer:
    return serve(app)


@pytest.fixture
def adapter(server: SimulatorServer) -> Iterator[Go4SchoolsAdapter]:
    made = make_adapter(server.url)
    yield made
    made.close()


@pytest.fixture
def new_adapter(server: SimulatorServer) -> Iterator[Callable[..., Go4SchoolsAdapter]]:
    """A factory for a fresh adapter (a second sync run) against the same server."""
    made: list[Go4SchoolsAdapter] = []

    def factory(**options: object) -> Go4SchoolsAdapter:
        made.append(make_adapter(server.url, **options))
        return made[-1]

    yield factory
    for each in made:
        each.close()
