"""Store fixtures: every store test runs on SQLite (a temporary file) and, when
REGISTERWATCH_TEST_PG_URL is set, on PostgreSQL in a schema of its own.

Each PostgreSQL test gets a fresh schema named after the xdist worker and a random suffix, reached
through ``search_path`` in the URL, so parallel workers never see each other's tables; the schema
is dropped at teardown.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from registerwatch.store import Store

PG_URL_ENV = "REGISTERWATCH_TEST_PG_URL"
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
FIXED_NOW = datetime(2025, 1, 6, 18, 0, tzinfo=UTC)


def _pg_base_url() -> str:
    url = os.environ.get(PG_URL_ENV)
    if not url:
        pytest.skip(f"{PG_URL_ENV} not set")
    return url


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """A URL for an empty database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    base = _pg_base_url()
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    schema = f"rw_test_{worker}_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base, poolclass=NullPool)
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        # A session time zone far from UTC proves instants come back in UTC whatever it says.
        options = f"-csearch_path={schema} -ctimezone=Pacific/Auckland"
        url = make_url(base).update_query_dict({"options": options})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()


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
