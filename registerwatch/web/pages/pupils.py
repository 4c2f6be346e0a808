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
    school_id = visible_school(user, web.store.pupil_school(pupil_id))
    pupil = next((p for p in web.store.pupils(school_id) if p.id == pupil_id), None)
    if pupil is None:
        raise not_found()
    marks = web.store.marks(school_id, pupil_id=pupil_id)
    findings = sorted(
        (s for s in web.store.load_findings(school_id).values() if s.finding.pupil_id == pupil_id),
        key=lambda s: (s.status != "open", s.finding.due or date.max),
    )
    web.store.add_audit(AuditEntry(web.clock(), user.email, "pupil_viewed", school_id, pupil_id))
    return render(
        request,
        "pupil.html.j2",
        {
            "pupil": pupil,
            "school": web.store.school(school_id),
            "weeks": register_weeks(marks),
            "weekdays": list(enumerate(WEEKDAYS)),
            "sessions": [str(Session.AM), str(Session.PM)],
            "changes": web.store.ledger(school_id, pupil_id=pupil_id, kinds=CHANGE_KINDS),
            "amendments": web.store.amendments(school_id, pupil_id=pupil_id),
            "findings": findings,
            "notifications": web.store.notifications(school_id, pupil_id=pupil_id),
            "outbox": [
                i for i in web.store.outbox_items(school_id=school_id) if i.pupil_id == pupil_id
            ],
        },
        user=user,
    )


routes = [Route("/pupils/{pupil_id}", pupil_page, methods=["GET"], name="pupil")]
