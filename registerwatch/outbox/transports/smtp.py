"""SMTP transport: email the return to the LA, once per idempotency key.

The message carries the XML (and the CSV, when one was written beside it) as attachments named
by the idempotency key, a subject naming the return, the school and the pupil *id* (never a
name), and a ``Message-ID`` made from the idempotency key: every attempt for one item sends the
same Message-ID, so a resend after an interrupted run is recognisable (mail systems and people
can drop the second copy) rather than looking like a second return. ``X-Registerwatch-*``
headers repeat the key and the artefact's SHA-256, and mark a resend.

``security``: "starttls" (default, port 587) upgrades the connection before anything is sent and
fails if the server does not offer it; "tls" (port 465) is TLS from the first byte; "none" is
plain text and the config allows it only to a loopback host. Certificates are verified against
the system's trust store.

The receipt is the Message-ID, and the item is ``sent``, not ``acknowledged``: a 250 from the
mail server says it took the message, not that the LA read it.
"""

from __future__ import annotations

import email.policy
import random
import smtplib
import ssl
import time
from collections.abc import Callable, Sequence
from email.message import EmailMessage
from email.utils import format_datetime

from pydantic import SecretStr

from registerwatch import netguard
from registerwatch.outbox.transports.base import (
    DEFAULT_RETRY,
    Receipt,
    RemoteAnswer,
    RetryPolicy,
    Submission,
    SubmissionDeferredError,
    SubmissionRejectedError,
    backoff_delay,
    receiver_detail,
)

DEFAULT_TIMEOUT = 30.0  # seconds, per SMTP command
DEFAULT_DEADLINE = 120.0  # seconds for one whole delivery (connect to QUIT)

RETURN_TITLES = {
    "dfe-daily": "DfE daily attendance return",
    "la-sickness": "LA sickness notification",
    "la-continuous-absence": "LA continuous absence notification",
    "la-cme": "LA children missing education referral",
    "la-new-pupil": "LA new pupil notification",
    "la-deletion": "LA deletion from the admission register notification",
}


# RFC 5322 allows header lines up to 998 characters. Folding at 78 (the default) breaks a long
# key onto a line of its own, which some parsers (Python's among them) read back with a leading
# space, and the key must compare equal wherever it is read.
MESSAGE_POLICY = email.policy.SMTP.clone(max_line_length=998)


def message_id(idempotency_key: str, from_addr: str) -> str:
    """The same for every attempt at one item (RFC 5322 msg-id: the key is a dot-atom)."""
    domain = from_addr.rpartition("@")[2] or "registerwatch.invalid"
    return f"<{idempotency_key}@{domain}>"


def subject(submission: Submission) -> str:
    parts = [f"school {submission.school_id}"]
    if submission.pupil_id is not None:
        parts.append(f"pupil {submission.pupil_id}")
    if submission.episode is not None:
        parts.append(
            f"episode {submission.episode}"
            if submission.pupil_id is not None
            else submission.episode
        )
    return f"registerwatch {submission.return_kind} return: {', '.join(parts)}"


class SmtpTransport:
    kind = "smtp"

    def __init__(
        self,
        host: str,
        port: int,
        *,
        security: str,
        from_addr: str,
        to_addrs: Sequence[str],
        label: str,
        toml_key: str,
        username: SecretStr | None = None,
        password: SecretStr | None = None,
        credential_hint: str | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        timeout: float = DEFAULT_TIMEOUT,
        deadline: float = DEFAULT_DEADLINE,
        ssl_context: ssl.SSLContext | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if security not in ("starttls", "tls", "none"):
            raise ValueError(f"security must be starttls, tls or none, not {security!r}")
        self.host = host
        self.port = port
        self.security = security
        self.from_addr = from_addr
        self.to_addrs = list(to_addrs)
        self.label = label
        self.toml_key = toml_key
        self._username = username
        self._password = password
        self.credential_hint = credential_hint
        self.retry = retry
        self.timeout = timeout
        self.deadline = deadline
        self._tracker = netguard.Tracker()
        self.ssl_context = ssl_context or ssl.create_default_context()
        self.sleep = sleep
        self.rng = rng or random.Random()

    def describe(self) -> str:
        login = ", login" if self._username is not None else ""
        return (
            f"email to {', '.join(self.to_addrs)} via {self.host}:{self.port} "
            f"({self.security}{login})"
        )

    def close(self) -> None:
        pass  # one connection per message, closed after it

    def build_message(self, submission: Submission) -> EmailMessage:
        msg = EmailMessage(policy=MESSAGE_POLICY)
        msg["Subject"] = subject(submission)
        msg["From"] = self.from_addr
        msg["To"] = ", ".join(self.to_addrs)
        msg["Date"] = format_datetime(submission.made_at)
        msg["Message-ID"] = message_id(submission.idempotency_key, self.from_addr)
        msg["X-Registerwatch-Idempotency-Key"] = submission.idempotency_key
        msg["X-Registerwatch-SHA256"] = submission.sha256
        if submission.attempt > 1:
            msg["X-Registerwatch-Resend"] = (
                f"attempt {submission.attempt}: an earlier attempt may have arrived; "
                "same Message-ID, same return"
            )
        msg.set_content(_body(submission))
        stem = submission.file_stem
        msg.add_attachment(
            submission.xml, maintype="application", subtype="xml", filename=f"{stem}.xml"
        )
        if submission.csv is not None:
            msg.add_attachment(
                submission.csv, maintype="text", subtype="csv", filename=f"{stem}.csv"
            )
        return msg

    def send(self, submission: Submission) -> Receipt:
        msg = self.build_message(submission)
        what = f"{self.label}: {submission.return_kind} item {submission.item_id}"
        tries = 0
        reached = False
        while True:
            tries += 1
            try:
                with netguard.guarded(self._tracker, self.deadline):
                    refused = self._deliver(msg)
            except netguard.DeadlineExceeded:
                raise SubmissionDeferredError(
                    f"{what} not delivered: the mail server {self.host}:{self.port} was too slow "
                    f"(no complete delivery within {self.deadline:.0f}s); set aside for the rest "
                    "of this run, it stays queued",
                    transport_wide=True,
                    tries=tries,
                    cause="too slow",
                ) from None
            except netguard.Cancelled:
                raise SubmissionDeferredError(
                    f"{what} not delivered: stopped while talking to the mail server; it stays "
                    "queued",
                    transport_wide=True,
                    tries=tries,
                ) from None
            except smtplib.SMTPAuthenticationError as exc:
                raise self._transport_error(
                    what,
                    f"the mail server refused the login ({exc.smtp_code}) — check "
                    f"{self.credential_hint or 'username_env and password_env'}",
                    tries,
                ) from None
            except smtplib.SMTPNotSupportedError:
                raise self._transport_error(
                    what,
                    f"{self.host}:{self.port} does not offer "
                    f"{'STARTTLS' if self.security == 'starttls' else 'authentication'}; check "
                    f"security (and port) in [{self.toml_key}]",
                    tries,
                ) from None
            except ssl.SSLCertVerificationError as exc:
                raise self._transport_error(
                    what,
                    f"the certificate of {self.host} is not trusted "
                    f"({exc.verify_message}); check host in [{self.toml_key}]",
                    tries,
                ) from None
            except smtplib.SMTPRecipientsRefused as exc:
                codes = {code for code, _ in exc.recipients.values()}
                if any(code >= 500 for code in codes):
                    raise self._transport_error(
                        what,
                        f"the mail server refused every recipient "
                        f"({', '.join(str(c) for c in sorted(codes))}); check to in "
                        f"[{self.toml_key}]",
                        tries,
                    ) from None
                reached, problem = True, f"deferred the recipients ({sorted(codes)})"
            except smtplib.SMTPSenderRefused as exc:
                if exc.smtp_code >= 500:
                    raise self._transport_error(
                        what,
                        f"the mail server refused the sender {exc.sender} "
                        f"({exc.smtp_code}); check from in [{self.toml_key}]",
                        tries,
                    ) from None
                reached, problem = True, f"deferred the sender ({exc.smtp_code})"
            except smtplib.SMTPDataError as exc:
                if exc.smtp_code >= 500:
                    # The message itself (size, attachment type, content filter) was refused.
                    raise SubmissionRejectedError(
                        f"{what} rejected by the mail server with {exc.smtp_code}",
                        detail=receiver_detail(_reply_text(exc.smtp_error)),
                        tries=tries,
                        answer=RemoteAnswer.of(
                            exc.smtp_code,
                            "rejected",
                            exc.smtp_error
                            if isinstance(exc.smtp_error, bytes)
                            else str(exc.smtp_error).encode("utf-8"),
                        ),
                    ) from None
                reached, problem = True, f"deferred the message ({exc.smtp_code})"
            except smtplib.SMTPResponseException as exc:
                if exc.smtp_code >= 500:
                    reply = receiver_detail(_reply_text(exc.smtp_error))
                    raise self._transport_error(
                        what,
                        f"{self.host}:{self.port} answered {exc.smtp_code} ({reply}); "
                        f"check [{self.toml_key}]",
                        tries,
                    ) from None
                reached, problem = True, f"answered {exc.smtp_code}"
            except smtplib.SMTPServerDisconnected:
                reached, problem = True, "closed the connection"
            except (TimeoutError, OSError) as exc:  # refused, unreachable, TLS handshake, timeout
                reached = reached or isinstance(exc, TimeoutError)
                problem = f"could not be reached ({type(exc).__name__})"
            else:
                reference = message_id(submission.idempotency_key, self.from_addr)
                if refused:
                    # Delivered to the others: the LA has it; say who did not get it.
                    reference += "; not accepted for " + ", ".join(
                        f"{addr} ({code})" for addr, (code, _) in sorted(refused.items())
                    )
                return Receipt(reference=reference, acknowledged=False, tries=tries)
            if tries >= self.retry.max_attempts:
                raise SubmissionDeferredError(
                    f"{what} not delivered: the mail server {self.host}:{self.port} {problem}; "
                    f"gave up after {tries} attempts; it stays queued and the next run resends "
                    "it with the same Message-ID",
                    transport_wide=not reached,
                    tries=tries,
                )
            delay = backoff_delay(self.retry, tries, None, self.rng)
            assert delay is not None  # no Retry-After in SMTP
            self.sleep(delay)

    def deliver_message(self, msg: EmailMessage) -> dict[str, tuple[int, bytes]]:
        """Send one message that is not a return (the web app's morning email) over the same
        connection handling, within the deadline; smtplib and OSError failures propagate
        (the caller decides), and the refused recipients come back."""
        with netguard.guarded(self._tracker, self.deadline):
            return self._deliver(msg)

    def _deliver(self, msg: EmailMessage) -> dict[str, tuple[int, bytes]]:
        if self.security == "tls":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=self.ssl_context
            )
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        self._tracker.add(smtp.sock)
        try:
            if self.security == "starttls":
                smtp.starttls(context=self.ssl_context)
                self._tracker.add(smtp.sock)  # the TLS socket replaces the plain one
            if self._username is not None and self._password is not None:
                smtp.login(self._username.get_secret_value(), self._password.get_secret_value())
            refused = smtp.send_message(msg, from_addr=self.from_addr, to_addrs=self.to_addrs)
        except BaseException:
            smtp.close()
            raise
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()  # the message was accepted already; a failed QUIT changes nothing
        return refused

    def _transport_error(self, what: str, problem: str, tries: int) -> SubmissionDeferredError:
        return SubmissionDeferredError(
            f"{what} not delivered: {problem}", transport_wide=True, tries=tries
        )


def _reply_text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def _body(submission: Submission) -> str:
    title = RETURN_TITLES.get(submission.return_kind, f"{submission.return_kind} return")
    school = submission.school_name or submission.school_id
    ids = f"registerwatch school id {submission.school_id}"
    if submission.laestab:
        ids = f"LAESTAB {submission.laestab}, {ids}"
    lines = [f"{title} from {school} ({ids}).", ""]
    if submission.pupil_id is not None:
        lines.append(
            f"Pupil id: {submission.pupil_id} (the school's identifier; the details "
            "are in the attachment)"
        )
    if submission.episode is not None:
        lines.append(
            f"{'Episode' if submission.pupil_id is not None else 'Date'}: {submission.episode}"
        )
    attached = f"{submission.file_stem}.xml (the return, validated against its XML schema)"
    if submission.csv is not None:
        attached += f" and {submission.file_stem}.csv (the same data as a table)"
    lines += [
        "",
        f"Attached: {attached}.",
        f"SHA-256 of the XML: {submission.sha256}",
        f"Idempotency key: {submission.idempotency_key}",
        "",
        "This return is sent once. A copy that arrives again after an interrupted run has the "
        "same Message-ID and the same attachment, and can be ignored.",
    ]
    return "\n".join(lines) + "\n"
