"""HTTP transport: POST the XML to the receiver, once per idempotency key.

Request: ``POST <url>`` with the artefact as the body (``application/xml``), the headers
``Idempotency-Key`` (the item's key; the receiver keeps the first request per key and answers a
repeat with the original result), ``Content-Digest`` (RFC 9530, SHA-256 of the body) and, when
``token_env``/``token_file`` is set, ``Authorization: Bearer <token>``. Redirects are not
followed: a return is never re-sent somewhere the config does not name.

Outcome by status:

======================  ===============================================================
2xx                     delivered. The receipt is the receiver's reference: the JSON body's
                        ``reference``, ``receipt`` or ``id`` (first present), else the
                        ``Location`` header, else ``HTTP <status>``. 200/201 with a reference
                        is *acknowledged*; any other 2xx (202 Accepted, no reference) *sent*.
408, 409, 425, 429, 5xx retried with backoff and jitter, never sooner than ``Retry-After``.
                        409 is what the IETF Idempotency-Key draft answers while the first
                        request with the same key is still being processed.
timeouts, resets        retried the same way.
3xx, 401, 403, 404,     the transport is misconfigured (url or token), not the return: the
405, 410                item stays queued and this run offers the transport nothing more.
other 4xx (400, 422..)  the receiver rejected this artefact: the item fails, with the
                        receiver's message.
======================  ===============================================================
"""

from __future__ import annotations

import base64
import hashlib
import random
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from pydantic import SecretStr

from registerwatch import __version__, netguard
from registerwatch.logging import redact_pupil_data
from registerwatch.outbox.transports.base import (
    DEFAULT_RETRY,
    Receipt,
    RemoteAnswer,
    RetryPolicy,
    Submission,
    SubmissionDeferredError,
    SubmissionRejectedError,
    artefact_pupil_values,
    backoff_delay,
    classify_status,
    parse_retry_after,
    receiver_detail,
)

# connect, each read, the whole request (seconds): a hung or dripping receiver costs at most the
# last per try, and a try that reaches it sets the transport aside for the run.
DEFAULT_TIMEOUT = (5.0, 60.0, 90.0)
MAX_ANSWER_BYTES = 1024 * 1024  # a receipt or an error is small; more is not read

RETRIABLE_STATUS = frozenset({408, 409, 425, 429})
# Answers about the endpoint or the credentials, the same for every item sent there.
TRANSPORT_STATUS = frozenset({401, 403, 404, 405, 410})
REFERENCE_FIELDS = ("reference", "receipt", "id")
_REFERENCE_LIMIT = 200


class HttpTransport:
    kind = "http"

    def __init__(
        self,
        url: str,
        *,
        label: str,
        toml_key: str,
        token: SecretStr | None = None,
        token_hint: str | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        timeout: tuple[float, ...] = DEFAULT_TIMEOUT,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.url = url
        self.label = label
        self.toml_key = toml_key
        self._token = token
        self.token_hint = token_hint
        self.retry = retry
        self.limits = netguard.NetLimits.from_timeout(timeout, max_bytes=MAX_ANSWER_BYTES)
        self.timeout = (self.limits.connect, self.limits.read)
        self.http = session or requests.Session()
        self._tracker = netguard.guard_session(self.http)
        self.sleep = sleep
        self.rng = rng or random.Random()

    @property
    def shown_url(self) -> str:
        """The URL without its query string (where a careless config could carry a key)."""
        return _without_query(self.url)

    def describe(self) -> str:
        return f"POST {self.shown_url}" + (" (bearer token)" if self._token is not None else "")

    def close(self) -> None:
        self.http.close()

    def send(self, submission: Submission) -> Receipt:
        headers = {
            "Content-Type": "application/xml; charset=utf-8",
            "Accept": "application/json, */*;q=0.5",
            "Idempotency-Key": submission.idempotency_key,
            "Content-Digest": "sha-256=:"
            + base64.b64encode(hashlib.sha256(submission.xml).digest()).decode("ascii")
            + ":",
            "User-Agent": f"registerwatch/{__version__}",
        }
        if self._token is not None:
            headers["Authorization"] = f"Bearer {self._token.get_secret_value()}"
        what = f"{self.label}: {submission.return_kind} item {submission.item_id}"
        tries = 0
        reached = False  # whether any try got as far as the receiver
        answer: RemoteAnswer | None = None  # the last answer that came, as data
        while True:
            tries += 1
            retry_after: float | None = None
            cause: str | None = None
            try:
                response = self._post(submission, headers)
            except netguard.DeadlineExceeded:
                raise SubmissionDeferredError(
                    f"{what} not delivered: {self.shown_url} too slow — no complete answer "
                    f"within {self.limits.total:.0f}s; set aside for the rest of this run, the "
                    "item stays queued and the next run resends it under the same idempotency key",
                    transport_wide=True,
                    tries=tries,
                    cause="too slow",
                    answer=RemoteAnswer(None, "too-slow"),
                ) from None
            except netguard.Cancelled:
                raise SubmissionDeferredError(
                    f"{what} not delivered: stopped while waiting for {self.shown_url}; it "
                    "stays queued",
                    transport_wide=True,
                    tries=tries,
                ) from None
            except netguard.BodyTooLarge:
                reached, problem = True, f"answered with more than {MAX_ANSWER_BYTES} bytes"
                cause = "oversized answers"
                answer = RemoteAnswer(None, "oversized")
            except requests.exceptions.ChunkedEncodingError:
                reached, problem = True, "answer cut off mid-body"
                cause = "server errors"
                answer = RemoteAnswer(None, "cut-off")
            except requests.ConnectTimeout:
                problem = "could not connect (timed out)"
            except requests.ConnectionError as exc:
                # A reset after the request went out means the receiver may have it.
                reached = reached or _sent_before_failing(exc)
                problem = f"connection failed ({_cause(exc)})"
            except requests.Timeout:
                reached = True
                problem = "did not answer in time"
                cause = "too slow"
            else:
                reached = True
                status = response.status_code
                if 200 <= status <= 299:
                    return _receipt(response, tries)
                answer = RemoteAnswer.of(status, classify_status(status), response.content)
                self._raise_if_final(response, what, tries, submission, answer)
                problem = f"answered {status} {response.reason or ''}".rstrip()
                cause = "rate limited" if status == 429 else "server errors"
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
            delay = (
                None
                if tries >= self.retry.max_attempts
                else backoff_delay(self.retry, tries, retry_after, self.rng)
            )
            if delay is None:
                # Told to stay away longer than we wait: so would the next item be.
                told_to_wait = tries < self.retry.max_attempts and retry_after is not None
                why = (
                    f"asked to wait {retry_after:.0f}s (Retry-After)"
                    if told_to_wait
                    else f"gave up after {tries} attempts"
                )
                raise SubmissionDeferredError(
                    f"{what} not delivered: {self.shown_url} {problem}; {why}; it stays queued "
                    "and the next run resends it under the same idempotency key",
                    # Nobody answered at all: the next item would only wait the same way.
                    transport_wide=told_to_wait or not reached,
                    tries=tries,
                    cause=cause,
                    answer=answer,
                )
            self.sleep(delay)

    def _post(self, submission: Submission, headers: dict[str, str]) -> requests.Response:
        with netguard.guarded(self._tracker, self.limits.total) as watch:
            response = self.http.post(
                self.url,
                data=submission.xml,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
                stream=True,
            )
            netguard.read_body(response, watch, self.limits.max_bytes)
        return response

    def _raise_if_final(
        self,
        response: requests.Response,
        what: str,
        tries: int,
        submission: Submission,
        answer: RemoteAnswer,
    ) -> None:
        """Raise for answers that retrying cannot change; return for retriable ones."""
        status = response.status_code
        if status in RETRIABLE_STATUS or 500 <= status <= 599:
            return
        if 300 <= status <= 399:
            where = response.headers.get("Location", "elsewhere")
            raise SubmissionDeferredError(
                f"{what} not delivered: {self.shown_url} answered {status} redirecting to "
                f"{_without_query(where)}; "
                f"set url in [{self.toml_key}] to the address that takes the return",
                transport_wide=True,
                tries=tries,
                answer=answer,
            )
        if status in (401, 403):
            fix = (
                f"check {self.token_hint}"
                if self.token_hint
                else f"the receiver wants a token: set token_env or token_file in [{self.toml_key}]"
            )
            raise SubmissionDeferredError(
                f"{what} not delivered: the receiver refused the credentials ({status}) — {fix}",
                transport_wide=True,
                tries=tries,
                answer=answer,
            )
        if status in TRANSPORT_STATUS:
            raise SubmissionDeferredError(
                f"{what} not delivered: {self.shown_url} answered {status} "
                f"{response.reason or ''} — check url in [{self.toml_key}]",
                transport_wide=True,
                tries=tries,
                answer=answer,
            )
        raise SubmissionRejectedError(
            f"{what} rejected by the receiver with {status} {response.reason or ''}".rstrip(),
            detail=_error_text(response, artefact_pupil_values(submission.xml)),
            tries=tries,
            answer=answer,
        )


def _without_query(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def _receipt(response: requests.Response, tries: int) -> Receipt:
    reference = _reference(response)
    acknowledged = response.status_code in (200, 201) and reference is not None
    return Receipt(
        reference=reference or f"HTTP {response.status_code}",
        acknowledged=acknowledged,
        tries=tries,
    )


def _reference(response: requests.Response) -> str | None:
    body = _json(response)
    if isinstance(body, dict):
        for name in REFERENCE_FIELDS:
            value = body.get(name)
            if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip():
                return str(value).strip()[:_REFERENCE_LIMIT]
    location = response.headers.get("Location", "").strip()
    return location[:_REFERENCE_LIMIT] or None


def _json(response: requests.Response) -> Any:
    if "json" not in response.headers.get("Content-Type", "").lower():
        return None
    try:
        return response.json()
    except ValueError:
        return None


def _error_text(response: requests.Response, pupil_values: set[str]) -> str | None:
    """The receiver's explanation (JSON ``detail``/``message``/``error``/``errors``/``title``,
    or a plain-text body) as a bounded, redacted excerpt; otherwise only its size and type.
    Values the receiver put under pupil-data keys are dropped before the text is joined."""
    body = _json(response)
    if isinstance(body, dict):
        parts = [body[k] for k in ("title", "detail", "message", "error", "errors") if body.get(k)]
        if parts:
            cleaned = redact_pupil_data(None, "", {"parts": parts})["parts"]
            text = "; ".join(p if isinstance(p, str) else str(p) for p in cleaned)
            return receiver_detail(text, pupil_values)
    content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if content_type in ("text/plain", "application/problem+json"):
        return receiver_detail(response.text, pupil_values)
    if not response.content:
        return None
    return f"{len(response.content)} bytes of {content_type or 'no content type'}"


def _cause(exc: BaseException) -> str:
    """The innermost exception's type: enough to tell 'refused' from 'reset', never a URL with
    a query string or a header value."""
    inner: BaseException = exc
    for _ in range(10):  # requests wraps urllib3, which wraps the socket error
        reason = getattr(inner, "reason", None)
        if isinstance(reason, BaseException):
            inner = reason
        elif inner.__cause__ is not None:
            inner = inner.__cause__
        elif inner.args and isinstance(inner.args[0], BaseException):
            inner = inner.args[0]
        else:
            break
    return type(inner).__name__


def _sent_before_failing(exc: requests.ConnectionError) -> bool:
    """False only when the connection was never made (refused, no route, name not found)."""
    return _cause(exc) not in (
        "ConnectionRefusedError",
        "NewConnectionError",
        "gaierror",
        "NameResolutionError",
        "OSError",
    )
