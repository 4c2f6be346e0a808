"""A school whose MIS cannot be reached: its sync task fails and is tried again with
exponential backoff, and after the last try the school's scan is queued all the same (the scan
is what opens SYN001 for it). The task runs as a worker runs it, against a real PostgreSQL
store (a database of its own) and a MIS address where nothing listens; the jobs it queues are
caught by procrastinate's own in-memory connector."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from procrastinate import JobContext
from procrastinate.jobs import Job
from procrastinate.testing import InMemoryConnector
from support.config_writer import write_config

from registerwatch.config import load_config
from registerwatch.jobs.tasks import (
    SCHOOL_ATTEMPTS,
    SCHOOL_RETRY,
    SchoolSyncFailed,
    WorkerContext,
    app,
    sync_school,
)
from registerwatch.simulator.generate import generate_school
from registerwatch.simulator.vendors import credentials_environ, school_config
from registerwatch.store import Store

pytestmark = pytest.mark.postgres
PG_URL = os.environ.get("REGISTERWATCH_TEST_PG_URL")


@pytest.fixture
def store_url() -> Iterator[str]:
    if not PG_URL:
        pytest.skip("REGISTERWATCH_TEST_PG_URL is not set")
    server = sa.make_url(PG_URL)
    admin = server.set(drivername="postgresql").render_as_string(hide_password=False)
    database = f"rw_retry_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    try:
        yield server.set(database=database).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def test_the_backoff_is_exponential() -> None:
    waits = []
    for attempts in range(SCHOOL_ATTEMPTS - 1):
        now = datetime.now(UTC)
        decision = SCHOOL_RETRY.get_retry_decision(
            exception=SchoolSyncFailed("x"), job=_job(attempts)
        )
        assert decision is not None and decision.retry_at is not None
        waits.append(round((decision.retry_at - now).total_seconds()))
    assert waits == [8, 64, 512]


def _job(attempts: int) -> Job:
    return Job(
        id=1,
        queue="default",
        lock="school:ash",
        queueing_lock=None,
        task_name="registerwatch.sync_school",
        attempts=attempts,
    )


def test_a_failed_sync_is_retried_then_the_scan_goes_ahead(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    school = generate_school(1, 80, school_id="ash", vendor="arbor", as_of=date(2025, 12, 1))
    config = write_config(
        tmp_path / "registerwatch.toml",
        store_url,
        [school_config(school, "arbor", "http://127.0.0.1:9")],  # nothing listens on port 9
        sync={"timeout_seconds": 2},
    )
    for name, value in credentials_environ("ash", "arbor").items():
        monkeypatch.setenv(name, value)
    settings = load_config(config)
    worker = WorkerContext(settings=settings, output_dir=tmp_path / "out", worker_name="t")
    with Store.open(store_url) as store:
        night = store.start_run("nightly")

    def context(attempts: int) -> JobContext:
        return JobContext(
            app=app,
            job=_job(attempts),
            start_timestamp=time.time(),
            additional_context={"registerwatch": worker},
            abort_reason=lambda: None,
        )

    memory = InMemoryConnector()
    with app.replace_connector(memory):
        with pytest.raises(SchoolSyncFailed, match="try 1 of 4"):
            sync_school(
                context(0), night=night, as_of="2025-12-01", kind="nightly", school_id="ash"
            )
        assert memory.jobs == {}  # no scan yet: the sync will be tried again
        outcome = sync_school(
            context(SCHOOL_ATTEMPTS - 1),
            night=night,
            as_of="2025-12-01",
            kind="nightly",
            school_id="ash",
        )
    assert outcome == "failed"
    (queued,) = memory.jobs.values()
    assert queued["task_name"] == "registerwatch.scan_school"
    assert queued["lock"] == "school:ash"
    assert queued["args"] == {
        "night": night,
        "as_of": "2025-12-01",
        "kind": "nightly",
        "school_id": "ash",
    }
    with Store(store_url) as store:
        tries = [
            (r.outcome, r.counts["attempt"], r.counts["school"])
            for r in store.runs(command="nightly:sync")
        ]
    assert sorted(tries) == [("failed", 1, "ash"), ("failed", 4, "ash")]
