"""One pupil: the register as a grid by week (codes coloured by category), the ledger's
observed changes and the MIS's amendment records, findings, and the returns made. Every view
is recorded in the audit trail (who looked at which pupil, when)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from registerwatch.schema import Mark, Session
from registerwatch.store import KINDS, AuditEntry, LedgerKind
from registerwatch.web import reads
from registerwatch.web.context import not_found, render, signed_in, state, visible_school

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri")
# Every ledger entry but the one sync writes for each mark it sees first: the changes.
CHANGE_KINDS = tuple(k for k in KINDS if k != LedgerKind.OBSERVED_NEW)


@dataclass
class Week:
    monday: date
    cells: dict[tuple[int, str], Mark] = field(default_factory=dict)

    def cell(self, weekday: int, session: str) -> Mark | None:
        return self.cells.get((weekday, session))


def register_weeks(marks: list[Mark]) -> list[Week]:
    """Marks by school week (Monday), newest week first; weekends are not shown."""
    weeks: dict[date, Week] = {}
    for mark in marks:
        weekday = mark.date.weekday()
        if weekday > 4:
            continue
        monday = mark.date - timedelta(days=weekday)
        week = weeks.setdefault(monday, Week(monday))
        week.cells[(weekday, str(mark.session))] = mark
    return [weeks[k] for k in sorted(weeks, reverse=True)]


def pupil_page(request: Request) -> Response:
    user = signed_in(request)
    web = state(request)
    pupil_id = request.path_params["pupil_id"]
    store = web.store
    with store.snapshot() as conn:
        pupil = reads.pupil_view(conn, pupil_id)
        if pupil is None:
            raise not_found()
        school_id = visible_school(user, pupil.school_id)
        findings = sorted(
            reads.stored_findings(conn, school_id, pupil_id=pupil_id),
            key=lambda s: (s.status != "open", s.finding.due or date.max),
        )
        page = {
            "pupil": pupil,
            "school": store.school(school_id, conn=conn),
            "weeks": register_weeks(store.marks(school_id, pupil_id=pupil_id, conn=conn)),
            "weekdays": list(enumerate(WEEKDAYS)),
            "sessions": [str(Session.AM), str(Session.PM)],
            "changes": store.ledger(school_id, pupil_id=pupil_id, kinds=CHANGE_KINDS, conn=conn),
            "amendments": store.amendments(school_id, pupil_id=pupil_id, conn=conn),
            "findings": findings,
            "notifications": store.notifications(school_id, pupil_id=pupil_id, conn=conn),
            "outbox": reads.outbox_listing(conn, school_ids=[school_id], pupil_id=pupil_id),
        }
    # Recorded once the page is read, before anyone sees it; a write of its own, outside the
    # read transaction (on SQLite a snapshot cannot turn into a writer).
    store.add_audit(AuditEntry(web.clock(), user.email, "pupil_viewed", school_id, pupil_id))
    return render(request, "pupil.html.j2", page, user=user)


routes = [Route("/pupils/{pupil_id}", pupil_page, methods=["GET"], name="pupil")]
