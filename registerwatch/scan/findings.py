"""Working with stored findings between scans: list them, acknowledge one, and record a return
made outside registerwatch so that the matching LA-return finding closes on the next scan.

The errors here say what to do next; the CLI turns them into one line and exit status 2 (the
command was given something that does not exist).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Literal

from registerwatch.calendar import LONDON
from registerwatch.errors import RegisterwatchError
from registerwatch.scan.pipeline import (
    FindingStatus,
    PupilRef,
    ScanFinding,
    finding_order,
    pupil_ref,
    pupil_refs,
)
from registerwatch.scan.returns_state import ReturnState, return_states
from registerwatch.schema import Notification, NotificationKind, Pupil
from registerwatch.store import AuditEntry, FindingEvent, Store, StoredFinding

__all__ = [
    "EPISODE_KINDS",
    "MIN_PREFIX",
    "RECORDABLE_KINDS",
    "AmbiguousFingerprintError",
    "FindingNotFoundError",
    "HistoryEvent",
    "NotificationInputError",
    "RecordedNotification",
    "acknowledge",
    "find_finding",
    "finding_timeline",
    "list_findings",
    "record_notification",
]

# A fingerprint is a sha256 in hex; 8 characters (32 bits) make an accidental match between a
# school's few hundred findings very unlikely, and the lookup refuses an ambiguous prefix anyway.
MIN_PREFIX = 8

# The returns a person can record by hand (dfe_daily is made by the outbox, not by hand).
RECORDABLE_KINDS = (
    NotificationKind.SICKNESS,
    NotificationKind.CONTINUOUS_ABSENCE,
    NotificationKind.CME,
    NotificationKind.NEW_PUPIL,
    NotificationKind.DELETION,
    NotificationKind.ABSENCE_CAUSE,
)
# LAR002/LAR003 match a return to an absence episode by its start, which must lie inside the
# run of absence (validators.returns._common.return_made_within); without an episode start the
# day the return was made stands in, and that is usually after the run, so nothing would close.
EPISODE_KINDS = (
    NotificationKind.CONTINUOUS_ABSENCE,
    NotificationKind.CME,
    NotificationKind.ABSENCE_CAUSE,
)

StatusFilter = Literal["open", "resolved", "all"]


class FindingNotFoundError(RegisterwatchError):
    """No stored finding has this fingerprint: copy it from `registerwatch findings list`."""


class AmbiguousFingerprintError(RegisterwatchError):
    """More than one finding starts with this prefix: give more of the fingerprint."""


class NotificationInputError(RegisterwatchError):
    """A return cannot be recorded as given (unknown school or pupil, missing episode start)."""


def _stored_by_school(store: Store, school_id: str | None) -> dict[str, dict[str, StoredFinding]]:
    ids = [school_id] if school_id is not None else [s.id for s in store.schools()]
    return {sid: store.load_findings(sid) for sid in ids}


def _scan_finding(
    stored: StoredFinding, refs: dict[str, PupilRef], state: ReturnState | None = None
) -> ScanFinding:
    status: FindingStatus = "resolved" if stored.status == "resolved" else "open"
    return ScanFinding(
        stored.finding,
        status,
        stored.acknowledged_at,
        stored.ack_note,
        pupil_ref(stored.finding, refs),
        resolution=stored.resolution,
        return_state=state,
    )


def list_findings(
    store: Store, *, school_id: str | None = None, status: StatusFilter = "open"
) -> list[ScanFinding]:
    """Stored findings (every school in the store, or one), open, resolved or all, in the
    scan's order. Between scans there is no "new": a finding is open or resolved."""
    out: list[ScanFinding] = []
    for sid, stored in _stored_by_school(store, school_id).items():
        wanted = [s for s in stored.values() if status == "all" or s.status == status]
        if not wanted:
            continue
        refs = pupil_refs(store.pupils(sid))
        states = return_states((s.finding for s in wanted), store.outbox_items(school_id=sid))
        out.extend(_scan_finding(s, refs, states.get(s.finding.fingerprint or "")) for s in wanted)
    out.sort(key=finding_order)
    return out


def find_finding(store: Store, prefix: str) -> StoredFinding:
    """The one stored finding whose fingerprint starts with ``prefix`` (at least MIN_PREFIX
    hex characters, any case)."""
    wanted = prefix.strip().lower()
    if len(wanted) < MIN_PREFIX:
        raise FindingNotFoundError(
            f"fingerprint {prefix!r} is too short: give at least {MIN_PREFIX} characters "
            "(see `registerwatch findings list`)"
        )
    matches = [
        s
        for stored in _stored_by_school(store, None).values()
        for fp, s in stored.items()
        if fp.startswith(wanted)
    ]
    if not matches:
        raise FindingNotFoundError(
            f"no finding with fingerprint {prefix!r}: copy one from `registerwatch findings "
            "list --status all`"
        )
    if len(matches) > 1:
        raise AmbiguousFingerprintError(
            f"fingerprint {prefix!r} matches {len(matches)} findings: give more characters"
        )
    return matches[0]


def acknowledge(
    store: Store,
    prefix: str,
    note: str | None = None,
    *,
    at: datetime | None = None,
    by: str | None = None,
) -> ScanFinding:
    """Acknowledge the finding with this fingerprint (or unique prefix) with a note; returns it
    as stored afterwards. Acknowledging again replaces the note. ``by`` (a web user's email,
    or ``cli:<login>`` from the command line) is recorded in the audit trail in the same
    transaction, so the finding's history says who acknowledged it."""
    stored = find_finding(store, prefix)
    fingerprint = stored.finding.fingerprint or ""
    when = at or datetime.now(UTC)
    with store.transaction() as tx:
        if not store.acknowledge_finding(fingerprint, note, at=when, conn=tx):  # pragma: no cover
            raise FindingNotFoundError(f"finding {fingerprint} disappeared while acknowledging it")
        store.add_finding_events(
            [FindingEvent(fingerprint, when, "acknowledged", "acknowledgement", note)], conn=tx
        )
        if by is not None:
            store.add_audit(
                AuditEntry(when, by, "acknowledged", stored.finding.school_id, fingerprint, note),
                conn=tx,
            )
    refreshed = store.load_findings(stored.finding.school_id)[fingerprint]
    refs = pupil_refs(store.pupils(stored.finding.school_id))
    return _scan_finding(refreshed, refs)


@dataclass(frozen=True)
class RecordedNotification:
    notification: Notification
    created: bool  # False: the same return was already recorded
    pupil: PupilRef


def _find_pupil(store: Store, school_id: str, mis_id: str) -> Pupil:
    for pupil in store.pupils(school_id):
        if pupil.mis_id == mis_id:
            return pupil
    raise NotificationInputError(
        f"school {school_id!r} has no pupil with MIS id {mis_id!r} in the store: check the id "
        "(the MIS's own pupil id, as `registerwatch scan` shows it) or sync the school first"
    )


def _aware(made_at: datetime) -> datetime:
    # A time given without an offset is the school's local time.
    return made_at.replace(tzinfo=LONDON) if made_at.tzinfo is None else made_at


def record_notification(
    store: Store,
    *,
    school_id: str,
    kind: NotificationKind | str,
    pupil_mis_id: str,
    episode_start: date | None = None,
    made_at: datetime | None = None,
    channel: str = "recorded by hand",
    reference: str | None = None,
    at: datetime | None = None,
) -> RecordedNotification:
    """Record a return already made to the LA outside registerwatch (a phone call, a portal,
    an email), so that the matching LAR finding closes on the next scan.

    ``made_at`` defaults to now; a naive time is taken as Europe/London. Recording the same
    return twice stores it once (``created`` False).
    """
    kind = NotificationKind(kind)
    if kind not in RECORDABLE_KINDS:
        raise NotificationInputError(
            f"{kind.value} returns are recorded by the outbox, not by hand; choose one of "
            + ", ".join(k.value for k in RECORDABLE_KINDS)
        )
    if kind in EPISODE_KINDS and episode_start is None:
        raise NotificationInputError(
            f"a {kind.value} return needs --episode-start: the first day of the absence (the "
            "finding's first session), so that the return matches its episode"
        )
    if store.school(school_id) is None:
        known = ", ".join(s.id for s in store.schools()) or "none yet"
        raise NotificationInputError(
            f"no school {school_id!r} in the store (synced schools: {known}): sync it first"
        )
    pupil = _find_pupil(store, school_id, pupil_mis_id)
    notification = Notification(
        kind=kind,
        school_id=school_id,
        pupil_id=pupil.id,
        episode_start=episode_start,
        made_at=_aware(made_at or datetime.now(UTC)),
        channel=channel,
        reference=reference,
    )
    created = store.add_notification(notification, at=at)
    return RecordedNotification(notification, created, pupil_refs([pupil])[pupil.id])


@dataclass(frozen=True)
class HistoryEvent:
    """One line of a finding's history: a status change (``cause`` scan, acknowledgement,
    return sent, ...) or an action in the audit trail (``cause`` "audit"), with who did it when
    the audit trail knows (``by``: a web user's email, or ``cli:<login>``)."""

    at: datetime
    event: str
    cause: str
    detail: str | None
    by: str | None


def finding_timeline(store: Store, fingerprint: str) -> list[HistoryEvent]:
    """The finding's status changes, each with who made it when the audit trail recorded one
    at the same instant (an acknowledgement), and the audit trail's other entries about the
    finding (a return recorded, ...), oldest first."""
    audit = list(store.audit_entries(subject=fingerprint))
    matched: set[int] = set()
    lines: list[HistoryEvent] = []
    for event in store.finding_history(fingerprint):
        by = None
        for n, entry in enumerate(audit):
            if n not in matched and entry.action == event.event and entry.at == event.at:
                matched.add(n)
                by = entry.actor
                break
        lines.append(HistoryEvent(event.at, event.event, event.cause, event.detail, by))
    lines += [
        HistoryEvent(entry.at, entry.action.replace("_", " "), "audit", entry.detail, entry.actor)
        for n, entry in enumerate(audit)
        if n not in matched
    ]
    lines.sort(key=lambda line: line.at)
    return lines
