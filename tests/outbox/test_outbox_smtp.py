"""Submitting by email to a real local SMTP server (aiosmtpd)."""

from __future__ import annotations

import functools
import ssl
from datetime import date
from pathlib import Path

import pytest
from outbox_support import NOW, la_return, make_settings
from support.smtp import Mailbox, free_port
from support.tls import make_test_certificate

from registerwatch.adapters.base import RetryPolicy
from registerwatch.exports.base import write_return
from registerwatch.outbox import queue_return, submit, transport_for
from registerwatch.schema import Notification, NotificationKind

FAST = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02)
PUPIL = [("brook-p7", "2025-09-15")]


def smtp_settings(tmp_path: Path, port: int, **extra):
    table = {
        "kind": "smtp",
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "from": "attendance@brook.example",
        "to": ["returns@la330.example"],
        **extra,
    }
    return make_settings(tmp_path, {"la": {"330": table}})


def factory(**overrides):
    return functools.partial(transport_for, retry=FAST, sleep=lambda s: None, **overrides)


def attachments(message):
    return [
        (part.get_filename(), part.get_content_type(), part.get_payload(decode=True))
        for part in message.iter_attachments()
    ]


def test_the_email_carries_the_return_and_names_the_pupil_only_by_id(tmp_path, store, mailbox):
    box, port = mailbox
    rendered = la_return(PUPIL, school="brook")
    written = write_return(rendered, tmp_path / "exports")
    [queued] = queue_return(store, rendered, artefact_path=written.xml_path, at=NOW)
    key = queued.item.idempotency_key

    report = submit(
        smtp_settings(tmp_path, port), store, transport_factory=factory(), clock=lambda: NOW
    )
    assert report.ok
    [(mail_from, rcpt_tos, message)] = box.messages
    assert (mail_from, rcpt_tos) == ("attendance@brook.example", ["returns@la330.example"])
    assert (
        message["Subject"]
        == "registerwatch la-sickness return: school brook, pupil brook-p7, episode 2025-09-15"
    )
    assert message["Message-ID"] == f"<{key}@brook.example>"
    assert message["X-Registerwatch-Idempotency-Key"] == key
    assert message["X-Registerwatch-SHA256"] == rendered.sha256
    assert message["X-Registerwatch-Resend"] is None
    assert message["Date"] == "Mon, 06 Oct 2025 18:00:00 +0000"
    assert attachments(message) == [
        (f"{key}.xml", "application/xml", rendered.xml),
        (f"{key}.csv", "text/csv", written.csv_path.read_bytes()),
    ]
    body = message.get_body(("plain",)).get_content()
    assert "LA sickness notification from Brook School (LAESTAB 3304002" in body
    assert "Pupil id: brook-p7" in body and f"SHA-256 of the XML: {rendered.sha256}" in body

    item = store.outbox_item(queued.item.id)
    assert (item.state, item.receipt) == ("sent", f"<{key}@brook.example>")
    assert store.notifications("brook") == [
        Notification(
            kind=NotificationKind.SICKNESS,
            school_id="brook",
            pupil_id="brook-p7",
            episode_start=date(2025, 9, 15),
            made_at=NOW,
            channel="smtp",
            reference=f"<{key}@brook.example>",
        )
    ]


class _DiesAfterSending:
    """A transport whose process 'dies' (KeyboardInterrupt) just after the receiver took the
    return and before the store recorded it."""

    def __init__(self, inner):
        self.inner = inner
        self.kind, self.label = inner.kind, inner.label

    def describe(self):
        return self.inner.describe()

    def close(self):
        self.inner.close()

    def send(self, submission):
        self.inner.send(submission)
        raise KeyboardInterrupt


def test_a_resend_after_an_interrupted_run_repeats_the_same_message_id(tmp_path, store, mailbox):
    box, port = mailbox
    settings = smtp_settings(tmp_path, port)
    [queued] = queue_return(store, la_return(PUPIL, school="brook"), at=NOW)
    dying = lambda *a, **k: _DiesAfterSending(factory()(*a, **k))  # noqa: E731
    with pytest.raises(KeyboardInterrupt):
        submit(settings, store, transport_factory=dying, clock=lambda: NOW)
    item = store.outbox_item(queued.item.id)
    assert (item.state, item.attempts) == ("queued", 1)
    assert item.last_error.startswith("in doubt: attempt 1 started at 2025-10-06T18:00:00+00:00")
    assert store.notifications("brook") == []

    report = submit(settings, store, transport_factory=factory(), clock=lambda: NOW)
    assert [o.outcome for o in report.items] == ["sent"]
    # A plain mailbox shows both copies; the Message-ID says they are one return.
    assert len(box.messages) == 2 and len(box.unique_message_ids()) == 1
    first, second = (m for _, _, m in box.messages)
    assert attachments(first) == attachments(second)
    assert second["X-Registerwatch-Resend"].startswith("attempt 2:")
    assert store.outbox_item(queued.item.id).state == "sent"
    assert len(store.notifications("brook")) == 1


def test_a_temporary_refusal_is_retried(tmp_path, store, mailbox):
    box, port = mailbox
    box.script = ["451 4.3.0 Mailbox busy, try again later"]
    queue_return(store, la_return(PUPIL, school="brook"), at=NOW)
    report = submit(
        smtp_settings(tmp_path, port), store, transport_factory=factory(), clock=lambda: NOW
    )
    assert [(o.outcome, o.tries) for o in report.items] == [("sent", 2)]
    assert box.data_commands == 2 and len(box.messages) == 1


def test_a_refused_message_fails_with_the_servers_reason(tmp_path, store, mailbox):
    box, port = mailbox
    box.script = ["554 5.7.1 Attachment type not allowed"]
    [queued] = queue_return(store, la_return(PUPIL, school="brook"), at=NOW)
    report = submit(
        smtp_settings(tmp_path, port), store, transport_factory=factory(), clock=lambda: NOW
    )
    assert not report.ok
    item = store.outbox_item(queued.item.id)
    assert item.state == "failed"
    assert item.last_error == (
        f"LA '330' transport (smtp): la-sickness item {item.id} rejected by the mail server "
        "with 554: 5.7.1 Attachment type not allowed"
    )


def test_an_unreachable_mail_server_defers_every_item_after_one_try(tmp_path, store):
    queue_return(store, la_return(PUPIL + [("brook-p8", "2025-09-16")], school="brook"), at=NOW)
    report = submit(
        smtp_settings(tmp_path, free_port()), store, transport_factory=factory(), clock=lambda: NOW
    )
    assert [(o.outcome, o.tries) for o in report.items] == [("deferred", 3), ("deferred", 0)]
    assert "could not be reached (ConnectionRefusedError)" in report.items[0].error
    assert [i.state for i in store.outbox_items()] == ["queued", "queued"]


# -- STARTTLS and authentication -------------------------------------------------------------


@pytest.fixture
def certificate(tmp_path) -> tuple[Path, Path]:
    return make_test_certificate(tmp_path)


@pytest.fixture
def tls_mailbox(certificate):
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    cert, key = certificate
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    logins: list[tuple[bytes, bytes]] = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        assert isinstance(auth_data, LoginPassword)
        logins.append((auth_data.login, auth_data.password))
        ok = auth_data.password == b"mail-password"
        return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535

    box = Mailbox()
    controller = Controller(
        box,
        hostname="127.0.0.1",
        port=free_port(),
        tls_context=server_context,
        require_starttls=True,
        authenticator=authenticator,
        auth_require_tls=True,
    )
    controller.start()
    try:
        yield box, controller.port, cert, logins
    finally:
        controller.stop()


def test_starttls_with_a_login(tmp_path, store, tls_mailbox):
    box, port, cert, logins = tls_mailbox
    settings = smtp_settings(
        tmp_path,
        port,
        security="starttls",
        username_env="LA330_SMTP_USER",
        password_env="LA330_SMTP_PASSWORD",
    )
    client_context = ssl.create_default_context(cafile=str(cert))
    queue_return(store, la_return(PUPIL, school="brook"), at=NOW)

    def trusting(*args, **kwargs):
        transport = factory()(*args, **kwargs)
        transport.ssl_context = client_context  # trust the test certificate
        return transport

    env = {"LA330_SMTP_USER": "brook-returns", "LA330_SMTP_PASSWORD": "wrong"}
    refused = submit(settings, store, transport_factory=trusting, environ=env, clock=lambda: NOW)
    assert refused.items[0].outcome == "deferred"
    assert (
        "refused the login (535) — check LA330_SMTP_USER and LA330_SMTP_PASSWORD"
        in refused.items[0].error
    )
    assert "wrong" not in refused.items[0].error and box.messages == []

    env["LA330_SMTP_PASSWORD"] = "mail-password"
    report = submit(settings, store, transport_factory=trusting, environ=env, clock=lambda: NOW)
    assert [o.outcome for o in report.items] == ["sent"]
    assert logins[-1] == (b"brook-returns", b"mail-password")
    assert len(box.messages) == 1


def test_a_certificate_that_is_not_trusted_is_not_sent_to(tmp_path, store, tls_mailbox):
    box, port, _cert, logins = tls_mailbox
    settings = smtp_settings(tmp_path, port, security="starttls")
    queue_return(store, la_return(PUPIL, school="brook"), at=NOW)
    report = submit(settings, store, transport_factory=factory(), clock=lambda: NOW)
    assert report.items[0].outcome == "deferred"
    assert "the certificate of 127.0.0.1 is not trusted" in report.items[0].error
    assert box.messages == [] and logins == []
