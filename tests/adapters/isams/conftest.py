"""Fixtures for the iSAMS tests: the hand-built school, its simulator on loopback, an adapter."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from isams_school import EXAMPLES, build_school, make_adapter, serve

from registerwatch.adapters.isams import IsamsAdapter
from registerwatch.simulator.isams import IsamsApp
from registerwatch.simulator.model import GeneratedSchool
from registerwatch.simulator.server import SimulatorServer


@pytest.fixture
def school() -> GeneratedSchool:
    return build_school()


@pytest.fixture
def app(school: GeneratedSchool) -> IsamsApp:
    return IsamsApp(school)


@pytest.fixture
def server(app: IsamsApp) -> Iterator[SimulatorServer]:
    with serve(app) as running:
        yield running


@pytest.fixture
def adapter(server: SimulatorServer) -> Iterator[IsamsAdapter]:
    made = make_adapter(server.url)
    yield made
    made.close()


@pytest.fixture
def examples(shared_data: Path) -> Path:
    folder = shared_data / EXAMPLES
    if not folder.is_dir():
        pytest.skip(f"recorded iSAMS examples {folder} not present")
    return folder
