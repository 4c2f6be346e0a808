"""Issue 12's acceptance, with real processes: two `registerwatch worker`s on one PostgreSQL store
do a queued night over four simulated schools (three vendors, served on loopback by this test),
every school synced and scanned exactly once; then a night in which one worker is killed with
SIGKILL in the middle of a school, whose school the other worker does instead.

Each test module gets a database of its own (CREATE DATABASE, dropped after): procrastinate's
tables are not schema-scoped, and other tests use the same server in parallel.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from support.config_writer import write_config

from registerwatch.simulator.generate import generate_school
from registerwatch.simulator.receiver import DEFAULT_TOKEN, ReceiverServer
from registerwatch.simulator.server import FaultKind, SimulatorServer, VendorApp
from registerwatch.simulator.vendors import build_app, credentials_environ, school_config
from registerwatch.store import Store

pytestmark = pytest.mark.postgres

PG_URL = os.environ.get("REGISTERWATCH_TEST_PG_URL")
CLI = [sys.executable, "-m", "registerwatch.cli"]
SCHOOLS = (("ash", "arbor"), ("beech", "isams"), ("cedar", "go4schools"), ("damson", "arbor"))
PUPILS = 30
SERVED_TO = date(2025, 12, 1)  # the simulators serve registers up to the Friday before
FIRST, SECOND = "2025-12-01", "2025-12-02"
STALLED_AFTER = 6  # seconds without a heartbeat before a worker's jobs go to another
NIGHT_TIMEOUT = 420


@dataclass
class Trust:
    folder: Path
    store_url: str
    env: dict[str, str]
    apps: dict[str, VendorApp]
    receiver: ReceiverServer
    workers: dict[str, subprocess.Popen[str]] = field(default_factory=dict)

    @property
    def config(self) -> Path:
        return self.folder / "registerwatch.toml"

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CLI, *args, "--config", str(self.config)],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=300,
        )

    def start_worker(self, name: str) -> None:
        log = (self.folder / f"{name}.log").open("w")
        self.workers[name] = subprocess.Popen(
            [*CLI, "worker", "--config", str(self.config), "--name", name]
            + ["--stalled-after", str(STALLED_AFTER)],
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            env=self.env,
        )

    def stop_workers(self) -> None:
        for process in self.workers.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.workers.values():
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.workers.clear()

    def queue_night(self, as_of: str) -> int:
        result = self.cli("nightly", "--queue", "--as-of", as_of, "--format", "json")
        assert result.returncode == 0, result.stderr[-3000:]
        queued = json.loads(result.stdout)
        assert sorted(queued["queued"]) == sorted(s for s, _ in SCHOOLS)
        return int(queued["run_id"])

    def wait_for_night(self, night: int) -> Any:
        deadline = time.monotonic() + NIGHT_TIMEOUT
        while time.monotonic() < deadline:
            with Store(self.store_url) as store:
                (record,) = [r for r in store.runs(command="nightly", limit=50) if r.id == night]
            if record.finished_at is not None:
                return record
            for name, process in self.workers.items():
                assert process.poll() is None or name == "killed", self.worker_log(name)
            time.sleep(1)
        raise AssertionError(f"night {night} not finished: {self.worker_logs()}")

    def worker_log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text(encoding="utf-8")[-4000:]

    def worker_logs(self) -> str:
        return "\n".join(f"--- {n}\n{self.worker_log(n)}" for n in self.workers)

    def step_rows(self, night: int, step: str) -> list[Any]:
        """Every finished ``nightly:<step>`` record of the night, as (school, outcome)."""
        with Store(self.store_url) as store:
            records = store.runs(command=f"nightly:{step}", limit=10_000)
        return sorted(
            (r.counts["school"], r.outcome)
            for r in records
            if r.outcome is not None and r.counts.get("job_run") == night
        )

    def sql(self, query: str) -> list[Any]:
        engine = sa.create_engine(self.store_url)
        try:
            with engine.connect() as conn:
                return list(conn.execute(sa.text(query)))
        finally:
            engine.dispose()


@pytest.fixture(scope="module")
def trust(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trust]:
    if not PG_URL:
        pytest.skip("REGISTERWATCH_TEST_PG_URL is not set")
    server_url = sa.make_url(PG_URL)
    database = f"rw_queue_{uuid.uuid4().hex[:12]}"
    admin = server_url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    store_url = server_url.set(database=database).render_as_string(hide_password=False)
    folder = tmp_path_factory.mktemp("trust")
    servers: list[SimulatorServer] = []
    apps: dict[str, VendorApp] = {}
    tables = []
    env = {**os.environ, "LA_RETURNS_TOKEN": DEFAULT_TOKEN}
    env.pop("REGISTERWATCH_CONFIG", None)
    # The LA's receiver on loopback: a night whose LA returns have nowhere to go ends partial
    # ("no transport for LA ..."), and a clean night must end ok.
    receiver = ReceiverServer().start()
    try:
        for index, (school_id, vendor) in enumerate(SCHOOLS):
            # The first school carries every injected breach (80 pupils, LA returns that
            # night); the others are small and clean.
            school = generate_school(
                index + 1,
                80 if index == 0 else PUPILS,
                school_id=school_id,
                vendor=vendor,
                as_of=SERVED_TO,
                inject_breaches=index == 0,
            )
            apps[school_id] = build_app(vendor, school)
            server = SimulatorServer(apps[school_id]).start()
            servers.append(server)
            tables.append(school_config(school, vendor, server.url))
            env.update(credentials_environ(school_id, vendor))
        write_config(
            folder / "registerwatch.toml",
            store_url,
            tables,
            logging={"level": "INFO"},
            sync={"timeout_seconds": 30},
            transports={
                "la": {
                    code: {
                        "kind": "http",
                        "url": receiver.url(code),
                        "token_env": "LA_RETURNS_TOKEN",
                    }
                    for code in {t["la_code"] for t in tables}
                },
                "dfe": {"kind": "folder", "path": str(folder / "dfe")},
            },
        )
        world = Trust(folder, store_url, env, apps, receiver)
        upgraded = world.cli("db", "upgrade")
        assert upgraded.returncode == 0, upgraded.stderr[-3000:]
        assert "task queue tables created" in upgraded.stderr
        again = world.cli("db", "upgrade")  # idempotent, queue tables included
        assert again.returncode == 0 and "task queue tables present" in again.stderr
        yield world
        world.stop_workers()
    finally:
        for server in servers:
            server.stop()
        receiver.stop()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _not_ok_steps(trust: Trust, night: int, record: Any) -> str:
    """Which steps of the night were not ok and why, for an assertion's message."""
    with Store(trust.store_url) as store:
        steps = [
            f"{r.command} {r.counts.get('school', '')}: {r.outcome}: {r.counts.get('errors')}"
            for r in store.runs(limit=1_000)
            if r.counts.get("job_run") == night and r.outcome not in ("ok", None)
        ]
    return f"night {record.outcome}, steps {record.counts.get('steps')}: {steps}"


def _assert_each_school_once(trust: Trust, night: int) -> None:
    schools = sorted(s for s, _ in SCHOOLS)
    assert trust.step_rows(night, "sync") == [(s, "ok") for s in schools], trust.worker_logs()
    assert trust.step_rows(night, "scan") == [(s, "ok") for s in schools], trust.worker_logs()
    # No register entry was ledgered twice: a sync cut short committed nothing.
    # A pupil's first-seen marks are one entry listing them all (payload {"marks": [...]}),
    # or, in a ledger written before that, one entry per mark: count every listed mark.
    doubled = trust.sql(
        "SELECT school_id, pupil_id, m.value->>'date', m.value->>'session', count(*) "
        "FROM ledger CROSS JOIN LATERAL json_array_elements("
        "  CASE WHEN payload::jsonb ? 'marks' THEN payload->'marks'"
        "  ELSE json_build_array(json_build_object("
        "    'date', date::text, 'session', session)) END) AS m "
        "WHERE kind = 'observed_new' GROUP BY 1, 2, 3, 4 HAVING count(*) > 1"
    )
    assert doubled == []


def test_two_workers_sync_and_scan_every_school_exactly_once(trust: Trust) -> None:
    trust.start_worker("first")
    trust.start_worker("second")
    # `nightly --queue --follow` queues the night and waits for the workers to finish it.
    followed = trust.cli("nightly", "--queue", "--follow", "--as-of", FIRST, "--format", "json")
    assert followed.returncode in (0, 1), followed.stderr[-3000:] + trust.worker_logs()
    summary = json.loads(followed.stdout)
    night = int(summary["run_id"])
    assert sorted(summary["queued"]) == sorted(s for s, _ in SCHOOLS)
    record = trust.wait_for_night(night)  # already finished: --follow returned
    assert summary["night"]["outcome"] == record.outcome
    # A clean night over schools whose registers are complete, with every return's destination
    # configured, ends ok: every step ok, exit 0 (it used to end partial, unnoticed).
    assert record.outcome == "ok", _not_ok_steps(trust, night, record)
    assert followed.returncode == 0
    assert set(record.counts["steps"].values()) == {"ok"}
    # The first school's LA returns were delivered to its LA, not merely queued.
    assert trust.receiver.state.received, "no LA return reached the receiver"

    _assert_each_school_once(trust, night)
    steps = record.counts["steps"]
    assert list(steps) == ["sync", "scan", "la-returns", "report", "dfe-daily", "submit"]
    assert steps["sync"] == steps["scan"] == "ok"
    assert record.counts["schools"] == len(SCHOOLS)
    # The night's steps after the scan ran once, after every school's scan.
    with Store(trust.store_url) as store:
        report = [
            r for r in store.runs(command="nightly:report") if r.counts.get("job_run") == night
        ]
        last_scan = max(
            r.finished_at
            for r in store.runs(command="nightly:scan", limit=100)
            if r.counts.get("job_run") == night
        )
    assert len(report) == 1 and report[0].started_at >= last_scan
    assert (Path(report[0].counts["html"])).is_file()
    # Both workers took part (four schools, two workers, one job each at a time).
    workers = {
        r.counts["worker"]
        for step in ("sync", "scan")
        for r in Store(trust.store_url).runs(command=f"nightly:{step}", limit=100)
        if r.counts.get("job_run") == night
    }
    assert workers == {"first", "second"}
    # `registerwatch runs` shows the night and its per-school steps.
    listed = trust.cli("runs", "--format", "json", "-n", "100")
    assert listed.returncode == 0, listed.stderr
    commands = [r["command"] for r in json.loads(listed.stdout)["runs"]]
    assert commands.count("nightly:sync") >= len(SCHOOLS)


def test_a_worker_killed_mid_school_leaves_its_school_to_the_other(trust: Trust) -> None:
    if not trust.workers:
        trust.start_worker("first")
        trust.start_worker("second")
    # Every school's MIS answers slowly tonight (3 s for each of its first requests), so each
    # worker is in the middle of a school for a while.
    for app in trust.apps.values():
        assert app.faults is not None
        app.faults.arm(FaultKind.SLOW, times=3, delay=3.0)
    night = trust.queue_night(SECOND)

    deadline = time.monotonic() + 120
    doing: list[Any] = []
    while time.monotonic() < deadline:
        doing = trust.sql(
            "SELECT id, args->>'school_id' FROM procrastinate_jobs "
            "WHERE status = 'doing' AND task_name = 'registerwatch.sync_school'"
        )
        if len(doing) == 2:  # both workers (one job at a time each) are mid-school
            break
        time.sleep(0.2)
    assert len(doing) == 2, trust.worker_logs()
    victim = trust.workers.pop("first")
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    trust.workers["killed"] = victim

    record = trust.wait_for_night(night)
    _assert_each_school_once(trust, night)
    assert record.counts["steps"]["sync"] == record.counts["steps"]["scan"] == "ok"
    # The killed worker's school was put back and done again by the survivor: its job took two
    # attempts (procrastinate counts each one ended), every other school's one.
    attempts = dict(
        trust.sql(
            "SELECT args->>'school_id', attempts FROM procrastinate_jobs "
            "WHERE task_name = 'registerwatch.sync_school' AND status = 'succeeded' "
            f"AND (args->>'night')::int = {night}"
        )
    )
    retried = [school for school, n in attempts.items() if n > 1]
    assert sorted(attempts) == sorted(s for s, _ in SCHOOLS) and len(retried) == 1, attempts
    (school,) = retried
    assert attempts[school] == 2 and school in {row[1] for row in doing}
    with Store(trust.store_url) as store:
        done_by = [
            r.counts["worker"]
            for r in store.runs(command="nightly:sync", limit=100)
            if r.counts.get("job_run") == night and r.counts.get("school") == school
        ]
        # The killed try left a sync record with no outcome (it never finished).
        unfinished = [
            r
            for r in store.runs(command="nightly:sync", limit=100)
            if r.outcome is None and r.id > night
        ]
    assert done_by == ["second"]
    assert len(unfinished) == 1
