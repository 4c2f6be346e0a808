"""`registerwatch submit` killed with SIGKILL part-way, then run again: every return reaches the
receiver exactly once.

The kill falls in the worst place: the receiver has filed the second return and is holding back
its answer, so the client dies not knowing it arrived, and the store still says queued. The rerun
sends it again under the same Idempotency-Key; the receiver answers with the original reference
and files nothing new.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from lxml import etree
from outbox_support import NOW, TOKEN, TOKEN_ENV, la_return, write_config

from registerwatch.config import load_config
from registerwatch.outbox import queue_return, submit
from registerwatch.store import Store

PUPILS = [
    ("oakfield-p1", "2025-09-15"),
    ("oakfield-p2", "2025-09-22"),
    ("oakfield-p3", "2025-09-29"),
]


def cli_submit(config) -> list[str]:
    return [
        sys.executable,
        "-m",
        "registerwatch.cli",
        "submit",
        "--config",
        str(config),
        "--format",
        "json",
    ]


def run_env() -> dict[str, str]:
    return {**os.environ, TOKEN_ENV: TOKEN, "REGISTERWATCH_CONFIG": ""}


def test_a_submit_killed_part_way_then_rerun_sends_each_return_exactly_once(tmp_path, receiver):
    store_url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    config = write_config(
        tmp_path / "registerwatch.toml",
        store_url,
        {"la": {"881": {"kind": "http", "url": receiver.url, "token_env": TOKEN_ENV}}},
    )
    with Store.open(store_url) as store:
        items = [q.item for q in queue_return(store, la_return(PUPILS), at=NOW)]
    keys = [i.idempotency_key for i in items]

    receiver.block_at = 2  # file the second return, then hold its answer
    process = subprocess.Popen(
        cli_submit(config), env=run_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    while not receiver.blocked.wait(0.05):
        if process.poll() is not None:
            raise AssertionError(f"submit ended before the kill: {process.communicate()[1]}")
        assert time.monotonic() < deadline, "the receiver never saw the second return"
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    assert process.returncode == -signal.SIGKILL
    process.stdout.close()
    process.stderr.close()
    receiver.release.set()  # let the held answer go to the dead client

    with Store(store_url) as store:
        after_kill = [store.outbox_item(i.id) for i in items]
        notified_after_kill = [n.pupil_id for n in store.notifications("oakfield")]
    assert [(i.state, i.attempts) for i in after_kill] == [
        ("acknowledged", 1),
        ("queued", 1),
        ("queued", 0),
    ]
    assert after_kill[1].last_error.startswith("in doubt: attempt 1 started at")
    assert notified_after_kill == ["oakfield-p1"]
    assert list(receiver.filed) == keys[:2]  # the receiver has the second; we do not know it

    rerun = subprocess.run(
        cli_submit(config), env=run_env(), capture_output=True, text=True, timeout=60
    )
    assert rerun.returncode == 0, rerun.stderr
    report = json.loads(rerun.stdout)
    assert [(o["id"], o["outcome"], o["receipt"]) for o in report["items"]] == [
        (items[1].id, "acknowledged", "LA881-0002"),  # the original reference, replayed
        (items[2].id, "acknowledged", "LA881-0003"),
    ]

    # The receiver: three returns filed, each once, each a different pupil episode.
    assert list(receiver.filed) == keys
    assert [receiver.requests_for(k) for k in keys] == [1, 2, 1]
    assert [receiver.filed[k]["replays"] for k in keys] == [0, 1, 0]
    filed = [etree.fromstring(receiver.filed[k]["body"]) for k in keys]
    assert [
        (
            f.findtext("Records/Record/RecordKey/PupilRef"),
            f.findtext("Records/Record/RecordKey/Episode"),
        )
        for f in filed
    ] == PUPILS
    resent = [r["body"] for r in receiver.requests if r["key"] == keys[1]]
    assert resent[0] == resent[1] == items[1].payload  # the same bytes both times

    # The store: every item acknowledged with its receipt, one Notification per pupil episode.
    with Store(store_url) as store:
        final = [store.outbox_item(i.id) for i in items]
        notifications = store.notifications("oakfield")
    assert [(i.state, i.receipt, i.attempts, i.last_error) for i in final] == [
        ("acknowledged", "LA881-0001", 1, None),
        ("acknowledged", "LA881-0002", 2, None),
        ("acknowledged", "LA881-0003", 1, None),
    ]
    assert [(n.pupil_id, n.episode_start.isoformat(), n.reference) for n in notifications] == [
        ("oakfield-p1", "2025-09-15", "LA881-0001"),
        ("oakfield-p2", "2025-09-22", "LA881-0002"),
        ("oakfield-p3", "2025-09-29", "LA881-0003"),
    ]

    # A third run (in this process: the CLI path is proven) has nothing to send.
    with Store(store_url) as store:
        assert submit(load_config(config), store, environ=run_env()).items == []
    assert len(receiver.requests) == 4
