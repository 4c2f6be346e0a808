"""The run lock: one job at a time per store, a clear message naming the holder, --wait, and no
stale locks after a killed run."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from scheduler_support import (
    SLOW_RUNNER,
    cli,
    drain,
    env_with,
    fake_school,
    runs_of,
    start_script,
    wait_for,
    write_config,
)
from support.pg import pg_schema_url

from registerwatch.errors import ConfigError, RunLockedError
from registerwatch.jobs.lock import (
    LockHolder,
    PgAdvisoryLock,
    RunLock,
    lock_path,
    read_holder,
    runtime_dir,
    store_lock,
)

# Holds the work lock of the store at argv[1] as "nightly" until killed, after writing argv[2].
HOLDER = r"""
import sys, time
from pathlib import Path
from registerwatch.jobs.lock import store_lock
lock = store_lock(sys.argv[1], "nightly")
lock.acquire()
Path(sys.argv[2]).write_text("held")
time.sleep(120)
"""


# -- where the lock lives -------------------------------------------------------------------


def test_sqlite_lock_files_sit_next_to_the_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'rw.sqlite'}"
    assert lock_path(url) == tmp_path / "rw.sqlite.lock"
    assert lock_path(url, "daemon") == tmp_path / "rw.sqlite.daemon.lock"


def test_an_in_memory_store_has_no_lock_and_always_acquires() -> None:
    assert lock_path("sqlite://") is None
    first, second = store_lock("sqlite://", "sync"), store_lock("sqlite://", "sync")
    assert first.acquire() and second.acquire()
    first.release()
    second.release()


def test_postgresql_locks_live_in_the_runtime_dir_keyed_by_the_url(tmp_path: Path) -> None:
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    env = {"XDG_RUNTIME_DIR": str(runtime)}
    one = lock_path("postgresql://rw@db.example/registerwatch", environ=env)
    same = lock_path("postgresql+psycopg://rw@db.example/registerwatch", environ=env)
    other = lock_path("postgresql://rw@db.example/other", environ=env)
    assert one is not None and one.parent == runtime / "registerwatch"
    assert one.name.startswith("store-") and one.name.endswith(".lock")
    assert same == one  # the driver spelling is normalised before hashing
    assert other != one
    assert (runtime / "registerwatch").stat().st_mode & 0o777 == 0o700


def test_a_runtime_dir_others_can_write_to_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared" / "registerwatch"
    shared.mkdir(parents=True)
    shared.chmod(0o777)
    with pytest.raises(ConfigError, match="not a private folder"):
        runtime_dir({"XDG_RUNTIME_DIR": str(tmp_path / "shared")})


# -- in one process ---------------------------------------------------------------------------


def test_a_second_holder_is_refused_with_the_first_ones_details(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite.lock"
    first = RunLock(path, "nightly")
    assert first.acquire()
    holder = read_holder(path)
    assert holder.pid == os.getpid()
    assert holder.command == "nightly"
    assert holder.host == socket.gethostname()
    assert holder.since is not None and holder.since.tzinfo is not None
    with pytest.raises(RunLockedError) as caught:
        RunLock(path, "sync").acquire()
    message = str(caught.value)
    assert f"pid {os.getpid()} (registerwatch nightly) since " in message
    assert str(path) in message and "--wait" in message
    first.release()
    assert path.exists() and path.read_text() == ""  # kept (never unlinked), details cleared
    with RunLock(path, "sync") as again:
        assert again.held


def test_waiting_gives_up_after_the_timeout_naming_the_holder(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    with RunLock(path, "run", kind="daemon"):
        started = time.monotonic()
        with pytest.raises(
            RunLockedError, match=r"daemon is already running.*gave up after waiting 0.3 s"
        ):
            RunLock(path, "run", kind="daemon", poll_seconds=0.05).acquire(wait=True, timeout=0.3)
        assert 0.3 <= time.monotonic() - started < 2


def test_a_stop_request_ends_the_wait_without_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    asked = []
    with RunLock(path, "nightly"):
        waiter = RunLock(path, "sync", poll_seconds=0.01)
        assert (
            waiter.acquire(wait=True, should_stop=lambda: asked.append(1) or len(asked) > 3)
            is False
        )
        assert not waiter.held
    assert len(asked) == 4


def test_holder_is_none_when_free_and_named_when_held(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    lock = RunLock(path, "sync")
    assert lock.holder() is None
    with RunLock(path, "nightly"):
        found = lock.holder()
        assert found is not None and found.command == "nightly" and found.pid == os.getpid()
    assert lock.holder() is None


def test_holder_details_half_written_or_garbled_still_give_a_message(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    path.write_text("{not json")
    assert read_holder(path) == LockHolder()
    assert "has not written its details" in LockHolder().describe()
    path.write_text(
        json.dumps(
            {"pid": 1, "command": "sync", "host": "elsewhere", "since": "2025-10-01T01:00:00+00:00"}
        )
    )
    text = read_holder(path).describe()
    assert text == "pid 1 (registerwatch sync) since 2025-10-01 02:00:00 BST on host elsewhere"


def test_a_dead_holder_pid_on_this_host_is_explained() -> None:
    proc = subprocess.Popen(["true"])
    proc.wait()
    text = LockHolder(pid=proc.pid, command="run", host=socket.gethostname()).describe()
    assert "that process has exited" in text


# -- across processes -----------------------------------------------------------------------


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(
        tmp_path / "cfg" / "registerwatch.toml",
        "sqlite:///rw.sqlite",
        [fake_school("ashby", 140101)],
    )


def _hold(config: Path, tmp_path: Path) -> subprocess.Popen[str]:
    marker = tmp_path / "held"
    store = f"sqlite:///{config.parent / 'rw.sqlite'}"
    proc = start_script(HOLDER, store, str(marker))
    wait_for(marker.exists, what="the holder to take the lock")
    return proc


def test_sync_started_while_a_night_runs_exits_1_naming_the_holder(
    config: Path, tmp_path: Path
) -> None:
    holder = _hold(config, tmp_path)
    try:
        result = cli("sync", "--config", str(config))
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 1
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(
        "error: the store is in use by another registerwatch run: held "
        f"by pid {holder.pid} (registerwatch nightly) since "
    )
    assert "rw.sqlite.lock" in line and "--wait" in line
    assert not (config.parent / "rw.sqlite").exists()  # refused before the store was opened


def test_nightly_with_wait_runs_once_the_holder_is_gone(config: Path, tmp_path: Path) -> None:
    holder = _hold(config, tmp_path)
    marker = tmp_path / "night"
    waiter = start_script(
        SLOW_RUNNER,
        "nightly",
        "--wait",
        "--config",
        str(config),
        env=env_with(MARKER=str(marker), SLOW_SECONDS="0"),
    )
    log = drain(waiter)
    try:
        time.sleep(0.5)
        assert waiter.poll() is None, "a waiting nightly must not give up"
        assert not marker.with_suffix(".started").exists()
        # SIGKILL: flock goes with the process, so the lock frees itself; no stale lock.
        holder.kill()
        holder.wait()
        assert waiter.wait(timeout=30) == 0, "".join(log.chunks)  # type: ignore[attr-defined]
    finally:
        waiter.kill()
        holder.kill()
    assert marker.with_suffix(".finished").exists() and marker.with_suffix(".after").exists()
    records = runs_of(f"sqlite:///{config.parent / 'rw.sqlite'}")
    assert [(r.command, r.outcome) for r in records] == [
        ("nightly", "ok"),
        ("nightly:slow", "ok"),
        ("nightly:after", "ok"),
    ]


def test_a_lock_left_by_a_killed_run_is_taken_at_once(config: Path, tmp_path: Path) -> None:
    holder = _hold(config, tmp_path)
    lock_file = config.parent / "rw.sqlite.lock"
    assert json.loads(lock_file.read_text())["pid"] == holder.pid
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    # The dead holder's details are still in the file; the kernel has dropped its flock.
    assert json.loads(lock_file.read_text())["pid"] == holder.pid
    lock = store_lock(f"sqlite:///{config.parent / 'rw.sqlite'}", "sync")
    assert lock.acquire()
    assert read_holder(lock_file).pid == os.getpid()
    lock.release()


def test_a_second_daemon_exits_1_naming_the_first(config: Path, tmp_path: Path) -> None:
    first = start_script(
        SLOW_RUNNER, "run", "--config", str(config), env=env_with(MARKER=str(tmp_path / "m"))
    )
    log = drain(first)
    daemon_lock = config.parent / "rw.sqlite.daemon.lock"
    try:
        wait_for(
            lambda: daemon_lock.exists() and daemon_lock.read_text() != "", what="the first daemon"
        )
        second = cli("run", "--config", str(config), timeout=30)
        assert second.returncode == 1
        assert (
            f"a registerwatch run daemon is already running on this store: held by pid "
            f"{first.pid} (registerwatch run)"
        ) in second.stderr
        assert "--wait to stand by" in second.stderr
        # Between jobs the daemon does not hold the work lock: a sync by hand still runs.
        assert store_lock(f"sqlite:///{config.parent / 'rw.sqlite'}", "sync").acquire()
    finally:
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=20) == 0, "".join(log.chunks)  # type: ignore[attr-defined]


# -- PostgreSQL: the advisory lock ------------------------------------------------------------


@pytest.mark.postgres
def test_the_postgresql_advisory_lock_excludes_a_second_connection(tmp_path: Path) -> None:
    # A schema of its own, so parallel test runs do not meet the same key.
    with pg_schema_url("lock") as url_text:
        first, second = PgAdvisoryLock(url_text), PgAdvisoryLock(url_text)
        other_kind = PgAdvisoryLock(url_text, "daemon")
        try:
            assert first.try_acquire("nightly")
            assert not second.try_acquire("sync")
            assert other_kind.try_acquire("run")  # a different key
            holder = second.holder()
            assert f"registerwatch nightly pid {os.getpid()}" in holder
            assert holder.endswith("(PostgreSQL advisory lock)")
            first.release()
            assert second.try_acquire("sync")
            second.release()

            # Two machines: each has its own lock file, and they meet at the advisory lock.
            here = RunLock(tmp_path / "here.lock", "nightly", advisory=PgAdvisoryLock(url_text))
            there = RunLock(tmp_path / "there.lock", "sync", advisory=PgAdvisoryLock(url_text))
            assert here.acquire()
            with pytest.raises(RunLockedError) as caught:
                there.acquire()
            assert f"held by registerwatch nightly pid {os.getpid()}" in str(caught.value)
            assert "(PostgreSQL advisory lock)" in str(caught.value)
            assert RunLock(tmp_path / "there.lock", "x").acquire()  # its file lock was let go
            here.release()
        finally:
            for lock in (first, second, other_kind):
                lock.release()
