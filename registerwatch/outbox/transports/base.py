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

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from registerwatch.errors import SubmissionError
from registerwatch.logging import UPN_PATTERN

# One retry policy for the whole product (registerwatch.retry): the adapters use it too.
from registerwatch.retry import RetryPolicy, backoff_delay, parse_retry_after

__all__ = [
    "DEFAULT_RETRY",
    "Receipt",
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


class SubmissionRejectedError(SubmissionError):
    """The receiver refused this artefact; resending the same bytes will not help. The item is
    marked failed: fix the cause, then `registerwatch outbox retry ID`."""

    def __init__(self, message: str, *, detail: str | None = None, tries: int = 1) -> None:
        self.message = message
        self.detail = detail
        self.tries = tries
        super().__init__(f"{message}: {detail}" if detail else message)


class SubmissionDeferredError(SubmissionError):
    """Not delivered this run; the item stays queued and the next run resends it under the same
    idempotency key."""

    def __init__(self, message: str, *, transport_wide: bool = False, tries: int = 0) -> None:
        self.message = message
        self.transport_wide = transport_wide
        self.tries = tries
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


def receiver_detail(text: str | None) -> str | None:
    """A receiver's error text, made safe to store and show: one line, UPN-shaped tokens
    removed, cut to DETAIL_LIMIT characters."""
    if not text:
        return None
    line = _WHITESPACE.sub(" ", UPN_PATTERN.sub("[redacted]", text)).strip()
    if len(line) > DETAIL_LIMIT:
        line = line[: DETAIL_LIMIT - 1] + "…"
    return line or None
