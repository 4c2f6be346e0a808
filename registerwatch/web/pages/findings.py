"""A school's findings (filtered, by due date) and one finding: its sessions, history, the
acknowledgement form and the form recording a return made outside registerwatch.

Acknowledging and recording go through the same functions as ``registerwatch findings ack``
and ``notify record`` (``registerwatch.scan.findings``), so the CLI sees what the app did;
the app adds an audit entry naming who did it, which the finding's history shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from registerwatch.calendar import LONDON
from registerwatch.errors import RegisterwatchError
from registerwatch.scan.findings import RECORDABLE_KINDS, acknowledge, record_notification
from registerwatch.scan.results import PupilRef, ScanFinding, pupil_ref
from registerwatch.scan.returns_state import NOTIFICATION_KIND_OF_RULE, return_states
from registerwatch.schema import Finding
from registerwatch.store import AuditEntry, Connection, Store, StoredFinding, UserRecord
from registerwatch.validators import Rule
from registerwatch.validators.registry import all_rules
from registerwatch.web import reads
from registerwatch.web.context import (
    check_csrf,
    not_found,
    render,
    signed_in,
    state,
    visible_school,
)
from registerwatch.web.reads import PupilView

STATUSES = ("new", "open", "acknowledged", "resolved", "resolved-late")
# Rows per page of a school's findings: a school with hundreds of findings gets "next page"
# links rather than one page that costs the server (and the browser) hundreds of rows.
PAGE_SIZE = 100
SEVERITIES = ("error", "warning", "info")
MAX_NOTE = 2000


@cache
def rules_by_code() -> dict[str, Rule]:
    return {rule.code: rule for rule in all_rules(include_removed=True)}


def finding_status(item: ScanFinding, latest_scan: datetime | None) -> str:
    """new / open / acknowledged / resolved / resolved-late, as the filter names them."""
    if item.status == "resolved":
        return "resolved-late" if item.late else "resolved"
    if item.acknowledged:
        return "acknowledged"
    first = item.finding.first_seen
    if latest_scan is not None and first is not None and first >= latest_scan:
        return "new"
    return "open"


@dataclass(frozen=True)
class FindingRow:
    item: ScanFinding
    status: str
    rule: Rule | None
    pupil: PupilView | None
    overdue: bool


def scan_findings(
    conn: Connection,
    school_id: str,
    stored: list[StoredFinding],
    pupils: dict[str, PupilView],
) -> list[ScanFinding]:
    """A school's stored findings as ``findings list`` shows them
    (``scan.findings.list_findings``), with the state of the return each asks for."""
    outbox = reads.outbox_listing(conn, school_ids=[school_id])
    states = return_states((s.finding for s in stored), outbox)
    return [
        ScanFinding(
            s.finding,
            "resolved" if s.status == "resolved" else "open",
            s.acknowledged_at,
            s.ack_note,
            _pupil_ref(s.finding, pupils),
            resolution=s.resolution,
            return_state=states.get(s.finding.fingerprint or ""),
        )
        for s in stored
    ]


def _pupil_ref(finding: Finding, pupils: dict[str, PupilView]) -> PupilRef | None:
    """As ``scan.results.pupil_ref``: a pupil the store no longer holds is shown by the MIS id
    in its store id."""
    known = pupils.get(finding.pupil_id or "")
    return known.ref() if known is not None else pupil_ref(finding, {})


def finding_rows(
    conn: Connection, school_id: str, today: date, pupils: dict[str, PupilView]
) -> list[FindingRow]:
    latest = reads.latest_scan_start(conn)
    rules = rules_by_code()
    rows = []
    stored = reads.stored_findings(conn, school_id)
    for item in scan_findings(conn, school_id, stored, pupils):
        f = item.finding
        rows.append(
            FindingRow(
                item=item,
                status=finding_status(item, latest),
                rule=rules.get(f.rule),
                pupil=pupils.get(f.pupil_id or ""),
                overdue=item.status == "open" and f.due is not None and f.due < today,
            )
        )
    # By due date (none last), then severity, then rule.
    rows.sort(
        key=lambda r: (
            r.item.finding.due or date.max,
            SEVERITIES.index(str(r.item.finding.severity)),
            r.item.finding.rule,
        )
    )
    return rows


def _wanted(row: FindingRow, filters: dict[str, str]) -> bool:
    f = row.item.finding
    if filters["status"] == "open":
        # "open" in the filter: everything not yet resolved that nobody acknowledged
        if row.status not in ("open", "new"):
            return False
    elif filters["status"] not in ("", "all") and row.status != filters["status"]:
        return False
    if filters["rule"] and f.rule != filters["rule"]:
        return False
    if filters["severity"] and str(f.severity) != filters["severity"]:
        return False
    if filters["year"] and (row.pupil is None or row.pupil.nc_year != filters["year"]):
        return False
    return not (filters["group"] and (row.pupil is None or row.pupil.reg_group != filters["group"]))


def _page_number(text: str | None) -> int:
    try:
        return int(text or 1)
    except ValueError as exc:
        raise HTTPException(400, f"{text!r} is not a page number.") from exc


def _page_link(filters: dict[str, str], page: int) -> str:
    """The query string of another page of the same filters (none of them is pupil data)."""
    return "?" + urlencode({**filters, "page": str(page)})


def school_findings(request: Request) -> Response:
    user = signed_in(request)
    web = state(request)
    school_id = visible_school(user, request.path_params["school_id"])
    with web.store.snapshot() as conn:
        school = web.store.school(school_id, conn=conn)
        if school is None:
            raise not_found()
        pupils = {p.id: p for p in reads.pupil_views(conn, school_id)}
        rows = finding_rows(conn, school_id, web.today(), pupils)
    q = request.query_params
    filters = {key: q.get(key, "") for key in ("rule", "severity", "status", "year", "group")}
    if "status" not in q:
        filters["status"] = "open"
    matching = [r for r in rows if _wanted(r, filters)]
    pages = max(1, -(-len(matching) // PAGE_SIZE))
    page = min(max(_page_number(q.get("page")), 1), pages)
    shown = matching[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    choices = {
        "rule": sorted({r.item.finding.rule for r in rows}),
        "severity": list(SEVERITIES),
        "status": list(STATUSES),
        "year": sorted(
            {p.nc_year for p in pupils.values() if p.nc_year}, key=lambda y: (len(y), y)
        ),
        "group": sorted({p.reg_group for p in pupils.values() if p.reg_group}),
    }
    return render(
        request,
        "findings.html.j2",
        {
            "school": school,
            "rows": shown,
            "matching": len(matching),
            "first": (page - 1) * PAGE_SIZE + 1,
            "total": len(rows),
            "page": page,
            "pages": pages,
            "page_links": {
                "previous": _page_link(filters, page - 1) if page > 1 else None,
                "next": _page_link(filters, page + 1) if page < pages else None,
            },
            "filters": filters,
            "choices": choices,
        },
        user=user,
    )


def _visible_finding(
    store: Store, conn: Connection, user: UserRecord, fingerprint: str
) -> tuple[ScanFinding, PupilView | None]:
    """The finding, if the user may see its school (else 404), and its pupil."""
    school_id = visible_school(user, store.finding_school(fingerprint, conn=conn))
    found = reads.stored_findings(conn, school_id, fingerprint=fingerprint)
    if not found:
        raise not_found()  # pragma: no cover - deleted between the two reads
    pupil_id = found[0].finding.pupil_id
    pupil = reads.pupil_view(conn, pupil_id) if pupil_id is not None else None
    pupils = {pupil.id: pupil} if pupil is not None else {}
    return scan_findings(conn, school_id, found, pupils)[0], pupil


def visible_finding(store: Store, user: UserRecord, fingerprint: str) -> ScanFinding:
    with store.snapshot() as conn:
        return _visible_finding(store, conn, user, fingerprint)[0]


@dataclass(frozen=True)
class HistoryLine:
    at: datetime
    what: str
    who: str | None
    detail: str | None


def history(store: Store, conn: Connection, item: ScanFinding) -> list[HistoryLine]:
    """The finding's status changes (the scan's and acknowledgements) merged with the audit
    entries about it (who acknowledged, who recorded a return) and about the outbox item of
    its return (who downloaded or retried it), and the return's own queued / sent times."""
    fingerprint = item.fingerprint
    lines = [
        HistoryLine(e.at, f"{e.event} ({e.cause})", None, e.detail)
        for e in store.finding_history(fingerprint, conn=conn)
    ]
    subjects = [fingerprint]
    state = item.return_state
    if state is not None:
        subjects.append(f"outbox:{state.item_id}")
        lines.append(HistoryLine(state.queued_at, f"return queued ({state.kind})", None, None))
        if state.sent_at is not None:
            lines.append(HistoryLine(state.sent_at, f"return {state.state}", None, state.receipt))
    lines += [
        HistoryLine(a.at, a.action.replace("_", " "), a.actor, a.detail)
        for subject in subjects
        for a in store.audit_entries(subject=subject, conn=conn)
    ]
    lines.sort(key=lambda line: (line.at, line.who is not None))
    return lines


def finding_page(request: Request) -> Response:
    user = signed_in(request)
    web = state(request)
    fingerprint = request.path_params["fingerprint"]
    with web.store.snapshot() as conn:
        item, pupil = _visible_finding(web.store, conn, user, fingerprint)
        f = item.finding
        marks: list[Any] = []
        if f.pupil_id is not None and f.first_session is not None:
            last = f.last_session or f.first_session
            marks = web.store.marks(
                f.school_id, f.first_session.date, last.date, pupil_id=f.pupil_id, conn=conn
            )
        lines = history(web.store, conn, item)
    kind = NOTIFICATION_KIND_OF_RULE.get(f.rule)
    return render(
        request,
        "finding.html.j2",
        {
            "item": item,
            "f": f,
            "rule": rules_by_code().get(f.rule),
            "pupil": pupil,
            "marks": marks,
            "history": lines,
            "kinds": [k.value for k in RECORDABLE_KINDS],
            "suggested_kind": kind.value if kind else "",
            "now_local": web.clock().astimezone(LONDON).strftime("%Y-%m-%dT%H:%M"),
            "may_act": user.role in ("data-manager", "admin"),
            "error": request.query_params.get("error"),
        },
        user=user,
    )


async def acknowledge_finding(request: Request) -> Response:
    user = signed_in(request, "data-manager")
    form = await request.form()
    check_csrf(request, form)
    web = state(request)
    fingerprint = request.path_params["fingerprint"]
    # another school's (or a missing) fingerprint answers 404 before anything is written
    await run_in_threadpool(visible_finding, web.store, user, fingerprint)
    note = str(form.get("note") or "").strip()
    if not note or len(note) > MAX_NOTE:
        raise HTTPException(400, f"An acknowledgement needs a note of 1 to {MAX_NOTE} characters.")

    def act() -> None:
        now = web.clock()
        # the audit entry naming the user is written in the acknowledgement's transaction
        acknowledge(web.store, fingerprint, note, at=now, by=user.email)

    await run_in_threadpool(act)
    return RedirectResponse(request.url_for("finding", fingerprint=fingerprint), status_code=303)


def _parse_local(text: str) -> datetime | None:
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise HTTPException(400, f"{text!r} is not a date and time.") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=LONDON)


def _parse_day(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError as exc:
        raise HTTPException(400, f"{text!r} is not a date.") from exc


async def record_return(request: Request) -> Response:
    user = signed_in(request, "data-manager")
    form = await request.form()
    check_csrf(request, form)
    web = state(request)
    fingerprint = request.path_params["fingerprint"]
    item = await run_in_threadpool(visible_finding, web.store, user, fingerprint)
    if item.pupil is None:
        raise HTTPException(
            400, "This finding is not about one pupil: there is no return to record."
        )
    kind = str(form.get("kind") or "")
    channel = str(form.get("channel") or "").strip() or "recorded by hand"
    reference = str(form.get("reference") or "").strip() or None
    episode = _parse_day(str(form.get("episode_start") or ""))
    made_at = _parse_local(str(form.get("made_at") or ""))

    def act() -> None:
        now = web.clock()
        recorded = record_notification(
            web.store,
            school_id=item.finding.school_id,
            kind=kind,
            pupil_mis_id=item.pupil.mis_id if item.pupil else "",
            episode_start=episode,
            made_at=made_at or now,
            channel=channel,
            reference=reference,
            at=now,
        )
        detail = f"{kind} via {channel}" + (f", reference {reference}" if reference else "")
        if not recorded.created:
            detail += " (already recorded)"
        web.store.add_audit(
            AuditEntry(
                now,
                user.email,
                "notification_recorded",
                item.finding.school_id,
                fingerprint,
                detail,
            )
        )

    try:
        await run_in_threadpool(act)
    except (RegisterwatchError, ValueError) as exc:
        raise HTTPException(400, str(exc)) from exc
    return RedirectResponse(request.url_for("finding", fingerprint=fingerprint), status_code=303)


routes = [
    Route(
        "/schools/{school_id}/findings", school_findings, methods=["GET"], name="school_findings"
    ),
    Route("/findings/{fingerprint}", finding_page, methods=["GET"], name="finding"),
    Route(
        "/findings/{fingerprint}/acknowledge",
        acknowledge_finding,
        methods=["POST"],
        name="acknowledge",
    ),
    Route("/findings/{fingerprint}/returns", record_return, methods=["POST"], name="record_return"),
]
