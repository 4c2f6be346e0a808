"""What every transport shares: the thing sent, the receipt, the failure kinds and the backoff.

A transport delivers one :class:`Submission` and returns a :class:`Receipt`, or raises one of
two errors that decide what happens to the outbox item:

- :class:`SubmissionRejectedError`: the receiver refused *this artefact* (HTTP 422, SMTP 554 on
  the message): retrying the same bytes cannot succeed, so the item becomes ``failed``.
- :class:`SubmissionDeferredError`: it did not get through *this run* (timeouts, 5xx, 429 past
  the retry budget, a refused connection, bad credentials): the item stays ``queued`` and the next
  run tries again. ``transport_wide`` says the cause is the transport, not the item (a 401, a
  dead server), so the run stops offering that transport more items instead of spending the
  whole retry budget on each of them.

Every retry resends the same bytes under the same idempotency key, which is what lets the
receiver recognise a resend (see docs/outbox.md, "Exactly once").
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from lxml import etree

from registerwatch.errors import SubmissionError
from registerwatch.logging import pupil_key_kind, redact_text

# One retry policy for the whole product (registerwatch.retry): the adapters use it too.
from registerwatch.retry import RetryPolicy, backoff_delay, parse_retry_after

__all__ = [
    "DEFAULT_RETRY",
    "Receipt",
    "RemoteAnswer",
    "RetryPolicy",
    "Submission",
    "SubmissionDeferredError",
    "SubmissionRejectedError",
    "Transport",
    "backoff_delay",
    "parse_retry_after",
    "receiver_detail",
]

# Fewer attempts than an MIS pull: a return that does not go tonight goes on the next run, and
# one slow receiver must not hold up every other school's returns for minutes.
DEFAULT_RETRY = RetryPolicy(max_attempts=4, base_delay=1.0, max_delay=20.0, max_retry_after=120.0)

# How much of a receiver's own error text is kept in last_error: enough to act on, short enough
# that a receiver echoing the whole artefact back does not copy pupil data into the store.
DETAIL_LIMIT = 300


@dataclass(frozen=True)
class Submission:
    """One outbox item as a transport sees it: the bytes and what names them."""

    item_id: int
    return_kind: str
    school_id: str
    pupil_id: str | None
    episode: str | None
    idempotency_key: str
    sha256: str
    xml: bytes
    made_at: datetime  # aware; stamped into the email Date header
    attempt: int = 1  # >1: an earlier attempt may already have reached the receiver
    csv: bytes | None = None  # the human-readable copy, when one was written beside the XML
    school_name: str | None = None
    laestab: str | None = None

    @property
    def file_stem(self) -> str:
        """The idempotency key: a rerun writes (or attaches) the same name, so the receiver sees
        a replacement of the same file rather than a second return."""
        return self.idempotency_key


@dataclass(frozen=True)
class Receipt:
    """What the receiver gave back.

    ``acknowledged`` means the receiver itself confirmed the return synchronously (an HTTP 200 or
    201 carrying its reference); otherwise the return was handed over (a mail server accepted
    it, a file was written) and the item is only ``sent``.
    """

    reference: str
    acknowledged: bool
    tries: int = 1  # transport-level attempts in this run, retries included


@dataclass(frozen=True)
class RemoteAnswer:
    """The receiver's last answer as data, kept on the outbox item: its status (HTTP status or
    SMTP reply code), how it was classified, and the SHA-256 of its whole body. The body itself
    is never kept: only a bounded, redacted excerpt goes into the error text."""

    status: int | None
    classification: str
    body_sha256: str | None = None

    @classmethod
    def of(cls, status: int | None, classification: str, body: bytes | None) -> RemoteAnswer:
        return cls(status, classification, hashlib.sha256(body).hexdigest() if body else None)


def classify_status(status: int) -> str:
    """One word for an HTTP answer, as ``outbox list`` shows it."""
    if 200 <= status <= 299:
        return "accepted"
    if 300 <= status <= 399:
        return "redirected"
    if status in (401, 403):
        return "unauthorised"
    if status in (404, 405, 410):
        return "wrong-endpoint"
    if status == 429:
        return "rate-limited"
    if status in (408, 409, 425):
        return "busy"
    if 500 <= status <= 599:
        return "server-error"
    return "rejected"


class SubmissionRejectedError(SubmissionError):
    """The receiver refused this artefact; resending the same bytes will not help. The item is
    marked failed: fix the cause, then `registerwatch outbox retry ID`."""

    def __init__(
        self,
        message: str,
        *,
        detail: str | None = None,
        tries: int = 1,
        body_sha256: str | None = None,
        answer: RemoteAnswer | None = None,
    ) -> None:
        self.message = redact_text(message)
        self.detail = None if detail is None else redact_text(detail)
        self.tries = tries
        self.answer = answer
        # of the receiver's whole answer, which is not kept
        self.body_sha256 = body_sha256 or (answer.body_sha256 if answer else None)
        message, detail = self.message, self.detail
        super().__init__(f"{message}: {detail}" if detail else message)


class SubmissionDeferredError(SubmissionError):
    """Not delivered this run; the item stays queued and the next run resends it under the same
    idempotency key."""

    def __init__(
        self,
        message: str,
        *,
        transport_wide: bool = False,
        tries: int = 0,
        cause: str | None = None,
        answer: RemoteAnswer | None = None,
    ) -> None:
        self.message = message = redact_text(message)
        self.transport_wide = transport_wide
        self.tries = tries
        self.answer = answer  # the receiver's last answer, when one came
        # "too slow", "rate limited", "server errors": a persistent transient failure, after
        # which the run sets the transport aside (circuit breaker) instead of trying each item.
        self.cause = cause
        super().__init__(message)


class Transport(Protocol):
    """One configured way out: ``[transports.dfe]`` or ``[transports.la."<code>"]``."""

    kind: str  # "http" | "smtp" | "folder"; recorded as the Notification's channel
    label: str  # e.g. "LA '893' transport (http)": names it in every message

    def describe(self) -> str:
        """Where it sends, for a dry run (never a secret)."""
        ...

    def send(self, submission: Submission) -> Receipt:
        """Deliver once (with retries); raise SubmissionRejectedError/SubmissionDeferredError."""
        ...

    def close(self) -> None: ...


_WHITESPACE = re.compile(r"\s+")


def receiver_detail(text: str | None, pupil_values: Iterable[str] = ()) -> str | None:
    """A receiver's error text as data, made safe to store and show: one line; secrets,
    UPN-shaped tokens, the names and dates of birth in the artefact sent (``pupil_values``) and
    any other date removed; cut to DETAIL_LIMIT characters."""
    if not text:
        return None
    line = _WHITESPACE.sub(" ", text).strip()
    line = redact_text(line, pupil_values=pupil_values, dates=True, limit=DETAIL_LIMIT)
    return line or None


def artefact_pupil_values(xml: bytes) -> set[str]:
    """The names, dates of birth and other pupil data in an artefact (elements or attributes
    whose name is a pupil-data field): what a receiver may quote back at us."""
    try:
        root = etree.fromstring(xml, _SAFE_PARSER)
    except etree.XMLSyntaxError:
        return set()
    found: set[str] = set()
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        if pupil_key_kind(etree.QName(element).localname) is not None and element.text:
            found.add(element.text.strip())
        for name, value in element.attrib.items():
            if pupil_key_kind(etree.QName(name).localname) is not None:
                found.add(str(value).strip())
    return {v for v in found if v}


_SAFE_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
