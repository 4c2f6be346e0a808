"""Empty PostgreSQL schemas of their own for the tests that run on PostgreSQL: each test gets
fresh schemas on the server ``REGISTERWATCH_TEST_PG_URL`` names (skipped when it is not set),
reached through ``search_path``, and dropped afterwards, so parallel test workers never meet."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

PG_URL_ENV = "REGISTERWATCH_TEST_PG_URL"


def pg_base_url() -> str:
    """The test server's URL; skips the test when it is not set."""
    url = os.environ.get(PG_URL_ENV)
    if not url:
        pytest.skip(f"{PG_URL_ENV} not set")
    return url


@contextmanager
def pg_schema_urls(
    prefix: str, count: int = 1, *, time_zone: str | None = None
) -> Iterator[list[str]]:
    """URLs of ``count`` new, empty schemas named ``rw_<prefix>_<worker>_<random>``, dropped
    on exit. ``time_zone`` sets the sessions' time zone (a zone far from UTC proves instants
    come back in UTC whatever the session says)."""
    base = pg_base_url()
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    schemas = [f"rw_{prefix}_{worker}_{uuid.uuid4().hex[:12]}" for _ in range(count)]
    admin = sa.create_engine(base, poolclass=NullPool)
    try:
        with admin.begin() as conn:
            for schema in schemas:
                conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        urls = []
        for schema in schemas:
            options = f"-csearch_path={schema}"
            if time_zone is not None:
                options += f" -ctimezone={time_zone}"
            url = make_url(base).update_query_dict({"options": options})
            urls.append(url.render_as_string(hide_password=False))
        yield urls
    finally:
        with admin.begin() as conn:
            for schema in schemas:
                conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()


@contextmanager
def pg_schema_url(prefix: str, *, time_zone: str | None = None) -> Iterator[str]:
    """The URL of one new, empty schema (``pg_schema_urls``)."""
    with pg_schema_urls(prefix, time_zone=time_zone) as urls:
        yield urls[0]
