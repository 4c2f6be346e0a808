"""Accounts: admins list users, add one (role, schools and an initial password, through the
same ``create_user`` as ``registerwatch users add``) and disable or re-enable them, each
audited under the admin's email; every user may turn their own morning email on or off.
Setting a forgotten password stays on the command line (``users set-password``)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from registerwatch.store import ROLES
from registerwatch.web.accounts import AccountError, create_user, set_disabled, set_morning_email
from registerwatch.web.context import check_csrf, not_found, render, signed_in, state


def users_page(request: Request) -> Response:
    user = signed_in(request, "admin")
    web = state(request)
    return render(
        request,
        "users.html.j2",
        {"users": web.store.users(), "schools": web.store.schools(), "roles": ROLES},
        user=user,
    )


async def add_user(request: Request) -> Response:
    admin = signed_in(request, "admin")
    form = await request.form()
    check_csrf(request, form)
    web = state(request)
    password = str(form.get("password") or "")
    if password != str(form.get("password_again") or ""):
        raise HTTPException(400, "The two passwords differ: type the same one twice.")
    schools = sorted({str(s) for s in form.getlist("school") if s})
    all_schools = form.get("all_schools") == "1"
    if not schools and not all_schools:
        raise HTTPException(400, "Choose the schools they may see, or every school.")
    known = {s.id for s in await run_in_threadpool(web.store.schools)}
    unknown = [s for s in schools if s not in known]
    if unknown:
        raise HTTPException(400, f"No school {', '.join(unknown)} in the store.")

    def add() -> None:
        create_user(
            web.store,
            str(form.get("email") or ""),
            password,
            str(form.get("role") or ""),
            schools=schools,
            all_schools=all_schools,
            morning_email=form.get("morning_email") == "1",
            actor=admin.email,
            hasher=web.authenticator.hasher,
            at=web.clock(),
        )

    try:
        await run_in_threadpool(add)
    except AccountError as exc:
        raise HTTPException(400, f"The account was not added: {exc}.") from exc
    return RedirectResponse(request.url_for("users"), status_code=303)


async def set_user_disabled(request: Request) -> Response:
    admin = signed_in(request, "admin")
    form = await request.form()
    check_csrf(request, form)
    web = state(request)
    target = await run_in_threadpool(web.store.user, user_id=request.path_params["user_id"])
    if target is None:
        raise not_found()
    if target.id == admin.id:
        raise HTTPException(400, "You cannot disable your own account.")
    disabled = form.get("disabled") == "1"
    await run_in_threadpool(
        lambda: set_disabled(web.store, target.email, disabled, actor=admin.email, at=web.clock())
    )
    return RedirectResponse(request.url_for("users"), status_code=303)


async def morning_email(request: Request) -> Response:
    user = signed_in(request)
    form = await request.form()
    check_csrf(request, form)
    web = state(request)
    wanted = form.get("wanted") == "1"
    await run_in_threadpool(
        lambda: set_morning_email(web.store, user.email, wanted, actor=user.email, at=web.clock())
    )
    return RedirectResponse(request.url_for("account"), status_code=303)


def account_page(request: Request) -> Response:
    user = signed_in(request)
    return render(request, "account.html.j2", {}, user=user)


routes = [
    Route("/admin/users", users_page, methods=["GET"], name="users"),
    Route("/admin/users", add_user, methods=["POST"], name="add_user"),
    Route(
        "/admin/users/{user_id:int}/disabled",
        set_user_disabled,
        methods=["POST"],
        name="user_disabled",
    ),
    Route("/account", account_page, methods=["GET"], name="account"),
    Route("/account/morning-email", morning_email, methods=["POST"], name="morning_email"),
]
