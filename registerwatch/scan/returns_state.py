"""The link between LA-return findings and the returns registerwatch made for them.

A LAR finding asks for a return; the night renders it and queues it in the outbox, and
``submit`` sends it. Each finding a return answers carries that return's outbox state
(:func:`return_states`), so the report says "will be sent" rather than "make the return" while
it is queued. When ``submit`` sends it, the finding closes at once (:func:`close_answered`,
inside submit's transaction), not only at the next scan.

A return made after the finding's due date resolves it as **late** (kept and counted: the
scan JSON, the findings list and the report show it), for LAR001, LAR002, LAR004 and LAR005
(issue 9). LAR003 (children missing education) has no due date of its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from registerwatch.calendar import LONDON
from registerwatch.schema import Finding, Notification, NotificationKind
from registerwatch.store import Connection, FindingEvent, OutboxItem, Store, StoredFinding

__all__ = [
    "LATE_RULES",
    "RETURN_KIND_OF_RULE",
    "ReturnState",
    "answers",
    "close_answered",
    "is_late",
    "late_resolutions",
    "return_states",
]

# Which return answers which rule's finding (the outbox's return kinds).
RETURN_KIND_OF_RULE: Mapping[str, str] = {
    "LAR001": "la-sickness",
    "LAR002": "la-continuous-absence",
    "LAR003": "la-cme",
    "LAR004": "la-new-pupil",
    "LAR005": "la-deletion",
}
NOTIFICATION_KIND_OF_RULE: Mapping[str, NotificationKind] = {
    "LAR001": NotificationKind.SICKNESS,
    "LAR002": NotificationKind.CONTINUOUS_ABSENCE,
    "LAR003": NotificationKind.CME,
    "LAR004": NotificationKind.NEW_PUPIL,
    "LAR005": NotificationKind.DELETION,
}
LATE_RULES = frozenset({"LAR001", "LAR002", "LAR004", "LAR005"})


@dataclass(frozen=True)
class ReturnState:
    """The outbox item of the return that answers a finding."""

    kind: str
    state: str  # queued | sent | acknowledged | failed
    queued_at: datetime
    sent_at: datetime | None
    receipt: str | None
    item_id: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "state": self.state,
            "queued_at": self.queued_at.isoformat(),
            "sent_at": self.sent_at.isoformat() if self.sent_at else None,
            "receipt": self.receipt,
        }

    def chip(self) -> str:
        """How a person reads it: "queued 07:00", "sent 07:02, receipt …", "failed"."""
        if self.state == "queued":
            return f"will be sent: queued {self.queued_at.astimezone(LONDON):%d %b %H:%M}"
        if self.state in ("sent", "acknowledged") and self.sent_at is not None:
            text = f"{self.state} {self.sent_at.astimezone(LONDON):%d %b %H:%M}"
            return f"{text}, receipt {self.receipt}" if self.receipt else text
        return "return failed: see `registerwatch outbox list`"


def _as_date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def answers(finding: Finding, return_kind: str, pupil_id: str | None, episode: date | None) -> bool:
    """Whether a return of ``return_kind`` for ``pupil_id`` (and episode) answers ``finding``."""
    if RETURN_KIND_OF_RULE.get(finding.rule) != return_kind or finding.pupil_id != pupil_id:
        return False
    first, last = finding.first_session, finding.last_session
    if episode is None or first is None:
        return True
    return first.date <= episode <= (last.date if last else first.date)


def is_late(finding: Finding, made_at: datetime) -> bool:
    """A return made (London date) after the finding's due date, for the rules that have one."""
    return (
        finding.rule in LATE_RULES
        and finding.due is not None
        and made_at.astimezone(LONDON).date() > finding.due
    )


def return_states(
    findings: Iterable[Finding], items: Iterable[OutboxItem]
) -> dict[str, ReturnState]:
    """Fingerprint -> the state of the latest outbox item that answers it."""
    by_key: dict[tuple[str, str | None], list[OutboxItem]] = {}
    for item in items:
        by_key.setdefault((item.return_kind, item.pupil_id), []).append(item)
    out: dict[str, ReturnState] = {}
    for f in findings:
        kind = RETURN_KIND_OF_RULE.get(f.rule)
        if kind is None or not f.fingerprint:
            continue
        matching = [
            i
            for i in by_key.get((kind, f.pupil_id), [])
            if answers(f, kind, i.pupil_id, _as_date(i.episode))
        ]
        if not matching:
            continue
        item = max(matching, key=lambda i: i.id)
        sent = item.state in ("sent", "acknowledged")
        out[f.fingerprint] = ReturnState(
            kind=item.return_kind,
            state=item.state,
            queued_at=item.created_at,
            sent_at=item.updated_at if sent else None,
            receipt=item.receipt,
            item_id=item.id,
        )
    return out


def late_resolutions(
    resolved: Iterable[Finding], notifications: Iterable[Notification]
) -> set[str]:
    """Of findings a scan resolves, those resolved by a return made after their due date."""
    by_pupil: dict[tuple[NotificationKind, str | None], list[Notification]] = {}
    for n in notifications:
        by_pupil.setdefault((n.kind, n.pupil_id), []).append(n)
    late: set[str] = set()
    for f in resolved:
        kind = NOTIFICATION_KIND_OF_RULE.get(f.rule)
        if kind is None or f.rule not in LATE_RULES:
            continue
        made = [
            n
            for n in by_pupil.get((kind, f.pupil_id), [])
            if answers(f, RETURN_KIND_OF_RULE[f.rule], f.pupil_id, n.episode_start)
        ]
        if made and is_late(f, min(n.made_at for n in made)):
            late.add(f.fingerprint or "")
    return late


def close_answered(
    store: Store,
    item: OutboxItem,
    made_at: datetime,
    *,
    conn: Connection,
) -> list[str]:
    """Resolve the open findings a just-sent return answers (late when made after their due
    date), recording each in the finding's history. Returns their fingerprints."""
    episode = _as_date(item.episode)
    stored: dict[str, StoredFinding] = store.load_findings(item.school_id, status="open", conn=conn)
    answered = [
        s.finding
        for s in stored.values()
        if answers(s.finding, item.return_kind, item.pupil_id, episode)
    ]
    if not answered:
        return []
    store.save_findings(
        [f.model_copy(update={"resolved_at": made_at}) for f in answered], at=made_at, conn=conn
    )
    late = [f.fingerprint or "" for f in answered if is_late(f, made_at)]
    if late:
        store.set_resolution(late, "late", conn=conn)
    store.add_finding_events(
        [
            FindingEvent(
                f.fingerprint or "",
                made_at,
                "resolved_late" if (f.fingerprint or "") in late else "resolved",
                "return sent",
                f"{item.return_kind} outbox item {item.id}",
            )
            for f in answered
        ],
        conn=conn,
    )
    return [f.fingerprint or "" for f in answered]
