"""Issue 14 item 3: the receiver's answer is kept as data on the outbox item (status code,
classification, SHA-256 of its whole body) and shown by `outbox list --format json`; the body
itself is never stored."""

from __future__ import annotations

import functools
import hashlib
import json
import subprocess
import sys

import requests
from outbox_support import NOW, TOKEN_ENV, la_return, make_settings
from support.hostile_server import hostile_server

from registerwatch.adapters.base import RetryPolicy
from registerwatch.outbox import queue_return, submit, transport_for
from registerwatch.store import Store

PUPILS = [("oakfield-p1", "2025-09-15")]
FAST = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.02, max_retry_after=120.0)


def _submit(tmp_path, store, env, url):
    settings = make_settings(
        tmp_path, {"la": {"881": {"kind": "http", "url": url, "token_env": TOKEN_ENV}}}
    )
    factory = functools.partial(transport_for, retry=FAST, sleep=lambda _s: None)
    return submit(settings, store, transport_factory=factory, environ=env, clock=lambda: NOW)


def _listed(store: Store) -> list[dict]:
    result = subprocess.run(
        [sys.executable, "-m", "registerwatch.cli", "outbox", "list", "--store"]
        + [str(store.url), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["items"]


def test_a_rejection_keeps_status_class_and_body_digest_never_the_body(tmp_path, store, env):
    [queued] = queue_return(store, la_return(PUPILS), at=NOW)
    with hostile_server() as base:
        body = requests.post(f"{base}/reject", data=b"<x/>", timeout=10).content
        report = _submit(tmp_path, store, env, f"{base}/reject")
    assert [o.outcome for o in report.items] == ["failed"]
    item = store.outbox_item(queued.item.id)
    assert (item.remote_status, item.remote_class) == (422, "rejected")
    assert item.remote_sha256 == hashlib.sha256(body).hexdigest()
    [listed] = _listed(store)
    assert listed["remote"] == {
        "status": 422,
        "classification": "rejected",
        "body_sha256": hashlib.sha256(body).hexdigest(),
    }
    assert "Invalid return" in listed["last_error"]  # the bounded, redacted excerpt
    text = json.dumps(listed)
    for raw in ('"errors"', "2012-03-04", '{"forename"'):
        assert raw not in text
    assert len(listed["last_error"]) < 600


def test_a_rate_limited_item_keeps_the_answer_and_a_delivery_clears_it(tmp_path, store, env):
    [queued] = queue_return(store, la_return(PUPILS), at=NOW)
    with hostile_server() as base:
        report = _submit(tmp_path, store, env, f"{base}/busy")
    assert [o.outcome for o in report.items] == ["deferred"]
    item = store.outbox_item(queued.item.id)
    assert (item.remote_status, item.remote_class, item.remote_sha256) == (
        429,
        "rate-limited",
        None,  # an empty body has no digest
    )
    assert _listed(store)[0]["remote"]["classification"] == "rate-limited"
    store.update_outbox(item.id, state="sent", remote=None, at=NOW)
    cleared = store.outbox_item(item.id)
    assert (cleared.remote_status, cleared.remote_class, cleared.remote_sha256) == (None,) * 3
    assert _listed(store)[0]["remote"] is None
