"""Accounts: admins list users and disable or re-enable them (creating accounts and setting
passwords stay on the command line, where the password is read from stdin); every user may
turn their own morning email on or off."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from registerwatch.web.accounts import set_disabled, set_morning_email
from registerwatch.web.context import check_csrf, not_found, render, signed_in, state


def users_page(request: Request) -> Response:
    user = signed_in(request, "admin")
    web = state(request)
    return render(request, "users.html.j2", {"users": web.store.users()}, user=user)


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
    Route(
        "/admin/users/{user_id:int}/disabled",
        set_user_disabled,
        methods=["POST"],
        name="user_disabled",
    ),
    Route("/account", account_page, methods=["GET"], name="account"),
    Route("/account/morning-email", morning_email, methods=["POST"], name="morning_email"),
]
