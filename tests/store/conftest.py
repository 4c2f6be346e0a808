"""Store fixtures: every store test runs on SQLite (a temporary file) and, when
REGISTERWATCH_TEST_PG_URL is set, on PostgreSQL in a schema of its own.

Each PostgreSQL test gets a fresh schema named after the xdist worker and a random suffix, reached
through ``search_path`` in the URL, so parallel workers never see each other's tables; the schema
is dropped at teardown.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from support.pg import pg_schema_url

from registerwatch.store import Store

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
FIXED_NOW = datetime(2025, 1, 6, 18, 0, tzinfo=UTC)


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """A URL for an empty database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    # A session time zone far from UTC proves instants come back in UTC whatever it says.
    with pg_schema_url("test", time_zone="Pacific/Auckland") as url:
        yield url


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """An initialised store at the current schema whose clock reads FIXED_NOW."""
    opened = Store.open(store_url, clock=lambda: FIXED_NOW)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def raw(store: Store):
    """Run raw SQL against the store (to inspect or to tamper), outside the Store API."""

    def run(sql: str, **params: object) -> list[sa.Row]:
        with store.engine.begin() as conn:
            result = conn.execute(sa.text(sql), params)
            return result.all() if result.returns_rows else []

    return run
