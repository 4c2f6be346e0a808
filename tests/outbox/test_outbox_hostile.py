"""A hung, a rate-limiting and a chatty receiver on loopback: submit stays bounded and quiet."""

from __future__ import annotations

import functools
import time

from outbox_support import NOW, TOKEN_ENV, la_return, make_settings
from pydantic import SecretStr
from support.hostile_server import hostile_server

from registerwatch.adapters.base import RetryPolicy
from registerwatch.outbox import queue_return, submit, transport_for
from registerwatch.outbox.transports.base import Submission, SubmissionRejectedError
from registerwatch.outbox.transports.http import HttpTransport

PUPILS = [("oakfield-p1", "2025-09-15"), ("oakfield-p2", "2025-09-22")]
FAST = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.04, max_retry_after=120.0)


def _submit(tmp_path, store, env, url, budget=None, **transport):
    settings = make_settings(
        tmp_path, {"la": {"881": {"kind": "http", "url": url, "token_env": TOKEN_ENV, **transport}}}
    )
    factory = functools.partial(transport_for, retry=FAST, sleep=lambda _s: None)
    return submit(
        settings,
        store,
        transport_factory=factory,
        environ=env,
        clock=lambda: NOW,
        budget_seconds=budget,
    )


def test_a_hung_receiver_costs_one_deadline_then_is_set_aside(tmp_path, store, env):
    queued = queue_return(store, la_return(PUPILS), at=NOW)
    with hostile_server() as base:
        started = time.monotonic()
        report = _submit(tmp_path, store, env, f"{base}/hang", deadline_seconds=1.0)
        assert time.monotonic() - started < 5
    assert [o.outcome for o in report.items] == ["deferred", "deferred"]
    assert "too slow" in report.items[0].error
    assert report.items[1].error.startswith("not attempted: LA '881' transport (http) was unusable")
    assert [store.outbox_item(q.item.id).state for q in queued] == ["queued", "queued"]
    assert "too slow" in store.outbox_item(queued[0].item.id).last_error


def test_a_persistent_429_sets_the_transport_aside_after_one_item(tmp_path, store, env):
    queue_return(store, la_return(PUPILS), at=NOW)
    with hostile_server() as base:
        report = _submit(tmp_path, store, env, f"{base}/busy")
    assert [o.outcome for o in report.items] == ["deferred", "deferred"]
    assert (report.items[0].tries, report.items[1].tries) == (4, 0)
    assert "set aside for the rest of this run after rate limited" in report.items[1].error


def test_the_submit_budget_leaves_the_rest_queued_with_the_reason(tmp_path, store, env):
    queue_return(store, la_return(PUPILS), at=NOW)
    with hostile_server() as base:
        report = _submit(tmp_path, store, env, f"{base}/hang", budget=1e-9)
    assert [o.outcome for o in report.items] == ["deferred", "deferred"]
    assert all("time budget" in (o.error or "") for o in report.items)


def test_a_422_quoting_the_pupil_is_stored_as_a_redacted_excerpt_and_hash():
    xml = (
        b"<Return><Pupil><Forename>Ava</Forename><Surname>Smith</Surname>"
        b"<DOB>2012-03-04</DOB></Pupil></Return>"
    )
    submission = Submission(
        item_id=1,
        return_kind="la-cme",
        school_id="oakfield",
        pupil_id="oakfield-p1",
        episode="2025-09-15",
        idempotency_key="la-cme.oakfield.0123456789abcdef0123456789abcdef",
        sha256="0" * 64,
        xml=xml,
        made_at=NOW,
    )
    with hostile_server() as base:
        transport = HttpTransport(
            f"{base}/reject",
            label="LA '881' transport (http)",
            toml_key='transports.la."881"',
            token=SecretStr("tok-zz-1234"),
        )
        try:
            transport.send(submission)
        except SubmissionRejectedError as exc:
            caught = exc
    text = str(caught)
    assert "rejected by the receiver with 422" in text and "Invalid return" in text
    for leak in ("Ava", "Smith", "2012-03-04", "tok-zz-1234"):
        assert leak not in text
    assert caught.body_sha256 is not None and len(caught.body_sha256) == 64
