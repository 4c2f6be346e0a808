"""`registerwatch submit` and `registerwatch outbox list|retry`: output, exit codes, dry run."""

from __future__ import annotations

import json

import pytest
from outbox_support import NOW, TOKEN, TOKEN_ENV, la_return, write_config

from registerwatch.cli import main
from registerwatch.outbox import queue_return
from registerwatch.store import Store

PUPILS = [("oakfield-p1", "2025-09-15"), ("oakfield-p2", "2025-09-22")]


def run(capsys, *args):
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    captured = capsys.readouterr()
    return exc.value.code or 0, captured.out, captured.err


@pytest.fixture
def config(tmp_path, receiver, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    monkeypatch.delenv("REGISTERWATCH_CONFIG", raising=False)
    store_url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    path = write_config(
        tmp_path / "registerwatch.toml",
        store_url,
        {
            "la": {
                "881": {"kind": "http", "url": receiver.url, "token_env": TOKEN_ENV},
                "330": {"kind": "folder", "path": "la330"},
            }
        },
    )
    with Store.open(store_url) as store:
        queue_return(store, la_return(PUPILS), at=NOW)
    return path, store_url


def states(store_url):
    with Store(store_url) as store:
        return [(i.id, i.state) for i in store.outbox_items()]


def test_submit_sends_and_reports_json(capsys, config, receiver):
    path, store_url = config
    code, stdout, _ = run(capsys, "submit", "--config", str(path), "--format", "json")
    assert code == 0
    report = json.loads(stdout)
    assert report["ok"] is True and report["dry_run"] is False
    assert report["counts"] == {
        "acknowledged": 2,
        "sent": 0,
        "failed": 0,
        "deferred": 0,
        "skipped": 0,
        "would-send": 0,
    }
    assert [(o["pupil_id"], o["receipt"]) for o in report["items"]] == [
        ("oakfield-p1", "LA881-0001"),
        ("oakfield-p2", "LA881-0002"),
    ]
    assert states(store_url) == [(1, "acknowledged"), (2, "acknowledged")]


def test_submit_exits_1_when_an_item_is_rejected_and_says_why(capsys, config, receiver):
    path, store_url = config
    receiver.reject = lambda body: b"oakfield-p2" in body
    code, stdout, _ = run(capsys, "submit", "--config", str(path))
    assert code == 1
    assert "Submitted" in stdout and "LA881-0001" in stdout
    assert (
        "item 2 failed: LA '881' transport (http): la-sickness item 2 rejected by the "
        "receiver with 422" in stdout
    )
    assert "1 acknowledged, 1 failed" in stdout
    assert states(store_url) == [(1, "acknowledged"), (2, "failed")]

    code, stdout, _ = run(
        capsys, "outbox", "list", "--config", str(path), "--state", "failed", "--format", "json"
    )
    assert code == 0
    [failed] = json.loads(stdout)["items"]
    assert (failed["id"], failed["state"], failed["attempts"]) == (2, "failed", 1)
    assert "EpisodeStart is after the return date" in failed["last_error"]
    assert "payload" not in failed

    receiver.reject = lambda body: False
    code, stdout, _ = run(capsys, "outbox", "retry", "2", "--config", str(path))
    assert code == 0 and "item 2 (la-sickness, school oakfield) is queued again" in stdout
    code, _, _ = run(capsys, "submit", "--config", str(path))
    assert code == 0 and states(store_url) == [(1, "acknowledged"), (2, "acknowledged")]


def test_submit_dry_run_sends_and_changes_nothing(capsys, config, receiver):
    path, store_url = config
    with Store(store_url) as store:
        before = (store.outbox_items(), store.runs())
    code, stdout, _ = run(capsys, "submit", "--dry-run", "--config", str(path), "--format", "json")
    assert code == 0
    report = json.loads(stdout)
    assert report["dry_run"] is True
    assert [o["outcome"] for o in report["items"]] == ["would-send", "would-send"]
    assert receiver.requests == []
    with Store(store_url) as store:
        assert (store.outbox_items(), store.runs()) == before

    code, stdout, _ = run(capsys, "submit", "--dry-run", "--config", str(path))
    assert code == 0 and "Dry run: nothing was sent" in stdout and receiver.requests == []


def test_outbox_retry_refuses_an_item_that_has_not_failed(capsys, config):
    path, _ = config
    code, _, stderr = run(capsys, "outbox", "retry", "1", "--config", str(path))
    assert code == 1
    assert "outbox item 1 is queued, not failed; only a failed item can be retried" in stderr
    code, _, stderr = run(capsys, "outbox", "retry", "99", "--config", str(path))
    assert code == 1 and "no outbox item 99" in stderr


def test_submit_for_an_unknown_school_is_a_configuration_error(capsys, config, receiver):
    path, _ = config
    code, _, stderr = run(capsys, "submit", "--school", "nowhere", "--config", str(path))
    assert code == 2 and "no school 'nowhere' in the configuration" in stderr
    assert receiver.requests == []


def test_outbox_list_table(capsys, config):
    path, _ = config
    code, stdout, _ = run(capsys, "outbox", "list", "--config", str(path))
    assert code == 0
    assert "Outbox: 2 items" in stdout and "oakfield-p2" in stdout and "queued" in stdout


def test_submit_refuses_to_run_while_another_run_holds_the_store(capsys, config, receiver):
    from registerwatch.jobs.lock import store_lock

    path, store_url = config
    with store_lock(store_url, "nightly"):
        code, _, stderr = run(capsys, "submit", "--config", str(path))
        assert code == 1 and "nightly" in stderr
        assert receiver.requests == []
        # A dry run changes nothing, so it does not need the lock.
        code, _, _ = run(capsys, "submit", "--dry-run", "--config", str(path))
        assert code == 0
    assert states(store_url) == [(1, "queued"), (2, "queued")]
