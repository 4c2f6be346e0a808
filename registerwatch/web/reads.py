"""The lean reads behind the app's pages.

A page shows a school's pupils by MIS id, year and group, and a school's findings; the store's
general reads build full models (a Pupil with its address and contacts parsed from JSON and
validated, a Finding validated by pydantic), which cost the app more CPU than everything else
on a page together (issue 13's load test: 50 users, p95 under 300 ms). These reads take only
what the pages show, on the page's one connection:

- pupils as :class:`PupilView` (no address, contacts, date of birth or flags), built straight
  from the row;
- findings as the store's own StoredFinding, memoised by the stored row itself: the same row
  always makes the same finding, so a memo keyed by the row's content is never stale, in this
  process or any other worker, and needs no invalidation when a scan or an acknowledgement
  writes (a changed row is a new key);
- the schools page's counts for every school in three grouped queries instead of three per
  school;
- outbox items for lists without their artefacts.

Each statement is built once, at import, with bound parameters: building a SQLAlchemy select
per call (and its cache key) cost as much as running it.
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, fields
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from registerwatch.scan.results import PupilRef
from registerwatch.schema import Finding
from registerwatch.store import OutboxItem, StoredFinding, SyncStatus
from registerwatch.store import tables as t


@dataclass(frozen=True)
class PupilView:
    """What the app's pages show of a pupil (names only to users who may see the school)."""

    id: str
    school_id: str
    mis_id: str
    upn: str | None
    legal_forename: str | None
    legal_surname: str | None
    preferred_forename: str | None
    preferred_surname: str | None
    nc_year: str | None
    reg_group: str | None
    starting_day: date | None
    leaving_date: date | None

    @property
    def display_name(self) -> str | None:
        """Preferred names before legal ones, as the report shows them."""
        forename = self.preferred_forename or self.legal_forename
        surname = self.preferred_surname or self.legal_surname
        return " ".join(part for part in (forename, surname) if part) or None

    def ref(self) -> PupilRef:
        return PupilRef(mis_id=self.mis_id, upn=self.upn, name=self.display_name)


_pupils = sa.select(*(t.pupils.c[f.name] for f in fields(PupilView)))
_SCHOOL_PUPILS = _pupils.where(t.pupils.c.school_id == sa.bindparam("school_id")).order_by(
    t.pupils.c.id
)
_ONE_PUPIL = _pupils.where(t.pupils.c.id == sa.bindparam("pupil_id"))


def pupil_views(conn: sa.Connection, school_id: str) -> list[PupilView]:
    return [PupilView(*row) for row in conn.execute(_SCHOOL_PUPILS, {"school_id": school_id})]


def pupil_view(conn: sa.Connection, pupil_id: str) -> PupilView | None:
    row = conn.execute(_ONE_PUPIL, {"pupil_id": pupil_id}).first()
    return None if row is None else PupilView(*row)


# -- findings ----------------------------------------------------------------------------------

_fd = t.findings
# Every column, the evidence as its stored JSON text: the row must be hashable to key the memo.
_findings = sa.select(
    *(sa.cast(c, sa.Text).label("evidence") if c.name == "evidence" else c for c in _fd.columns)
).where(_fd.c.school_id == sa.bindparam("school_id"))
_SCHOOL_FINDINGS = _findings.order_by(_fd.c.fingerprint)
_ONE_FINDING = _findings.where(_fd.c.fingerprint == sa.bindparam("fingerprint"))
_PUPIL_FINDINGS = _SCHOOL_FINDINGS.where(_fd.c.pupil_id == sa.bindparam("pupil_id"))
_FINDING_MEMO_LIMIT = 10_000
_finding_memo: dict[tuple[Any, ...], StoredFinding] = {}
_memo_lock = threading.Lock()


def _stored_finding(r: sa.Row[Any]) -> StoredFinding:
    """The StoredFinding ``Store.load_findings`` makes of this row (tests/web prove them
    equal)."""
    first = {"date": r.first_date, "session": r.first_session} if r.first_date is not None else None
    last = {"date": r.last_date, "session": r.last_session} if r.last_date is not None else None
    finding = Finding.model_validate(
        {
            "rule": r.rule,
            "severity": r.severity,
            "school_id": r.school_id,
            "pupil_id": r.pupil_id,
            "first_session": first,
            "last_session": last,
            "due": r.due,
            "message": r.message,
            "evidence": json.loads(r.evidence),
            "fingerprint": r.fingerprint,
            "first_seen": r.first_seen,
            "last_seen": r.last_seen,
            "resolved_at": r.resolved_at,
        }
    )
    return StoredFinding(finding, r.status, r.acknowledged_at, r.ack_note, r.resolution)


def stored_findings(
    conn: sa.Connection,
    school_id: str,
    *,
    fingerprint: str | None = None,
    pupil_id: str | None = None,
) -> list[StoredFinding]:
    """A school's stored findings by fingerprint (or the one with ``fingerprint``, or those
    about ``pupil_id``)."""
    if fingerprint is not None and pupil_id is not None:
        raise TypeError("give fingerprint or pupil_id, not both")
    params = {"school_id": school_id, "fingerprint": fingerprint, "pupil_id": pupil_id}
    query = _SCHOOL_FINDINGS
    if fingerprint is not None:
        query = _ONE_FINDING
    elif pupil_id is not None:
        query = _PUPIL_FINDINGS
    found = []
    for row in conn.execute(query, params):
        key = tuple(row)
        stored = _finding_memo.get(key)
        if stored is None:
            stored = _stored_finding(row)
            with _memo_lock:
                if len(_finding_memo) >= _FINDING_MEMO_LIMIT:
                    _finding_memo.clear()
                _finding_memo[key] = stored
        found.append(stored)
    return found


_LATEST_SCAN = (
    sa.select(t.runs.c.started_at)
    .where(t.runs.c.command == "scan")
    .order_by(t.runs.c.started_at.desc(), t.runs.c.id.desc())
    .limit(1)
)


def latest_scan_start(conn: sa.Connection) -> datetime | None:
    started: datetime | None = conn.execute(_LATEST_SCAN).scalar()
    return started


# -- the schools page ----------------------------------------------------------------------------


# In the functions below ``school_ids`` None means every school.


class _PerSchool:
    """A query for every school, and its variant for some (``school_id IN (...)``, the ids a
    bound parameter), both built once."""

    def __init__(self, query: sa.Select[Any], column: sa.Column[Any]) -> None:
        self.every = query
        self.some = query.where(column.in_(sa.bindparam("school_ids", expanding=True)))

    def rows(self, conn: sa.Connection, school_ids: Collection[str] | None, **params: Any) -> Any:
        if school_ids is None:
            return conn.execute(self.every, params)
        return conn.execute(self.some, {**params, "school_ids": sorted(school_ids)})


_ss = t.sync_status
_SYNC_STATUSES = _PerSchool(
    sa.select(*(_ss.c[f.name] for f in fields(SyncStatus))), _ss.c.school_id
)


def sync_statuses(conn: sa.Connection, school_ids: Collection[str] | None) -> dict[str, SyncStatus]:
    rows = _SYNC_STATUSES.rows(conn, school_ids)
    return {row.school_id: SyncStatus(*row) for row in rows}


_OPEN_FINDING_COUNTS = _PerSchool(
    sa.select(
        _fd.c.school_id,
        _fd.c.severity,
        sa.func.count(),
        sa.func.sum(sa.case((_fd.c.due < sa.bindparam("today"), 1), else_=0)),
    )
    .where(_fd.c.status == "open")
    .group_by(_fd.c.school_id, _fd.c.severity),
    _fd.c.school_id,
)


def open_finding_counts(
    conn: sa.Connection, school_ids: Collection[str] | None, today: date
) -> dict[str, dict[str, int]]:
    """Open findings per school by severity, and "overdue" (due before ``today``): what
    ``Store.open_finding_counts`` gives for one school, for several in one query."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"overdue": 0})
    rows = _OPEN_FINDING_COUNTS.rows(conn, school_ids, today=today)
    for school_id, severity, n, late in rows:
        counts[school_id][str(severity)] = int(n)
        counts[school_id]["overdue"] += int(late or 0)
    return counts


_OUTBOX_STATE_COUNTS = _PerSchool(
    sa.select(t.outbox.c.school_id, t.outbox.c.state, sa.func.count()).group_by(
        t.outbox.c.school_id, t.outbox.c.state
    ),
    t.outbox.c.school_id,
)


def outbox_state_counts(
    conn: sa.Connection, school_ids: Collection[str] | None
) -> dict[str, dict[str, int]]:
    """Outbox items per school by state, for several schools in one query."""
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    rows = _OUTBOX_STATE_COUNTS.rows(conn, school_ids)
    for school_id, state, n in rows:
        counts[school_id][str(state)] = int(n)
    return counts


# -- the outbox ----------------------------------------------------------------------------------

_o = t.outbox
_outbox = sa.select(*(c for c in _o.columns if c.name != "payload")).order_by(_o.c.id)
_OUTBOX_LISTING = _PerSchool(_outbox, _o.c.school_id)
_PUPIL_OUTBOX = _PerSchool(_outbox.where(_o.c.pupil_id == sa.bindparam("pupil_id")), _o.c.school_id)


def outbox_listing(
    conn: sa.Connection,
    *,
    school_ids: Collection[str] | None = None,
    pupil_id: str | None = None,
) -> list[OutboxItem]:
    """Outbox items of these schools (None: every school), or about one pupil, oldest first,
    with their payloads left out (``payload`` is empty): lists show an item's kind, state and
    receipt, never its artefact, and the artefact's download reads the item whole."""
    if pupil_id is None:
        rows = _OUTBOX_LISTING.rows(conn, school_ids)
    else:
        rows = _PUPIL_OUTBOX.rows(conn, school_ids, pupil_id=pupil_id)
    return [OutboxItem(payload=b"", **row._mapping) for row in rows]
