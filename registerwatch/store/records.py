"""Plain records the store hands back where no schema model fits."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, NamedTuple

from registerwatch.schema import Finding, Mark, Session


class MarkKey(NamedTuple):
    """What identifies a register entry within a school."""

    pupil_id: str
    date: date
    session: Session


# The fields of a Mark that make up its content: a difference in any of them is a change.
MARK_CONTENT_FIELDS = (
    "code",
    "vendor_code",
    "minutes_late",
    "comment",
    "recorded_at",
    "recorded_by",
    "source_ref",
)


@dataclass(frozen=True)
class MarkChange:
    """A stored mark whose content (or deletion flag) differs from the one just pulled."""

    key: MarkKey
    old: Mark
    new: Mark
    fields: tuple[str, ...]  # the content fields that differ, in MARK_CONTENT_FIELDS order
    restored: bool = False  # the stored mark had been flagged deleted and is back in the MIS

    @property
    def old_code(self) -> str:
        return self.old.code

    @property
    def new_code(self) -> str:
        return self.new.code

    @property
    def code_changed(self) -> bool:
        return "code" in self.fields


@dataclass
class MarkDiff:
    """What ``Store.upsert_marks`` found, compared with what the store held before."""

    new: list[Mark] = field(default_factory=list)
    changed: list[MarkChange] = field(default_factory=list)
    unchanged: list[MarkKey] = field(default_factory=list)
    duplicates: int = 0  # input marks dropped because a later one had the same key

    @property
    def code_changes(self) -> list[MarkChange]:
        return [c for c in self.changed if c.code_changed]

    def counts(self) -> dict[str, int]:
        return {
            "new": len(self.new),
            "changed": len(self.changed),
            "unchanged": len(self.unchanged),
            "duplicates": self.duplicates,
        }


@dataclass(frozen=True)
class DeletedMark:
    """A mark that disappeared from the MIS: kept, and flagged with when sync noticed."""

    mark: Mark
    deleted_at: datetime


@dataclass(frozen=True)
class QuarantineEntry:
    school_id: str
    resource: str
    record_ref: str | None
    field: str | None
    reason: str
    raw: str | None
    occurrences: int
    first_seen_at: datetime
    last_seen_at: datetime


@dataclass(frozen=True)
class StoredFinding:
    """A finding as persisted, with the store-side state the Finding model does not carry."""

    finding: Finding
    status: str  # 'open' | 'resolved'
    acknowledged_at: datetime | None = None
    ack_note: str | None = None
    resolution: str | None = None  # 'late': resolved by a return made after its due date


@dataclass(frozen=True)
class FindingEvent:
    """One status change of a finding: ``event`` (opened, resolved, reopened, acknowledged,
    resolved_late, ...) and its ``cause`` (scan, acknowledgement, return sent, ...)."""

    fingerprint: str
    at: datetime
    event: str
    cause: str
    detail: str | None = None


@dataclass(frozen=True)
class SyncStatus:
    """What sync last achieved for a school (see ``store.freshness``)."""

    school_id: str
    registers_complete_to: date | None
    last_success_at: datetime | None
    last_attempt_at: datetime
    last_outcome: str  # 'ok' | 'failed'
    last_error: str | None


@dataclass(frozen=True)
class OutboxItem:
    id: int
    return_kind: str
    school_id: str
    pupil_id: str | None
    episode: str | None
    idempotency_key: str
    sha256: str
    artefact_path: str | None
    payload: bytes
    state: str  # 'queued' | 'sent' | 'acknowledged' | 'failed'
    attempts: int
    last_error: str | None
    receipt: str | None
    created_at: datetime
    updated_at: datetime
    remote_status: int | None = None  # the receiver's last answer: status / reply code,
    remote_class: str | None = None  # its classification (rejected, rate-limited...),
    remote_sha256: str | None = None  # and the SHA-256 of its body (never the body)


@dataclass(frozen=True)
class RunRecord:
    id: int
    command: str
    started_at: datetime
    finished_at: datetime | None
    outcome: str | None
    counts: dict[str, Any]
    ledger_tip: str | None = None
