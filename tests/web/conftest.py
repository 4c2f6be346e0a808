"""Fixtures for the web tests (the world is described in web_world.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from web_world import LiveServer, build_template, copy_store, start_server

from registerwatch.store import Store


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_template(tmp_path_factory.mktemp("web-template"))


@pytest.fixture(scope="module")
def live(template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A copy of the world's store served by uvicorn on loopback, for one test module."""
    url = copy_store(template, tmp_path_factory.mktemp("web-live") / "store.db")
    store = Store(url)
    server = start_server(store)
    try:
        yield server
    finally:
        server.stop()
        store.close()
