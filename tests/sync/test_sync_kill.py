"""A sync killed with SIGKILL part-way leaves the store consistent, and the rerun ends exactly
where an uninterrupted run does: nothing lost, nothing duplicated.

Two kill points, each in a real subprocess against real loopback simulators:
- ``registerwatch sync`` killed while it waits on a slow MIS response for a late resource of
  one school, after the other school has committed;
- a small runner killed inside the write transaction, after the marks and the ledger rows are
  written and before the commit.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sync_support import ENV, mis_table, school_config, serve, write_config

from registerwatch.config import load_config
from registerwatch.simulator.arbor import ArborApp
from registerwatch.simulator.generate import generate_school
from registerwatch.simulator.go4schools import Go4SchoolsApp
from registerwatch.simulator.server import FaultKind, SimulatorServer
from registerwatch.store import Store

AS_OF = "2025-10-01"
SCHOOLS = ("ashby", "brook")
RESOURCES = ("pupils", "registers", "marks", "amendments")

# Runs one sync with Store.append_ledger paused after it has written: the transaction is open,
# holding this school's marks and ledger rows, uncommitted, when the test kills the process.
PAUSED_RUNNER = """
import sys, time
from datetime import date
from pathlib import Path
from registerwatch.config import load_config
from registerwatch.store import Store
from registerwatch.sync import sync_all

config, marker = sys.argv[1], Path(sys.argv[2])
real_append = Store.append_ledger

def paused(self, entries, **kwargs):
    records = real_append(self, entries, **kwargs)
    if records and records[0].school_id == "brook":
        marker.write_text(str(len(records)))
        time.sleep(120)
    return records

Store.append_ledger = paused
settings = load_config(config)
sync_all(settings, Store.open(settings.store.url), as_of=date(2025, 10, 1))
"""


@pytest.fixture
def schools() -> Iterator[tuple[SimulatorServer, SimulatorServer, Any, Any]]:
    ashby = generate_school(
        11,
        24,
        school_id="ashby",
        vendor="arbor",
        as_of=date.fromisoformat(AS_OF),
        inject_breaches=False,
    )
    brook = generate_school(
        12,
        24,
        school_id="brook",
        vendor="go4schools",
        as_of=date.fromisoformat(AS_OF),
        inject_breaches=False,
    )
    arbor_app, g4s_app = ArborApp(ashby), Go4SchoolsApp(brook, page_size=10)
    arbor, g4s = serve(arbor_app), serve(g4s_app)
    yield arbor, g4s, arbor_app, g4s_app
    arbor.stop()
    g4s.stop()


def config_for(
    folder: Path, arbor: SimulatorServer, g4s: SimulatorServer, ashby, brook, timeout: int = 60
) -> Path:
    folder.mkdir()
    path = folder / "registerwatch.toml"
    write_config(
        path,
        "sqlite:///store.sqlite",
        [
            school_config(ashby, mis_table("arbor", arbor.url)),
            school_config(brook, mis_table("go4schools", g4s.url)),
        ],
        timeout_seconds=timeout,
    )
    return path


def run_env() -> dict[str, str]:
    return {**os.environ, **ENV, "REGISTERWATCH_CONFIG": ""}


def cli_sync(config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "registerwatch.cli",
            "sync",
            "--config",
            str(config),
            "--as-of",
            AS_OF,
            "--format",
            "json",
        ],
        env=run_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(
    condition: Callable[[], bool], what: str, process: subprocess.Popen[str], timeout: float = 60.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if process.poll() is not None:
            _out, err = process.communicate()
            raise AssertionError(f"the sync ended before {what}: {process.returncode}\n{err}")
        time.sleep(0.02)
    process.kill()
    raise AssertionError(f"timed out waiting for {what}")


def kill(process: subprocess.Popen[str]) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    assert process.returncode == -signal.SIGKILL


def bookmark(config: Path, school: str) -> str | None:
    store = Store(load_config(config).store.url)
    try:
        return store.get_bookmark(school, "marks")
    finally:
        store.close()


def snapshot(config: Path) -> dict[str, Any]:
    """Everything sync writes, without the instants that depend on when it ran."""
    store = Store(load_config(config).store.url)
    try:
        data: dict[str, Any] = {}
        for school in SCHOOLS:
            data[school] = {
                "pupils": store.pupils(school),
                "registers": store.registers(school),
                "marks": store.marks(school),
                "deleted": [d.mark for d in store.deleted_marks(school)],
                "amendments": store.amendments(school),
                "quarantine": [
                    (q.resource, q.record_ref, q.field, q.reason) for q in store.quarantined(school)
                ],
                "bookmarks": {r: store.get_bookmark(school, r) for r in RESOURCES},
                "ledger": [
                    (r.kind, r.pupil_id, r.date, r.session, r.original_code, r.new_code, r.payload)
                    for r in store.ledger(school)
                ],
            }
        data["ledger_ok"] = store.verify_ledger().ok
        return data
    finally:
        store.close()


def assert_no_duplicates(data: dict[str, Any]) -> None:
    for school in SCHOOLS:
        ledger = data[school]["ledger"]
        keys = [entry[:4] for entry in ledger]  # kind, pupil, date, session
        assert len(keys) == len(set(keys))
        kinds = [entry[0] for entry in ledger]
        # One observed_new per pupil listing each register entry once, and one entry per MIS
        # amendment record, once.
        seen = [
            (entry[1], mark["date"], mark["session"])
            for entry in ledger
            if entry[0] == "observed_new"
            for mark in entry[6]["marks"]
        ]
        assert len(seen) == len(set(seen)) == len(data[school]["marks"]) > 500
        pupils = {entry[1] for entry in ledger if entry[0] == "observed_new"}
        assert kinds.count("observed_new") == len(pupils) == len(data[school]["pupils"])
        assert kinds.count("mis_amendment") == len(data[school]["amendments"])
        assert len(ledger) == len(pupils) + len(data[school]["amendments"])


def test_a_sync_killed_while_fetching_resumes_to_the_uninterrupted_result(schools, tmp_path):
    arbor, g4s, _arbor_app, g4s_app = schools
    ashby, brook = _arbor_app.school, g4s_app.school
    reference = config_for(tmp_path / "reference", arbor, g4s, ashby, brook)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "registerwatch.cli",
            "sync",
            "--config",
            str(reference),
            "--as-of",
            AS_OF,
            "--format",
            "json",
        ],
        env=run_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    expected = snapshot(reference)

    # The amendments of brook, the last resource it fetches, hang past the kill.
    g4s_app.faults.arm(FaultKind.SLOW, times=1, path="student-session-mark-amendments", delay=30.0)
    config = config_for(tmp_path / "killed", arbor, g4s, ashby, brook)
    process = cli_sync(config)
    wait_for(
        lambda: g4s_app.faults.fired["slow"] == 1 and bookmark(config, "ashby"),
        "ashby committed and brook stuck on its amendments",
        process,
    )
    kill(process)

    after_kill = snapshot(config)
    assert after_kill["ashby"] == expected["ashby"]  # finished before the kill: kept whole
    assert after_kill["brook"]["marks"] == [] and after_kill["brook"]["ledger"] == []
    assert after_kill["brook"]["pupils"] == []  # fetched, never written
    assert set(after_kill["brook"]["bookmarks"].values()) == {None}
    assert after_kill["ledger_ok"]

    rerun = subprocess.run(
        [
            sys.executable,
            "-m",
            "registerwatch.cli",
            "sync",
            "--config",
            str(config),
            "--as-of",
            AS_OF,
            "--format",
            "json",
        ],
        env=run_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert rerun.returncode == 0, rerun.stderr
    assert snapshot(config) == expected
    assert_no_duplicates(expected)


def test_a_sync_killed_inside_its_write_transaction_leaves_no_trace(schools, tmp_path):
    arbor, g4s, arbor_app, g4s_app = schools
    ashby, brook = arbor_app.school, g4s_app.school
    reference = config_for(tmp_path / "reference", arbor, g4s, ashby, brook)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "registerwatch.cli",
            "sync",
            "--config",
            str(reference),
            "--as-of",
            AS_OF,
        ],
        env=run_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    expected = snapshot(reference)

    config = config_for(tmp_path / "killed", arbor, g4s, ashby, brook)
    marker = tmp_path / "brook-ledger-written"
    process = subprocess.Popen(
        [sys.executable, "-c", PAUSED_RUNNER, str(config), str(marker)],
        env=run_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(marker.exists, "brook's ledger rows written, uncommitted", process)
    # One entry per pupil (the marks first seen) and one per MIS amendment record.
    brook_pupils = len({m.pupil_id for m in brook.marks})
    assert int(marker.read_text()) == brook_pupils + len(brook.amendments)
    kill(process)

    after_kill = snapshot(config)
    assert after_kill["brook"]["marks"] == [] and after_kill["brook"]["ledger"] == []
    assert set(after_kill["brook"]["bookmarks"].values()) == {None}
    assert after_kill["ledger_ok"]

    rerun = subprocess.run(
        [
            sys.executable,
            "-m",
            "registerwatch.cli",
            "sync",
            "--config",
            str(config),
            "--as-of",
            AS_OF,
        ],
        env=run_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert rerun.returncode == 0, rerun.stderr
    assert snapshot(config) == expected
    assert_no_duplicates(expected)
