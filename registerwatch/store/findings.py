"""Findings: what the scan saved, and their lifecycle (acknowledged, resolved, reopened)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa

from registerwatch.errors import StoreError
from registerwatch.schema import Finding, Session, SessionRef, Severity
from registerwatch.schema.construct import trusted_constructor
from registerwatch.store import tables as t
from registerwatch.store.base import (
    IN_LIST_LIMIT,
    SESSIONS,
    StoreBase,
    aware_utc,
    chunks,
    upsert,
)
from registerwatch.store.records import FindingEvent, StoredFinding

# Stored findings become models without validation: the scan validated each one before saving
# it, and a school's findings accumulate over the year (the scan reads them all each night).
_stored_session_ref = trusted_constructor(
    SessionRef, {"date": date(2025, 9, 3), "session": Session.AM}
)
_stored_finding = trusted_constructor(
    Finding,
    {
        "rule": "ATT001",
        "severity": Severity.ERROR,
        "school_id": "probe",
        "pupil_id": "probe:1",
        "first_session": _stored_session_ref({"date": date(2025, 9, 3), "session": Session.AM}),
        "last_session": None,
        "due": date(2025, 9, 10),
        "message": "probe",
        "evidence": {"codes": ["N"]},
        "fingerprint": "sha256:probe",
        "first_seen": datetime(2025, 9, 4, 19, 0, tzinfo=UTC),
        "last_seen": datetime(2025, 9, 4, 19, 0, tzinfo=UTC),
        "resolved_at": None,
    },
)


def _session_ref(day: date | None, session: str | None) -> SessionRef | None:
    if day is None or session is None:
        return None
    return _stored_session_ref({"date": day, "session": SESSIONS[session]})


def _update_findings(
    conn: sa.Connection, fingerprints: Iterable[str], values: Mapping[str, Any]
) -> int:
    fd = t.findings
    updated = 0
    for batch in chunks(sorted(set(fingerprints)), IN_LIST_LIMIT):
        updated += conn.execute(
            sa.update(fd).where(fd.c.fingerprint.in_(batch)).values(**values)
        ).rowcount
    return updated


def reopen_findings_on(
    conn: sa.Connection,
    fingerprints: Iterable[str],
    at: datetime,
    *,
    keep_acknowledgements: bool = False,
) -> int:
    """The statements behind :meth:`Store.reopen_findings`, for a caller holding only a write
    connection (``at`` must be aware)."""
    values: dict[str, Any] = {"first_seen": aware_utc(at)}
    if not keep_acknowledgements:
        values |= {"acknowledged_at": None, "ack_note": None}
    return _update_findings(conn, fingerprints, values)


def clear_acknowledgements_on(conn: sa.Connection, fingerprints: Iterable[str]) -> int:
    """The statements behind :meth:`Store.clear_acknowledgements`, for a caller holding only a
    write connection."""
    return _update_findings(conn, fingerprints, {"acknowledged_at": None, "ack_note": None})


class FindingsStore(StoreBase):
    def save_findings(
        self,
        findings: Iterable[Finding],
        *,
        at: datetime | None = None,
        conn: sa.Connection | None = None,
    ) -> int:
        """Insert or update findings by fingerprint (which every finding must carry).

        ``first_seen`` of a stored finding is kept; status is 'resolved' when ``resolved_at`` is
        set, else 'open'; an acknowledgement survives later saves. Returns rows written.
        """
        now = self._at(at)
        rows: dict[str, dict[str, Any]] = {}
        for f in findings:
            if not f.fingerprint:
                raise StoreError(f"finding {f.rule} for school {f.school_id!r} has no fingerprint")
            first, last = f.first_session, f.last_session
            rows[f.fingerprint] = {
                "fingerprint": f.fingerprint,
                "rule": f.rule,
                "severity": str(f.severity),
                "school_id": f.school_id,
                "pupil_id": f.pupil_id,
                "first_date": first.date if first else None,
                "first_session": str(first.session) if first else None,
                "last_date": last.date if last else None,
                "last_session": str(last.session) if last else None,
                "due": f.due,
                "message": f.message,
                "evidence": f.model_dump(mode="json", include={"evidence"})["evidence"],
                "status": "resolved" if f.resolved_at is not None else "open",
                "first_seen": self._at(f.first_seen) if f.first_seen else now,
                "last_seen": self._at(f.last_seen) if f.last_seen else now,
                "resolved_at": self._at(f.resolved_at) if f.resolved_at else None,
                # Set again by set_resolution when the finding is resolved late.
                "resolution": None,
            }
        update = [
            "rule",
            "severity",
            "school_id",
            "pupil_id",
            "first_date",
            "first_session",
            "last_date",
            "last_session",
            "due",
            "message",
            "evidence",
            "status",
            "last_seen",
            "resolved_at",
            "resolution",
        ]
        with self._write(conn) as c:
            upsert(c, t.findings, list(rows.values()), keys=["fingerprint"], update=update)
        return len(rows)

    def load_findings(
        self, school_id: str, *, status: str | None = None, conn: sa.Connection | None = None
    ) -> dict[str, StoredFinding]:
        """Stored findings of a school by fingerprint (all, or only 'open' / 'resolved')."""
        fd = t.findings
        query = sa.select(fd).where(fd.c.school_id == school_id).order_by(fd.c.fingerprint)
        if status is not None:
            query = query.where(fd.c.status == status)
        with self._read(conn) as c:
            rows = c.execute(query).all()
        result: dict[str, StoredFinding] = {}
        for r in rows:
            finding = _stored_finding(
                {
                    "rule": r.rule,
                    "severity": Severity(r.severity),
                    "school_id": r.school_id,
                    "pupil_id": r.pupil_id,
                    "first_session": _session_ref(r.first_date, r.first_session),
                    "last_session": _session_ref(r.last_date, r.last_session),
                    "due": r.due,
                    "message": r.message,
                    "evidence": r.evidence,
                    "fingerprint": r.fingerprint,
                    "first_seen": r.first_seen,
                    "last_seen": r.last_seen,
                    "resolved_at": r.resolved_at,
                }
            )
            result[r.fingerprint] = StoredFinding(
                finding, r.status, r.acknowledged_at, r.ack_note, r.resolution
            )
        return result

    def acknowledge_finding(
        self,
        fingerprint: str,
        note: str | None = None,
        *,
        at: datetime | None = None,
        conn: sa.Connection | None = None,
    ) -> bool:
        """Record that someone has seen a finding; False if there is no such finding."""
        fd = t.findings
        stmt = (
            sa.update(fd)
            .where(fd.c.fingerprint == fingerprint)
            .values(acknowledged_at=self._at(at), ack_note=note)
        )
        with self._write(conn) as c:
            return c.execute(stmt).rowcount == 1

    def reopen_findings(
        self,
        fingerprints: Iterable[str],
        at: datetime | None = None,
        *,
        keep_acknowledgements: bool = False,
        conn: sa.Connection | None = None,
    ) -> int:
        """Findings that were resolved and are seen again: first seen ``at``, acknowledgement
        withdrawn. ``save_findings`` keeps ``first_seen`` and the acknowledgement on purpose (an
        open finding seen again is the same breach); one that comes back after it was resolved
        is a new breach that nobody has seen. ``keep_acknowledgements``: the scan keeps them (an
        acknowledgement belongs to the fingerprint, issue 10). Call after ``save_findings``, in
        its transaction. Returns how many findings were updated (unknown fingerprints are
        ignored)."""
        now = self._at(at)
        with self._write(conn) as c:
            return reopen_findings_on(
                c, fingerprints, now, keep_acknowledgements=keep_acknowledgements
            )

    def clear_acknowledgements(
        self, fingerprints: Iterable[str], *, conn: sa.Connection | None = None
    ) -> int:
        """Withdraw the acknowledgement of findings (say, a warning acknowledged before its
        deadline that is now an error: nobody has seen the new severity). Returns how many
        findings were updated (unknown fingerprints are ignored)."""
        with self._write(conn) as c:
            return clear_acknowledgements_on(c, fingerprints)

    def set_resolution(
        self,
        fingerprints: Iterable[str],
        resolution: str | None,
        *,
        conn: sa.Connection | None = None,
    ) -> int:
        """How resolved findings ended ('late': their return was made after its due date).
        Call after ``save_findings``, which clears it. Returns how many were updated."""
        with self._write(conn) as c:
            return _update_findings(c, fingerprints, {"resolution": resolution})

    def add_finding_events(
        self, events: Iterable[FindingEvent], *, conn: sa.Connection | None = None
    ) -> int:
        """Append status changes to the findings' history (never rewritten)."""
        rows = [
            {
                "fingerprint": e.fingerprint,
                "at": self._at(e.at),
                "event": e.event,
                "cause": e.cause,
                "detail": e.detail,
            }
            for e in events
        ]
        if not rows:
            return 0
        with self._write(conn) as c:
            c.execute(sa.insert(t.finding_events), rows)
        return len(rows)

    def finding_history(
        self, fingerprint: str, *, conn: sa.Connection | None = None
    ) -> list[FindingEvent]:
        """A finding's status changes, oldest first."""
        ev = t.finding_events
        query = sa.select(ev).where(ev.c.fingerprint == fingerprint).order_by(ev.c.at, ev.c.id)
        with self._read(conn) as c:
            rows = c.execute(query).all()
        return [FindingEvent(r.fingerprint, r.at, r.event, r.cause, r.detail) for r in rows]
