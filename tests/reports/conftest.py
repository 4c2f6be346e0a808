"""Fixtures for the report tests; the data they hold is described in report_world.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from report_world import Scanned, World, build_scanned, build_small


@pytest.fixture
def small(tmp_path: Path) -> Iterator[World]:
    """Two hand-made schools (brook, fern) whose every number is worked out in report_world."""
    world = build_small(tmp_path)
    try:
        yield world
    finally:
        world.store.close()


@pytest.fixture(scope="session")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scanned]:
    """A generated school scanned by every rule; shared, so tests only read it."""
    built = build_scanned(tmp_path_factory.mktemp("scanned"))
    try:
        yield built
    finally:
        built.world.store.close()
