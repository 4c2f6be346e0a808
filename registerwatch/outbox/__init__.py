"""The outbox: validated returns queued once each, and submitted exactly once.

    items = queue_return(store, rendered, artefact_path=written.xml_path, at=now)
    report = submit(settings, store)          # or submit(..., dry_run=True)

See docs/outbox.md for the states, the idempotency keys and the exactly-once argument.
"""

from registerwatch.outbox.queue import QueuedItem, idempotency_key, queue_return, split_records
from registerwatch.outbox.submit import (
    NOTIFICATION_KINDS,
    SubmitOutcome,
    SubmitReport,
    retry_failed,
    submit,
)
from registerwatch.outbox.transports import (
    SUBMITTED_RETURNS,
    FolderTransport,
    HttpTransport,
    Receipt,
    SmtpTransport,
    Submission,
    SubmissionDeferredError,
    SubmissionRejectedError,
    Transport,
    transport_for,
    transport_target,
)

__all__ = [
    "NOTIFICATION_KINDS",
    "SUBMITTED_RETURNS",
    "FolderTransport",
    "HttpTransport",
    "QueuedItem",
    "Receipt",
    "SmtpTransport",
    "Submission",
    "SubmissionDeferredError",
    "SubmissionRejectedError",
    "SubmitOutcome",
    "SubmitReport",
    "Transport",
    "idempotency_key",
    "queue_return",
    "retry_failed",
    "split_records",
    "submit",
    "transport_for",
    "transport_target",
]
