"""Schools (the home page): one row per school the user may see."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from registerwatch.codes import UnknownCodeError, session_statistics
from registerwatch.schema import School
from registerwatch.store import Store, SyncStatus
from registerwatch.web import reads
from registerwatch.web.context import render, signed_in, state

# A school whose last good sync is older than this stands out: the night's sync failed.
STALE_AFTER = timedelta(hours=36)


@dataclass(frozen=True)
class SchoolRow:
    school: School
    registers_complete_to: date | None
    errors: int
    warnings: int
    overdue: int
    queued: int
    sent: int
    failed: int
    last_sync_at: datetime | None
    last_sync_outcome: str | None
    attendance_rate: float | None  # this term to yesterday, percent (None: no marks)
    stale: bool


# Attendance this term, by (store, school, day, last sync attempt): marks change only when a
# sync writes them, and every sync attempt moves last_attempt_at, so an entry is never stale.
_ATTENDANCE_CACHE: dict[tuple[str, str, date, datetime | None], float | None] = {}
_ATTENDANCE_CACHE_LIMIT = 1000


def term_attendance(store: Store, school_id: str, today: date) -> float | None:
    calendar = store.calendar(school_id)
    if calendar is None:
        return None
    started = [t for t in calendar.terms if t.start < today]
    if not started:
        return None
    term = max(started, key=lambda t: t.start)
    counts = store.mark_code_counts(school_id, term.start, min(term.end, today - timedelta(days=1)))
    try:
        stats = session_statistics(counts)
    except UnknownCodeError:
        return None
    return stats.attendance_rate if stats.possible else None


def cached_term_attendance(
    store: Store, school_id: str, today: date, synced: datetime | None
) -> float | None:
    key = (store.display_url, school_id, today, synced)
    if key not in _ATTENDANCE_CACHE:
        if len(_ATTENDANCE_CACHE) >= _ATTENDANCE_CACHE_LIMIT:
            _ATTENDANCE_CACHE.clear()
        _ATTENDANCE_CACHE[key] = term_attendance(store, school_id, today)
    return _ATTENDANCE_CACHE[key]


def school_row(
    store: Store,
    school: School,
    today: date,
    now: datetime,
    status: SyncStatus | None,
    findings: dict[str, int],
    outbox: dict[str, int],
) -> SchoolRow:
    last_ok = status.last_success_at if status else None
    return SchoolRow(
        school=school,
        registers_complete_to=status.registers_complete_to if status else None,
        errors=findings.get("error", 0),
        warnings=findings.get("warning", 0),
        overdue=findings.get("overdue", 0),
        queued=outbox.get("queued", 0),
        sent=outbox.get("sent", 0) + outbox.get("acknowledged", 0),
        failed=outbox.get("failed", 0),
        last_sync_at=status.last_attempt_at if status else None,
        last_sync_outcome=status.last_outcome if status else None,
        attendance_rate=cached_term_attendance(
            store, school.id, today, status.last_attempt_at if status else None
        ),
        stale=last_ok is None or now - last_ok > STALE_AFTER,
    )


def schools_page(request: Request) -> Response:
    user = signed_in(request)
    web = state(request)
    today, now = web.today(), web.clock()
    # One read transaction for every school: one connection, one consistent picture, and
    # each count one grouped query for all schools.
    with web.store.snapshot() as conn:
        schools = [s for s in web.store.schools(conn=conn) if user.may_see(s.id)]
        only = None if user.all_schools else [s.id for s in schools]
        statuses = reads.sync_statuses(conn, only)
        findings = reads.open_finding_counts(conn, only, today)
        outbox = reads.outbox_state_counts(conn, only)
        last_scan = web.store.runs(command="scan", limit=1, conn=conn)
    rows = [
        school_row(
            web.store,
            s,
            today,
            now,
            statuses.get(s.id),
            findings.get(s.id, {}),
            outbox.get(s.id, {}),
        )
        for s in schools
    ]
    return render(
        request,
        "schools.html.j2",
        {"rows": rows, "last_scan": last_scan[0] if last_scan else None},
        user=user,
    )


routes = [Route("/", schools_page, methods=["GET"], name="schools")]
