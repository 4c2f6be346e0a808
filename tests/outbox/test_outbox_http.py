"""Submitting over HTTP to a real loopback receiver that honours Idempotency-Key."""

from __future__ import annotations

import base64
import functools
import hashlib
from datetime import date, timedelta

import pytest
from outbox_support import NOW, TOKEN, TOKEN_ENV, la_return, make_settings, school_table
from structlog.testing import capture_logs

from registerwatch.adapters.base import RetryPolicy
from registerwatch.config import parse_config
from registerwatch.outbox import queue_return, retry_failed, submit, transport_for
from registerwatch.schema import Notification, NotificationKind

PUPILS = [
    ("oakfield-p1", "2025-09-15"),
    ("oakfield-p2", "2025-09-22"),
    ("oakfield-p3", "2025-09-29"),
]
FAST = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.04, max_retry_after=120.0)


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def settings(tmp_path, receiver):
    return make_settings(
        tmp_path, {"la": {"881": {"kind": "http", "url": receiver.url, "token_env": TOKEN_ENV}}}
    )


@pytest.fixture
def run(settings, store, env, sleeps):
    """submit() with fast retries whose waits are recorded instead of slept."""
    factory = functools.partial(transport_for, retry=FAST, sleep=sleeps.append)

    def go(**kwargs):
        kwargs.setdefault("environ", env)
        return submit(
            kwargs.pop("settings", settings),
            store,
            transport_factory=factory,
            clock=lambda: NOW,
            **kwargs,
        )

    return go


def snapshot(store):
    return (
        store.outbox_items(),
        store.notifications("oakfield"),
        store.notifications("brook"),
        store.runs(),
    )


def test_the_request_carries_the_artefact_key_digest_and_token(run, store, receiver):
    [queued] = queue_return(store, la_return(PUPILS[:1]), at=NOW)
    report = run()
    assert report.ok
    [request] = receiver.requests
    item = queued.item
    assert request["body"] == item.payload
    headers = request["headers"]
    assert headers["Idempotency-Key"] == item.idempotency_key
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert headers["Content-Type"] == "application/xml; charset=utf-8"
    digest = base64.b64encode(hashlib.sha256(item.payload).digest()).decode()
    assert headers["Content-Digest"] == f"sha-256=:{digest}:"


def test_a_receiver_failing_three_times_then_accepting_files_the_return_once(
    run, store, receiver, sleeps
):
    [queued] = queue_return(store, la_return(PUPILS[:1]), at=NOW)
    receiver.script = [(500, {}), (503, {}), (500, {})]
    report = run()
    key = queued.item.idempotency_key
    assert receiver.requests_for(key) == 4  # three failures and the one that was filed
    assert list(receiver.filed) == [key] and receiver.filed[key]["replays"] == 0
    assert len(sleeps) == 3 and all(0.0 < s <= FAST.max_delay for s in sleeps)
    [outcome] = report.items
    assert (outcome.outcome, outcome.receipt, outcome.tries, outcome.attempts) == (
        "acknowledged",
        "LA881-0001",
        4,
        1,
    )
    item = store.outbox_item(queued.item.id)
    assert (item.state, item.receipt, item.attempts, item.last_error) == (
        "acknowledged",
        "LA881-0001",
        1,
        None,
    )


def test_retry_after_is_waited_for(run, store, receiver, sleeps):
    queue_return(store, la_return(PUPILS[:1]), at=NOW)
    receiver.script = [(429, {"Retry-After": "3"}), (503, {"Retry-After": "1"})]
    report = run()
    assert report.ok and len(receiver.filed) == 1
    assert sleeps[0] >= 3.0 and sleeps[1] >= 1.0


def test_a_retry_after_longer_than_we_wait_leaves_the_items_for_the_next_run(
    run, store, receiver, sleeps
):
    queued = queue_return(store, la_return(PUPILS[:2]), at=NOW)
    receiver.script = [(429, {"Retry-After": "3600"})]
    report = run()
    # Told to come back in an hour: neither item is pressed on the receiver again this run.
    assert not report.ok and sleeps == [] and len(receiver.requests) == 1
    assert [o.outcome for o in report.items] == ["deferred", "deferred"]
    assert "asked to wait 3600s (Retry-After)" in report.items[0].error
    item = store.outbox_item(queued[0].item.id)
    assert (item.state, item.attempts) == ("queued", 1)
    assert item.last_error.startswith(
        "LA '881' transport (http): la-sickness item 1 not "
        f"delivered: {receiver.url} answered 429 Too Many Requests"
    )

    later = run()
    assert later.ok
    assert [
        (store.outbox_item(q.item.id).state, store.outbox_item(q.item.id).attempts) for q in queued
    ] == [("acknowledged", 2), ("acknowledged", 1)]


def test_a_transport_that_fails_every_retry_keeps_the_item_queued(run, store, receiver):
    [queued] = queue_return(store, la_return(PUPILS[:1]), at=NOW)
    receiver.script = [(500, {})] * 4
    report = run()
    [outcome] = report.items
    assert outcome.outcome == "deferred" and outcome.tries == 4
    item = store.outbox_item(queued.item.id)
    assert (item.state, item.attempts, item.receipt) == ("queued", 1, None)
    assert "answered 500" in item.last_error and "gave up after 4 attempts" in item.last_error
    assert receiver.filed == {}
    assert store.notifications("oakfield") == []

    assert run().ok  # the next run: the receiver is back
    item = store.outbox_item(queued.item.id)
    assert (item.state, item.attempts, item.last_error) == ("acknowledged", 2, None)
    assert len(receiver.filed) == 1


def test_a_rejected_item_fails_and_the_others_still_go(run, store, receiver):
    queued = queue_return(store, la_return(PUPILS), at=NOW)
    receiver.reject = lambda body: b"oakfield-p2" in body
    report = run()
    assert not report.ok
    assert [o.outcome for o in report.items] == ["acknowledged", "failed", "acknowledged"]
    rejected = store.outbox_item(queued[1].item.id)
    assert rejected.state == "failed" and rejected.attempts == 1
    assert rejected.last_error == (
        f"LA '881' transport (http): la-sickness item {rejected.id} rejected by the receiver "
        "with 422 Unprocessable Entity: Unprocessable Entity; EpisodeStart is after the return "
        "date"
    )
    assert report.items[1].error == rejected.last_error
    assert [store.outbox_item(q.item.id).state for q in queued] == [
        "acknowledged",
        "failed",
        "acknowledged",
    ]
    assert [n.pupil_id for n in store.notifications("oakfield")] == ["oakfield-p1", "oakfield-p3"]

    # A failed item is not offered again by itself...
    requests = len(receiver.requests)
    assert run().items == []
    assert len(receiver.requests) == requests
    # ...until someone has fixed the cause and re-queued it.
    receiver.reject = lambda body: False
    assert retry_failed(store, rejected.id).state == "queued"
    again = run()
    assert [o.outcome for o in again.items] == ["acknowledged"]
    assert store.outbox_item(rejected.id).attempts == 2


@pytest.mark.parametrize(
    "kind, notification_kind",
    [
        ("la-sickness", NotificationKind.SICKNESS),
        ("la-continuous-absence", NotificationKind.CONTINUOUS_ABSENCE),
        ("la-cme", NotificationKind.CME),
        ("la-new-pupil", NotificationKind.NEW_PUPIL),
        ("la-deletion", NotificationKind.DELETION),
    ],
)
def test_a_submitted_return_records_its_notification(run, store, kind, notification_kind):
    queue_return(store, la_return(PUPILS[1:2], kind=kind), at=NOW)
    assert run().ok
    assert store.notifications("oakfield") == [
        Notification(
            kind=notification_kind,
            school_id="oakfield",
            pupil_id="oakfield-p2",
            episode_start=date(2025, 9, 22),
            made_at=NOW,
            channel="http",
            reference="LA881-0001",
        )
    ]


def test_a_dry_run_sends_nothing_and_changes_nothing(run, store, receiver):
    queue_return(store, la_return(PUPILS), at=NOW)
    queue_return(store, la_return([("brook-p1", "2025-09-15")], school="brook"), at=NOW)
    before = snapshot(store)
    report = run(dry_run=True)
    assert receiver.requests == []
    assert snapshot(store) == before
    assert [o.outcome for o in report.items] == ["would-send"] * 3 + ["deferred"]
    assert (
        report.items[0].transport
        == f"LA '881' transport (http): POST {receiver.url} (bearer token)"
    )
    assert 'add a [transports.la."330"] table' in report.items[3].error
    assert not report.ok  # brook's return could not go


def test_a_missing_transport_names_the_table_to_add_and_the_others_go(run, store, receiver):
    [brook] = queue_return(store, la_return([("brook-p1", "2025-09-15")], school="brook"), at=NOW)
    [oak] = queue_return(store, la_return(PUPILS[:1]), at=NOW)
    report = run()
    assert [o.outcome for o in report.items] == ["deferred", "acknowledged"]
    expected = (
        "no transport for LA '330' (school 'brook', return la-sickness): add a "
        '[transports.la."330"] table to the config with kind = "http", "smtp" or '
        '"folder" (see `registerwatch config example`)'
    )
    assert report.items[0].error == expected
    item = store.outbox_item(brook.item.id)
    assert (item.state, item.attempts, item.last_error) == ("queued", 0, expected)
    assert store.outbox_item(oak.item.id).state == "acknowledged"


def test_each_school_of_an_la_without_a_transport_is_named_in_its_own_reason(tmp_path, store, env):
    # Two schools of LA 893, which has no transport: the second school's item used to be told
    # the first school's reason (the reason was kept per LA for the rest of the run).
    schools = [school_table("ash", "893", 3), school_table("birch", "893", 4)]
    settings = parse_config(
        {"store": {"url": f"sqlite:///{tmp_path / 'store.sqlite'}"}, "schools": schools},
        config_dir=tmp_path,
    )
    for school in ("ash", "birch"):
        queue_return(store, la_return([(f"{school}-p1", "2025-09-15")], school=school), at=NOW)
    report = submit(settings, store, environ=env, clock=lambda: NOW)
    assert [(o.school_id, o.outcome) for o in report.items] == [
        ("ash", "deferred"),
        ("birch", "deferred"),
    ]
    for outcome in report.items:
        assert outcome.error is not None
        assert f"no transport for LA '893' (school '{outcome.school_id}'," in outcome.error


def test_a_credential_that_cannot_be_read_is_named(run, store, receiver):
    queue_return(store, la_return(PUPILS[:2]), at=NOW)
    report = run(environ={})
    assert [o.outcome for o in report.items] == ["deferred", "deferred"]
    assert report.items[0].error == (
        f"transport for LA '881': environment variable {TOKEN_ENV} is not set (it should hold "
        "the bearer token)"
    )
    assert receiver.requests == []


def test_refused_credentials_stop_that_transport_for_this_run(run, store, receiver):
    queued = queue_return(store, la_return(PUPILS), at=NOW)
    report = run(environ={TOKEN_ENV: "wrong-token"})
    assert len(receiver.requests) == 1  # not once per item
    assert [o.outcome for o in report.items] == ["deferred"] * 3
    assert f"refused the credentials (401) — check {TOKEN_ENV}" in report.items[0].error
    assert report.items[1].error.startswith(
        "not attempted: LA '881' transport (http) was unusable earlier in this run"
    )
    assert [store.outbox_item(q.item.id).attempts for q in queued] == [1, 0, 0]
    assert all("wrong-token" not in (o.error or "") for o in report.items)


def test_a_receiver_that_is_down_is_tried_once_per_run_not_once_per_item(
    tmp_path, store, env, sleeps, receiver
):
    receiver.server.shutdown()
    receiver.server.server_close()  # nothing listens on its port any more
    settings = make_settings(
        tmp_path, {"la": {"881": {"kind": "http", "url": receiver.url, "token_env": TOKEN_ENV}}}
    )
    queue_return(store, la_return(PUPILS[:2]), at=NOW)
    factory = functools.partial(transport_for, retry=FAST, sleep=sleeps.append)
    report = submit(settings, store, transport_factory=factory, environ=env, clock=lambda: NOW)
    assert [(o.outcome, o.tries) for o in report.items] == [("deferred", 4), ("deferred", 0)]
    assert "connection failed (ConnectionRefusedError)" in report.items[0].error
    assert len(sleeps) == 3


def test_log_events_say_what_happened_without_pupil_data(run, store, receiver):
    queue_return(store, la_return(PUPILS[:2]), at=NOW)
    receiver.reject = lambda body: b"oakfield-p2" in body
    with capture_logs() as events:
        run()
    names = [e["event"] for e in events]
    assert names == ["outbox.submitted", "outbox.failed"]
    submitted, failed = events
    assert (
        submitted["return_kind"],
        submitted["school"],
        submitted["state"],
        submitted["receipt"],
    ) == ("la-sickness", "oakfield", "acknowledged", "LA881-0001")
    assert failed["error"].endswith("rejected by the receiver with 422 Unprocessable Entity")
    assert "oakfield-p" not in repr(events) and TOKEN not in repr(events)


def test_a_store_row_whose_bytes_do_not_match_their_hash_is_not_sent(run, store, receiver):
    import sqlalchemy as sa

    from registerwatch.store import tables

    [queued] = queue_return(store, la_return(PUPILS[:1]), at=NOW)
    with store.transaction() as conn:
        conn.execute(sa.update(tables.outbox).values(payload=b"<tampered/>"))
    report = run()
    assert (
        report.items[0].outcome == "failed"
        and "does not match its SHA-256" in report.items[0].error
    )
    assert receiver.requests == []
    assert store.outbox_item(queued.item.id).state == "failed"


def test_a_school_filter_sends_only_that_schools_items(tmp_path, store, env, receiver):
    settings = make_settings(
        tmp_path,
        {
            "la": {
                "881": {"kind": "http", "url": receiver.url, "token_env": TOKEN_ENV},
                "330": {"kind": "folder", "path": "drop"},
            }
        },
    )
    queue_return(store, la_return(PUPILS[:1]), at=NOW)
    queue_return(store, la_return([("brook-p1", "2025-09-15")], school="brook"), at=NOW)
    report = submit(
        settings, store, school_id="brook", environ=env, clock=lambda: NOW + timedelta(minutes=1)
    )
    assert [(o.school_id, o.outcome) for o in report.items] == [("brook", "sent")]
    assert receiver.requests == []
    assert [i.state for i in store.outbox_items()] == ["queued", "sent"]
