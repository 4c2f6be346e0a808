"""The task queue's edges that need no PostgreSQL: on the SQLite default, `worker` and
`nightly --queue` refuse with exit 2 and say what to run instead; the daemon, given a queue,
queues each job at its time instead of running it (and outlives a queue that is down)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from support.config_writer import write_config

from registerwatch.cli import main
from registerwatch.config import load_config
from registerwatch.jobs.scheduler import Scheduler, StopFlag
from registerwatch.simulator.generate import generate_school
from registerwatch.simulator.vendors import school_config
from registerwatch.store import Store


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    captured = capsys.readouterr()
    return int(exc.value.code or 0), captured.out, captured.err


@pytest.fixture
def config(tmp_path: Path) -> Path:
    school = generate_school(1, 80, school_id="ash", vendor="arbor", as_of=date(2025, 12, 1))
    return write_config(
        tmp_path / "registerwatch.toml",
        "sqlite:///rw.sqlite",
        [school_config(school, "arbor", "http://127.0.0.1:9")],
    )


@pytest.mark.parametrize(
    "args",
    [("worker",), ("nightly", "--queue", "--as-of", "2025-12-01")],
    ids=["worker", "nightly-queue"],
)
def test_the_queue_on_a_sqlite_store_exits_2_naming_what_to_run(
    capsys: pytest.CaptureFixture[str], config: Path, args: tuple[str, ...]
) -> None:
    code, out, err = run(capsys, *args, "--config", str(config))
    assert code == 2, (out, err)
    text = " ".join(err.split())
    assert "needs a PostgreSQL store" in text
    assert "registerwatch nightly" in text and "registerwatch run" in text
    assert not (config.parent / "rw.sqlite").exists()  # refused before touching anything


def test_the_daemon_with_a_queue_queues_jobs_instead_of_running_them(
    config: Path, tmp_path: Path
) -> None:
    settings = load_config(config)
    queued: list[tuple[str, date]] = []

    def no_lock(command: str) -> Any:
        raise AssertionError(f"{command}: a queued job must not take the work lock here")

    def enqueue(store: Store, name: str, day: date) -> None:
        queued.append((name, day))
        if name == "returns":
            raise RuntimeError("queue down")  # the daemon logs it and goes on

    with Store.open(f"sqlite:///{tmp_path / 'rw.sqlite'}") as store:
        scheduler = Scheduler(
            settings,
            store,
            output_dir=tmp_path / "out",
            stop=StopFlag(),
            work_lock=no_lock,
            clock=lambda: datetime(2025, 12, 2, 2, 0, tzinfo=UTC),
            enqueue=enqueue,
        )
        assert scheduler.run_job("nightly") is None
        assert scheduler.run_job("returns", as_of=date(2025, 12, 1)) is None
        assert scheduler.run_job("dfe-daily") is None
        assert store.runs() == []  # nothing ran here: the workers record the jobs
    assert queued == [
        ("nightly", date(2025, 12, 2)),
        ("returns", date(2025, 12, 1)),
        ("dfe-daily", date(2025, 12, 2)),
    ]


def test_a_night_is_not_queued_on_a_broken_ledger(config: Path, tmp_path: Path) -> None:
    from registerwatch.errors import LedgerIntegrityError
    from registerwatch.jobs.queue import enqueue_night
    from registerwatch.schema import Session
    from registerwatch.store import LedgerEntry, LedgerKind

    settings = load_config(config)
    seen = datetime(2025, 12, 1, 18, 0, tzinfo=UTC)
    with Store.open(f"sqlite:///{tmp_path / 'rw.sqlite'}") as store:
        store.append_ledger(
            LedgerEntry("ash", f"ash:{n}", date(2025, 12, 1), Session.AM, kind, "N", "I", seen)
            for n, kind in ((1, LedgerKind.OBSERVED_NEW), (2, LedgerKind.OBSERVED_CHANGE))
        )
        with store.engine.begin() as conn:  # tamper with the chain, outside the Store API
            conn.exec_driver_sql("DROP TRIGGER ledger_no_update")
            conn.exec_driver_sql("UPDATE ledger SET new_code = 'O' WHERE seq = 2")
        with pytest.raises(LedgerIntegrityError, match="ledger broken at entry 2"):
            enqueue_night(settings, store, date(2025, 12, 1))
        (night,) = store.runs(command="nightly")
    # Refused before anything was queued (the queue is not even reached on this store); the
    # night is in the history, failed, saying why.
    assert night.outcome == "failed"
    assert night.counts["skipped"] == ["sync", "scan"]
    assert "ledger broken at entry 2" in night.counts["errors"][0]


def test_runs_names_the_school_and_worker_of_a_queued_step(
    capsys: pytest.CaptureFixture[str], config: Path
) -> None:
    with Store.open(f"sqlite:///{config.parent / 'rw.sqlite'}") as store:
        night = store.start_run("nightly")
        step = store.start_run("nightly:scan")
        counts = {"job_run": night, "school": "ash", "worker": "rw2-1", "new": 3, "errors": []}
        store.finish_run(step, "ok", {**counts, "schools_scanned": 1})
    code, out, err = run(
        capsys, "runs", "--config", str(config), "--command", "nightly:scan", "--wide"
    )
    assert code == 0, err
    text = " ".join(out.split())
    assert "school ash by rw2-1" in text and "new 3" in text
