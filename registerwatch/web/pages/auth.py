"""Signing in and out."""

from __future__ import annotations

import secrets

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from registerwatch.store import AuditEntry
from registerwatch.web.accounts import SignInRefusedError, SignInThrottledError
from registerwatch.web.context import (
    check_csrf,
    current_user,
    password_stamp,
    render,
    state,
)


def login_page(request: Request) -> Response:
    if current_user(request) is not None:
        return RedirectResponse("/", status_code=303)
    expired = bool(request.scope.get("session_expired"))
    return render(request, "login.html.j2", {"expired": expired})


async def login(request: Request) -> Response:
    form = await request.form()
    check_csrf(request, form)
    email = str(form.get("email") or "").strip()
    password = str(form.get("password") or "")
    address = request.client.host if request.client else "unknown"
    web = state(request)
    try:
        user = await run_in_threadpool(web.authenticator.sign_in, email, password, address)
    except SignInThrottledError as exc:
        return render(request, "login.html.j2", {"error": str(exc), "email": email}, status=429)
    except SignInRefusedError as exc:
        return render(request, "login.html.j2", {"error": str(exc), "email": email}, status=401)
    # A new session on sign-in: a token planted before it (session fixation) is worthless.
    request.session.clear()
    request.session.update(
        {"uid": user.id, "pw": password_stamp(user), "csrf": secrets.token_urlsafe(32)}
    )
    await run_in_threadpool(
        web.store.add_audit, AuditEntry(web.clock(), user.email, "signed_in", subject=user.email)
    )
    return RedirectResponse("/", status_code=303)


async def logout(request: Request) -> Response:
    form = await request.form()
    check_csrf(request, form)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


routes = [
    Route("/login", login_page, methods=["GET"], name="login_page"),
    Route("/login", login, methods=["POST"], name="login"),
    Route("/logout", logout, methods=["POST"], name="logout"),
]
