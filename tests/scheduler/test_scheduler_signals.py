"""Graceful shutdown: SIGTERM (or SIGINT) during a long step lets it finish and be recorded, skips
the rest, and exits 0; a second signal is noted and changes nothing. Real processes, real
signals (os.kill)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from scheduler_support import (
    SLOW_RUNNER,
    drain,
    env_with,
    fake_school,
    runs_of,
    settings_for,
    start_script,
    wait_for,
    write_config,
)

from registerwatch.jobs.lock import RunLock
from registerwatch.jobs.nightly import Job, Step, StepResult
from registerwatch.jobs.scheduler import Scheduler, StopFlag
from registerwatch.store import Store


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(
        tmp_path / "cfg" / "registerwatch.toml",
        "sqlite:///rw.sqlite",
        [fake_school("ashby", 140401)],
    )


def store_url(config: Path) -> str:
    return f"sqlite:///{config.parent / 'rw.sqlite'}"


@pytest.mark.parametrize(
    "signals", [(signal.SIGTERM, signal.SIGTERM), (signal.SIGINT,)], ids=["sigterm-twice", "sigint"]
)
def test_nightly_finishes_the_step_records_it_and_exits_0(
    config: Path, tmp_path: Path, signals: tuple[int, ...]
) -> None:
    marker = tmp_path / "night"
    proc = start_script(
        SLOW_RUNNER,
        "nightly",
        "--config",
        str(config),
        "--format",
        "json",
        env=env_with(MARKER=str(marker), SLOW_SECONDS="1.5"),
    )
    log = drain(proc)
    try:
        wait_for(marker.with_suffix(".started").exists, what="the slow step to start")
        for signum in signals:
            os.kill(proc.pid, signum)
            time.sleep(0.3)
        assert proc.poll() is None, "the process must wait for the step to finish"
        code = proc.wait(timeout=20)
    finally:
        proc.kill()
    stderr = "".join(log.chunks)  # type: ignore[attr-defined]
    assert code == 0, stderr
    assert marker.with_suffix(".finished").read_text() == "done"
    assert not marker.with_suffix(".after").exists()
    records = runs_of(store_url(config))
    assert [(r.command, r.outcome) for r in records] == [
        ("nightly", "interrupted"),
        ("nightly:slow", "ok"),
    ]
    assert records[0].counts["skipped"] == ["after"]
    assert records[1].counts["slept"] == 1.5
    name = signal.Signals(signals[0]).name
    assert '"event": "scheduler.stop_requested"' in stderr and f'"signal": "{name}"' in stderr
    assert ('"event": "scheduler.signal_repeated"' in stderr) == (len(signals) > 1)


def test_the_daemon_finishes_the_running_step_on_sigterm(config: Path, tmp_path: Path) -> None:
    marker = tmp_path / "night"
    proc = start_script(
        SLOW_RUNNER,
        "run",
        "--config",
        str(config),
        env=env_with(MARKER=str(marker), SLOW_SECONDS="1.5", RUN_NOW="1"),
    )
    log = drain(proc)
    try:
        wait_for(marker.with_suffix(".started").exists, what="the nightly job to start")
        os.kill(proc.pid, signal.SIGTERM)
        code = proc.wait(timeout=20)
    finally:
        proc.kill()
    stderr = "".join(log.chunks)  # type: ignore[attr-defined]
    assert code == 0, stderr
    assert marker.with_suffix(".finished").exists() and not marker.with_suffix(".after").exists()
    records = runs_of(store_url(config))
    assert [(r.command, r.outcome) for r in records] == [
        ("run", "interrupted"),
        ("nightly", "interrupted"),
        ("nightly:slow", "ok"),
    ]
    assert records[0].counts["stopped_by"] == "SIGTERM"
    assert records[0].counts["jobs_run"] == 1 and records[0].counts["jobs_interrupted"] == 1
    assert records[1].counts["trigger"] == "run" and records[1].counts["skipped"] == ["after"]
    assert "registerwatch run stopped (SIGTERM): 1 jobs run" in stderr
    # The work lock was let go: a sync by hand can run now.
    assert RunLock(config.parent / "rw.sqlite.lock", "sync").acquire()


def test_an_idle_daemon_stops_at_once_on_sigterm(config: Path, tmp_path: Path) -> None:
    proc = start_script(
        SLOW_RUNNER, "run", "--config", str(config), env=env_with(MARKER=str(tmp_path / "m"))
    )
    log = drain(proc)
    try:
        wait_for(
            lambda: "stop with SIGTERM" in "".join(log.chunks),  # type: ignore[attr-defined]
            what="the daemon to start",
        )
        started = time.monotonic()
        os.kill(proc.pid, signal.SIGTERM)
        code = proc.wait(timeout=10)
        assert time.monotonic() - started < 3
    finally:
        proc.kill()
    stderr = "".join(log.chunks)  # type: ignore[attr-defined]
    assert code == 0, stderr
    assert (
        "registerwatch run: nightly 02:00, returns 07:00, dfe-daily 16:00 (Europe/London); "
        "next: " in stderr
    )
    records = runs_of(store_url(config))
    assert [(r.command, r.outcome) for r in records] == [("run", "ok")]
    assert records[0].counts["stopped_by"] == "SIGTERM" and records[0].counts["jobs_run"] == 0


# -- the daemon and the work lock (in process) -------------------------------------------------


def test_a_daemon_job_waits_for_a_sync_by_hand_then_gives_up_and_says_so(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'rw.sqlite'}")
    lock_file = tmp_path / "rw.sqlite.lock"
    ran: list[str] = []

    def work(ctx: object) -> StepResult:
        ran.append("work")
        return StepResult("work", "ok")

    job = Job("nightly", (Step("work", work),))
    scheduler = Scheduler(
        settings_for(str(store.url)),
        store,
        output_dir=tmp_path,
        stop=StopFlag(),
        jobs={"nightly": job, "returns": job, "dfe-daily": job},
        work_lock=lambda command: RunLock(lock_file, command, poll_seconds=0.02),
        lock_timeout=0.2,
    )
    try:
        with RunLock(lock_file, "sync"):
            assert scheduler.run_job("nightly") is None
        assert ran == []
        assert scheduler.summary.lock_failures == ["nightly"]
        [record] = runs_of(str(store.url))
        assert (record.command, record.outcome) == ("nightly", "failed")
        assert record.counts["skipped"] == ["work"]
        assert record.counts["lock_error"].startswith(
            f"the store is in use by another registerwatch run: held by pid {os.getpid()} "
            "(registerwatch sync) since "
        )
        assert record.counts["lock_error"].endswith("gave up after waiting 0.2 s")
        # Free again: the next job runs.
        result = scheduler.run_job("nightly")
        assert result is not None and result.outcome == "ok" and ran == ["work"]
    finally:
        store.close()


def test_a_stop_while_a_job_waits_for_the_lock_leaves_it_unstarted(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'rw.sqlite'}")
    lock_file = tmp_path / "rw.sqlite.lock"
    stop = StopFlag()
    stop.request("SIGTERM")
    job = Job("nightly", ())
    scheduler = Scheduler(
        settings_for(str(store.url)),
        store,
        output_dir=tmp_path,
        stop=stop,
        jobs={"nightly": job, "returns": job, "dfe-daily": job},
        work_lock=lambda command: RunLock(lock_file, command, poll_seconds=0.02),
    )
    try:
        with RunLock(lock_file, "sync"):
            assert scheduler.run_job("nightly") is None
        assert runs_of(str(store.url)) == [] and scheduler.summary.lock_failures == []
    finally:
        store.close()
