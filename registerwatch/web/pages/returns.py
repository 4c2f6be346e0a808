"""Returns: the outbox by day (kind, school, pupil, state, receipt, attempts); the artefact's
download for data managers and admins (audited); putting a failed item back in the queue
(admins, audited), as ``registerwatch outbox retry`` does."""

from __future__ import annotations

from collections import defaultdict
from datetime import date

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from registerwatch.calendar import LONDON
from registerwatch.errors import SubmissionError
from registerwatch.outbox.submit import retry_failed
from registerwatch.store import AuditEntry, OutboxItem, Store, UserRecord
from registerwatch.web import reads
from registerwatch.web.context import check_csrf, not_found, render, signed_in, state

MAX_DAYS = 60  # days of outbox shown


def visible_item(store: Store, user: UserRecord, item_id: int) -> OutboxItem:
    item = store.outbox_item(item_id)
    if item is None or not user.may_see(item.school_id):
        raise not_found()
    return item


def artefact_name(item: OutboxItem) -> tuple[str, str]:
    """(file name, media type): XML returns are XML; anything else is the CSV the LA takes."""
    is_xml = item.payload.lstrip()[:1] == b"<"
    suffix, media = (".xml", "application/xml") if is_xml else (".csv", "text/csv")
    return f"{item.return_kind}-{item.school_id}-{item.id}{suffix}", media


def returns_page(request: Request) -> Response:
    user = signed_in(request)
    web = state(request)
    by_day: dict[date, list[OutboxItem]] = defaultdict(list)
    with web.store.snapshot() as conn:
        school_ids = None if user.all_schools else user.schools
        for item in reads.outbox_listing(conn, school_ids=school_ids):
            by_day[item.created_at.astimezone(LONDON).date()].append(item)
    days = sorted(by_day, reverse=True)[:MAX_DAYS]
    return render(
        request,
        "returns.html.j2",
        {
            "days": [(d, sorted(by_day[d], key=lambda i: i.id)) for d in days],
            "may_download": user.role in ("data-manager", "admin"),
            "may_retry": user.role == "admin",
        },
        user=user,
    )


def download(request: Request) -> Response:
    user = signed_in(request, "data-manager")
    web = state(request)
    item = visible_item(web.store, user, request.path_params["item_id"])
    name, media = artefact_name(item)
    web.store.add_audit(
        AuditEntry(
            web.clock(),
            user.email,
            "artefact_downloaded",
            item.school_id,
            f"outbox:{item.id}",
            item.return_kind,
        )
    )
    return Response(
        item.payload,
        media_type=media,
        headers={"content-disposition": f'attachment; filename="{name}"'},
    )


async def retry(request: Request) -> Response:
    user = signed_in(request, "admin")
    form = await request.form()
    check_csrf(request, form)
    web = state(request)
    item = await run_in_threadpool(visible_item, web.store, user, request.path_params["item_id"])

    def act() -> None:
        retry_failed(web.store, item.id, at=web.clock())
        web.store.add_audit(
            AuditEntry(
                web.clock(),
                user.email,
                "return_retried",
                item.school_id,
                f"outbox:{item.id}",
                item.return_kind,
            )
        )

    try:
        await run_in_threadpool(act)
    except SubmissionError as exc:
        raise HTTPException(409, str(exc)) from exc
    return RedirectResponse(request.url_for("returns"), status_code=303)


routes = [
    Route("/returns", returns_page, methods=["GET"], name="returns"),
    Route("/returns/{item_id:int}/artefact", download, methods=["GET"], name="artefact"),
    Route("/returns/{item_id:int}/retry", retry, methods=["POST"], name="retry"),
]
