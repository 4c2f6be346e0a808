"""Submitting: every queued item goes out once, and what happened is recorded.

For each queued item, in id order:

1. **Claim** it: compare-and-set ``queued → queued`` counting the attempt, and write into
   ``last_error`` that an attempt is in flight. If the run dies before step 3, the item is still
   queued with that note, and the next run sends it again.
2. **Send** it through its transport, which retries transient failures itself, always with the
   same bytes and the same idempotency key (HTTP ``Idempotency-Key``, email ``Message-ID``,
   file name).
3. **Record** the outcome. Delivered: ``sent`` (or ``acknowledged`` when the receiver confirmed
   with a reference) with the receipt, and the matching Notification, in one transaction, so a
   kill cannot leave one without the other. Rejected: ``failed`` with the reason; the run goes
   on. Not delivered this run: stays ``queued`` with the reason; the next run retries it.

Exactly once = at-least-once delivery + an idempotent receiver. The store and the receiver
cannot commit together, so a run killed between the receiver accepting and step 3 committing
leaves an item that *was* delivered marked queued; nothing local can tell that apart from an
item that was not, so the next run sends it again. What makes that resend harmless is that it is
the same request under the same key: a receiver that honours Idempotency-Key answers it with the
original result instead of filing a second return; the folder drop overwrites the same file; an
email repeats the same Message-ID (and says it is a resend), which mail systems and people can
recognise, though a plain mailbox will show both copies. See docs/outbox.md.

``failed`` is final for a run: only `registerwatch outbox retry ID` (``failed → queued``) offers
the item again, because resending bytes the receiver refused cannot succeed on its own.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from registerwatch.config import SchoolSettings, Settings
from registerwatch.errors import ConfigError, SubmissionError
from registerwatch.logging import get_logger
from registerwatch.outbox.transports import (
    Receipt,
    RemoteAnswer,
    Submission,
    SubmissionDeferredError,
    SubmissionRejectedError,
    Transport,
    TransportFactory,
    transport_for,
    transport_target,
)
from registerwatch.scan.returns_state import close_answered
from registerwatch.schema import Notification, NotificationKind
from registerwatch.store import OutboxItem, Store

log = get_logger(__name__)

# The Notification each return records once it has gone, so the LAR rule it answers closes.
NOTIFICATION_KINDS: dict[str, NotificationKind] = {
    "la-sickness": NotificationKind.SICKNESS,
    "la-continuous-absence": NotificationKind.CONTINUOUS_ABSENCE,
    "la-cme": NotificationKind.CME,
    "la-new-pupil": NotificationKind.NEW_PUPIL,
    "la-deletion": NotificationKind.DELETION,
    "dfe-daily": NotificationKind.DFE_DAILY,
}

# Written at the claim and replaced by the outcome; still there means the run stopped in between.
IN_DOUBT = (
    "in doubt: attempt {attempt} started at {at} and its outcome was not recorded (the run "
    "stopped?); the next submit resends it under the same idempotency key"
)

OUTCOMES = ("acknowledged", "sent", "failed", "deferred", "skipped", "would-send")


@dataclass(frozen=True)
class SubmitOutcome:
    """What happened to one item in this run.

    ``outcome``: ``acknowledged`` / ``sent`` (delivered now), ``failed`` (rejected now; state
    failed), ``deferred`` (not delivered this run; still queued), ``skipped`` (another run moved
    it first), ``would-send`` (dry run).
    """

    item_id: int
    return_kind: str
    school_id: str
    pupil_id: str | None
    episode: str | None
    idempotency_key: str
    outcome: str
    transport: str | None = None
    receipt: str | None = None
    error: str | None = None
    attempts: int = 0  # the item's submission attempts so far, this run's included
    tries: int = 0  # transport-level tries in this run (retries included)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.item_id,
            "return_kind": self.return_kind,
            "school_id": self.school_id,
            "pupil_id": self.pupil_id,
            "episode": self.episode,
            "idempotency_key": self.idempotency_key,
            "outcome": self.outcome,
            "transport": self.transport,
            "receipt": self.receipt,
            "error": self.error,
            "attempts": self.attempts,
            "tries": self.tries,
        }


@dataclass
class SubmitReport:
    dry_run: bool
    items: list[SubmitOutcome] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Nothing was rejected and nothing is left waiting."""
        return not any(o.outcome in ("failed", "deferred") for o in self.items)

    def counts(self) -> dict[str, int]:
        counted = Counter(o.outcome for o in self.items)
        return {name: counted.get(name, 0) for name in OUTCOMES}

    def of(self, outcome: str) -> list[SubmitOutcome]:
        return [o for o in self.items if o.outcome == outcome]

    def to_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "ok": self.ok,
            "counts": self.counts(),
            "items": [o.to_dict() for o in self.items],
        }


def submit(
    settings: Settings,
    store: Store,
    *,
    dry_run: bool = False,
    school_id: str | None = None,
    transport_factory: TransportFactory = transport_for,
    environ: Mapping[str, str] | None = None,
    clock: Callable[[], datetime] | None = None,
    budget_seconds: float | None = None,
) -> SubmitReport:
    """Send every queued item (of ``school_id``, or all) once; see the module docs.

    ``dry_run`` sends nothing and changes nothing: it lists what would be sent and where (and
    any configuration problem that would stop it). A configuration problem (no transport, a
    credential that cannot be read) defers the items it affects; the others go on. Raises
    ConfigError for an unknown ``school_id``, and StoreError if the store fails (an item whose
    outcome could not be recorded is resent, under the same key, by the next run).
    """
    if school_id is not None:
        settings.school(school_id)
    run = _Run(
        settings, store, transport_factory, environ, clock or (lambda: datetime.now(UTC)), dry_run
    )
    budget = budget_seconds or settings.transports.submit_budget_seconds
    run.deadline = time.monotonic() + budget
    run.budget = budget
    report = SubmitReport(dry_run=dry_run)
    run_id = None if dry_run else store.start_run("submit")
    try:
        for item in store.outbox_items(state="queued", school_id=school_id):
            report.items.append(run.one(item))
    finally:
        run.close()
        if run_id is not None:
            store.finish_run(run_id, "ok" if report.ok else "failed", report.counts())
    return report


class _Run:
    """One submit run: the transports opened so far, and the ones found unusable."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        factory: TransportFactory,
        environ: Mapping[str, str] | None,
        clock: Callable[[], datetime],
        dry_run: bool,
    ) -> None:
        self.settings = settings
        self.store = store
        self.factory = factory
        self.environ = environ
        self.clock = clock
        self.dry_run = dry_run
        self.transports: dict[str, Transport] = {}
        # TOML key -> why this run offers that transport nothing more
        self.unavailable: dict[str, str] = {}
        self.deadline = float("inf")  # monotonic; items after it are left queued
        self.budget = 0.0

    def close(self) -> None:
        for transport in self.transports.values():
            transport.close()

    def one(self, item: OutboxItem) -> SubmitOutcome:
        def outcome(name: str, **values: Any) -> SubmitOutcome:
            return SubmitOutcome(
                item.id,
                item.return_kind,
                item.school_id,
                item.pupil_id,
                item.episode,
                item.idempotency_key,
                name,
                **{"attempts": item.attempts, **values},
            )

        if hashlib.sha256(item.payload).hexdigest() != item.sha256:
            error = (
                f"{item.return_kind} item {item.id}: the stored artefact does not match its "
                "SHA-256; it was not sent (re-render and queue the return again)"
            )
            if not self.dry_run:
                self._record_failure(item, error, label=None, tries=0)
            return outcome("failed", error=error)

        school, key, transport, problem = self._transport(item)
        if transport is not None and not self.dry_run and time.monotonic() >= self.deadline:
            transport, problem = (
                None,
                (
                    f"not attempted: this submit run's time budget ({self.budget:.0f}s, "
                    "[transports] submit_budget_seconds) was spent; it stays queued for the next run"
                ),
            )
        label = transport.label if transport is not None else None
        if transport is None:
            assert problem is not None
            if not self.dry_run:
                # No attempt was made; say why the item is still waiting.
                self.store.update_outbox(
                    item.id,
                    state="queued",
                    expected_state="queued",
                    last_error=problem,
                    at=self.clock(),
                )
                log.warning(
                    "outbox.deferred",
                    item=item.id,
                    return_kind=item.return_kind,
                    school=item.school_id,
                    transport=key,
                    attempted=False,
                    error=problem,
                )
            return outcome("deferred", error=problem)
        if self.dry_run:
            return outcome("would-send", transport=f"{label}: {transport.describe()}")

        assert school is not None and key is not None
        started = self.clock()
        attempt = item.attempts + 1
        claimed = self.store.update_outbox(
            item.id,
            state="queued",
            expected_state="queued",
            attempted=True,
            last_error=IN_DOUBT.format(attempt=attempt, at=started.isoformat(timespec="seconds")),
            at=started,
        )
        if not claimed:
            return outcome(
                "skipped", transport=label, error="another run moved it out of the queue first"
            )
        submission = Submission(
            item_id=item.id,
            return_kind=item.return_kind,
            school_id=item.school_id,
            pupil_id=item.pupil_id,
            episode=item.episode,
            idempotency_key=item.idempotency_key,
            sha256=item.sha256,
            xml=item.payload,
            made_at=started,
            attempt=attempt,
            csv=_csv_beside(item),
            school_name=school.name,
            laestab=school.laestab,
        )
        try:
            receipt = transport.send(submission)
        except SubmissionRejectedError as exc:
            self._record_failure(
                item, str(exc), label=label, tries=exc.tries, logged=exc.message, answer=exc.answer
            )
            return outcome(
                "failed", transport=label, error=str(exc), attempts=attempt, tries=exc.tries
            )
        except SubmissionDeferredError as exc:
            self._defer(item, str(exc), label, exc.tries, exc.transport_wide, answer=exc.answer)
            if exc.transport_wide:
                self.unavailable[key] = (
                    f"not attempted: {label} was unusable earlier in this run ({exc})"
                )
            elif exc.cause is not None:
                # Circuit breaker: a receiver that is too slow or keeps answering 429/5xx past
                # the retry budget would cost every other item the same wait.
                self.unavailable[key] = (
                    f"not attempted: {label} was set aside for the rest of this run after "
                    f"{exc.cause} ({exc})"
                )
            return outcome(
                "deferred", transport=label, error=str(exc), attempts=attempt, tries=exc.tries
            )
        except Exception as exc:  # a bug in a transport must not stop the other items
            error = (
                f"{label}: internal error {type(exc).__name__} while sending "
                f"{item.return_kind} item {item.id} (a bug: rerun with --debug and report "
                "it); it stays queued"
            )
            log.exception(
                "outbox.crashed",
                item=item.id,
                return_kind=item.return_kind,
                school=item.school_id,
                transport=label,
                error_type=type(exc).__name__,
            )
            self._defer(item, error, label, 0, transport_wide=False, log_it=False)
            return outcome("deferred", transport=label, error=error, attempts=attempt)
        state = self._record_success(item, transport, receipt)
        return outcome(
            state, transport=label, receipt=receipt.reference, attempts=attempt, tries=receipt.tries
        )

    def _transport(
        self, item: OutboxItem
    ) -> tuple[SchoolSettings | None, str | None, Transport | None, str | None]:
        """(school, TOML key, transport, None), or (..., None, why not) when it cannot go."""
        try:
            school = self.settings.school(item.school_id)
        except ConfigError as exc:
            return None, None, None, f"{exc}; the item stays queued until the school is back"
        try:
            key, _label = transport_target(item.return_kind, school)
        except ConfigError as exc:
            return school, None, None, str(exc)
        if key in self.unavailable:
            return school, key, None, self.unavailable[key]
        if key not in self.transports:
            try:
                self.transports[key] = self.factory(
                    self.settings, item.return_kind, school, environ=self.environ
                )
            except ConfigError as exc:  # no such table; a credential that cannot be read
                # Not kept in `unavailable`: the text names this item's school, and the other
                # schools of the same LA were told it was the first one's. Asking again is a
                # config lookup.
                return school, key, None, str(exc)
        return school, key, self.transports[key], None

    def _record_success(self, item: OutboxItem, transport: Transport, receipt: Receipt) -> str:
        state = "acknowledged" if receipt.acknowledged else "sent"
        done = self.clock()
        notification = Notification(
            kind=NOTIFICATION_KINDS[item.return_kind],
            school_id=item.school_id,
            pupil_id=item.pupil_id,
            episode_start=_episode_start(item.episode),
            made_at=done,
            channel=transport.kind,
            reference=receipt.reference,
        )
        # One transaction: the state, the receipt and the Notification land together or not
        # at all (then the next run resends under the same key, and records them).
        with self.store.transaction() as conn:
            moved = self.store.update_outbox(
                item.id,
                state=state,
                expected_state="queued",
                receipt=receipt.reference,
                last_error=None,
                remote=None,
                at=done,
                conn=conn,
            )
            if moved:
                self.store.add_notification(notification, at=done, conn=conn)
                # The finding this return answers closes now, not at the next scan.
                close_answered(self.store, item, done, conn=conn)
        log.info(
            "outbox.submitted",
            item=item.id,
            return_kind=item.return_kind,
            school=item.school_id,
            transport=transport.label,
            state=state,
            tries=receipt.tries,
            receipt=receipt.reference,
            recorded=moved,
        )
        return state

    def _record_failure(
        self,
        item: OutboxItem,
        error: str,
        *,
        label: str | None,
        tries: int,
        logged: str | None = None,
        answer: RemoteAnswer | None = None,
    ) -> None:
        self.store.update_outbox(
            item.id,
            state="failed",
            expected_state="queued",
            last_error=error,
            remote=_remote(answer),
            at=self.clock(),
        )
        # The receiver's own text (in ``error``) stays out of the log: it may quote the return.
        log.warning(
            "outbox.failed",
            item=item.id,
            return_kind=item.return_kind,
            school=item.school_id,
            transport=label,
            tries=tries,
            error=logged or error,
        )

    def _defer(
        self,
        item: OutboxItem,
        error: str,
        label: str | None,
        tries: int,
        transport_wide: bool,
        *,
        log_it: bool = True,
        answer: RemoteAnswer | None = None,
    ) -> None:
        self.store.update_outbox(
            item.id,
            state="queued",
            expected_state="queued",
            last_error=error,
            remote=_remote(answer),
            at=self.clock(),
        )
        if log_it:
            log.warning(
                "outbox.deferred",
                item=item.id,
                return_kind=item.return_kind,
                school=item.school_id,
                transport=label,
                tries=tries,
                transport_wide=transport_wide,
                error=error,
            )


def _remote(answer: RemoteAnswer | None) -> tuple[int | None, str | None, str | None] | None:
    """The receiver's answer as the outbox item keeps it (None: no answer came)."""
    if answer is None:
        return None
    return (answer.status, answer.classification, answer.body_sha256)


def _episode_start(episode: str | None) -> date | None:
    """The episode as a date (what the LAR rules match on); None when it is not one."""
    if not episode:
        return None
    try:
        return date.fromisoformat(episode)
    except ValueError:
        return None


def _csv_beside(item: OutboxItem) -> bytes | None:
    """The CSV written next to the item's XML, when that XML is still exactly the queued one."""
    if not item.artefact_path:
        return None
    xml_path = Path(item.artefact_path)
    try:
        if hashlib.sha256(xml_path.read_bytes()).hexdigest() != item.sha256:
            return None
        return xml_path.with_suffix(".csv").read_bytes()
    except OSError:
        return None


def retry_failed(store: Store, item_id: int, *, at: datetime | None = None) -> OutboxItem:
    """Offer a failed item again (``failed → queued``), once its cause is fixed; the next submit
    sends the same bytes under the same key. SubmissionError when it is not failed."""
    item = store.outbox_item(item_id)
    if item is None:
        raise SubmissionError(f"no outbox item {item_id} (see `registerwatch outbox list`)")
    if not store.update_outbox(item_id, state="queued", expected_state="failed", at=at):
        raise SubmissionError(
            f"outbox item {item_id} is {item.state}, not failed; only a failed item can be retried"
        )
    log.info("outbox.requeued", item=item_id, return_kind=item.return_kind, school=item.school_id)
    updated = store.outbox_item(item_id)
    assert updated is not None
    return updated
