"""The HTTP transport's status table and receipts, on hand-built responses (``responses``)."""

from __future__ import annotations

import random

import pytest
import requests
import responses
from outbox_support import NOW
from pydantic import SecretStr

from registerwatch.adapters.base import RetryPolicy
from registerwatch.outbox import (
    HttpTransport,
    Submission,
    SubmissionDeferredError,
    SubmissionRejectedError,
)

URL = "https://returns.la881.example/api/returns"
TOKEN = "bearer-secret-value"
ONE_TRY = RetryPolicy(max_attempts=1)


def transport(retry: RetryPolicy = ONE_TRY) -> HttpTransport:
    return HttpTransport(
        URL,
        label="LA '881' transport (http)",
        toml_key='transports.la."881"',
        token=SecretStr(TOKEN),
        token_hint="LA881_RETURNS_TOKEN",
        retry=retry,
        sleep=lambda s: None,
        rng=random.Random(1),
    )


SUBMISSION = Submission(
    item_id=7,
    return_kind="la-cme",
    school_id="oakfield",
    pupil_id="oakfield-p1",
    episode="2025-09-15",
    idempotency_key="la-cme.oakfield.0123456789abcdef0123456789abcdef",
    sha256="0" * 64,
    xml=b"<x/>",
    made_at=NOW,
)


@pytest.mark.parametrize(
    "status, body, headers, reference, acknowledged",
    [
        (201, {"reference": "CME-77"}, {}, "CME-77", True),
        (200, {"id": 4512}, {}, "4512", True),
        (201, {"receipt": "R-1", "id": "ignored"}, {}, "R-1", True),
        (201, None, {"Location": "/returns/991"}, "/returns/991", True),
        (202, {"reference": "QUEUED-5"}, {}, "QUEUED-5", False),  # accepted, not yet processed
        (204, None, {}, "HTTP 204", False),
        (200, {"status": "ok"}, {}, "HTTP 200", False),
    ],
)
@responses.activate
def test_receipts(status, body, headers, reference, acknowledged):
    responses.add(responses.POST, URL, status=status, json=body, headers=headers)
    receipt = transport().send(SUBMISSION)
    assert (receipt.reference, receipt.acknowledged, receipt.tries) == (reference, acknowledged, 1)


@pytest.mark.parametrize(
    "status, headers, error, transport_wide, fix",
    [
        (
            401,
            {},
            SubmissionDeferredError,
            True,
            "refused the credentials (401) — check LA881_RETURNS_TOKEN",
        ),
        (403, {}, SubmissionDeferredError, True, "refused the credentials (403)"),
        (404, {}, SubmissionDeferredError, True, 'check url in [transports.la."881"]'),
        (410, {}, SubmissionDeferredError, True, 'check url in [transports.la."881"]'),
        (
            302,
            {"Location": "https://other.example/in?key=s3cret"},
            SubmissionDeferredError,
            True,
            'redirecting to https://other.example/in; set url in [transports.la."881"]',
        ),
        (409, {}, SubmissionDeferredError, False, "answered 409 Conflict"),
        (429, {}, SubmissionDeferredError, False, "answered 429 Too Many Requests"),
        (503, {}, SubmissionDeferredError, False, "answered 503 Service Unavailable"),
        (400, {}, SubmissionRejectedError, None, "rejected by the receiver with 400 Bad Request"),
        (413, {}, SubmissionRejectedError, None, "rejected by the receiver with 413"),
        (422, {}, SubmissionRejectedError, None, "rejected by the receiver with 422"),
    ],
)
@responses.activate
def test_statuses(status, headers, error, transport_wide, fix):
    responses.add(responses.POST, URL, status=status, headers=headers, body=b"")
    with pytest.raises(error) as caught:
        transport().send(SUBMISSION)
    assert fix in str(caught.value)
    assert "s3cret" not in str(caught.value) and TOKEN not in str(caught.value)
    if transport_wide is not None:
        assert caught.value.transport_wide is transport_wide
    assert len(responses.calls) == 1


@responses.activate
def test_a_receivers_explanation_is_kept_short_and_without_upns():
    upn = "A881400119001"
    responses.add(
        responses.POST,
        URL,
        status=422,
        json={"title": "Invalid return", "errors": [f"UPN {upn} is not on roll"] + ["x" * 400]},
    )
    with pytest.raises(SubmissionRejectedError) as caught:
        transport().send(SUBMISSION)
    detail = caught.value.detail
    assert detail.startswith("Invalid return; ['UPN [redacted] is not on roll'")
    assert upn not in str(caught.value) and len(detail) == 300


@responses.activate
def test_a_read_timeout_is_retried_and_counts_as_reaching_the_receiver():
    responses.add(responses.POST, URL, body=requests.ReadTimeout("slow"))
    responses.add(responses.POST, URL, status=201, json={"reference": "X-1"})
    receipt = transport(RetryPolicy(max_attempts=2, base_delay=0.0)).send(SUBMISSION)
    assert (receipt.reference, receipt.tries) == ("X-1", 2)
    sent = [call.request for call in responses.calls]
    assert [r.headers["Idempotency-Key"] for r in sent] == [SUBMISSION.idempotency_key] * 2
    assert all(r.body == b"<x/>" for r in sent)
