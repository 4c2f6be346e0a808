"""What every page shares: the app's state, who is signed in, what they may do and see, the
CSRF check and rendering a template.

Access rules, in one place:
- not signed in: every page but /login answers a redirect to /login;
- a role below the action's: 403;
- a school, finding, pupil or outbox item of a school the user may not see: 404, exactly as
  if it did not exist (a guessed id tells nothing).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from jinja2 import Environment
from starlette.convertors import Convertor
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import BaseRoute, Mount, NoMatchFound, Route, replace_params

from registerwatch.calendar import LONDON
from registerwatch.config.web import WebSettings
from registerwatch.store import Store, UserRecord
from registerwatch.web.accounts import Authenticator

ROLE_RANK = {"viewer": 0, "data-manager": 1, "admin": 2}
CSRF_FIELD = "csrf_token"


class RoutePaths:
    """The path of a named route, for links in pages: ``paths("finding", fingerprint=...)``.

    Starlette's ``request.url_for`` tries every route in turn and builds an absolute URL; with
    a link on every row of a findings table that was a tenth of the page's CPU. This looks the
    route's pattern up by name and fills it in the same way (``replace_params``), giving the
    path alone, which is also what a page behind a reverse proxy should link to."""

    def __init__(self, routes: Iterable[BaseRoute]) -> None:
        self._patterns: dict[str, tuple[str, dict[str, Convertor[Any]]]] = {}
        for route in routes:
            # A mounted app (the static files) has a pattern of its own: /static/{path}.
            if isinstance(route, Route) or (
                isinstance(route, Mount) and route.name and not route.routes
            ):
                self._patterns[str(route.name)] = (route.path_format, route.param_convertors)

    def __call__(self, name: str, /, **params: Any) -> str:
        pattern = self._patterns.get(name)
        if pattern is None or set(params) != set(pattern[1]):
            raise NoMatchFound(name, params)
        path, _unused = replace_params(pattern[0], pattern[1], params)
        return path


@dataclass
class WebState:
    store: Store
    settings: WebSettings
    templates: Environment
    authenticator: Authenticator
    clock: Callable[[], datetime]
    paths: RoutePaths

    def today(self) -> date:
        return self.clock().astimezone(LONDON).date()


class SignInRequiredError(Exception):
    """No (or an expired) session: the handler redirects to the sign-in page."""


def state(request: Request) -> WebState:
    web: WebState = request.app.state.web
    return web


def password_stamp(user: UserRecord) -> str:
    """Changes when the password does: a session carries it, so setting a new password ends
    the sessions signed in with the old one."""
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def check_csrf(request: Request, form: Mapping[str, Any]) -> None:
    """403 unless the form carries this session's token."""
    expected = request.session.get("csrf")
    given = form.get(CSRF_FIELD)
    if (
        not isinstance(expected, str)
        or not isinstance(given, str)
        or not hmac.compare_digest(expected.encode(), given.encode())
    ):
        raise HTTPException(403, "The form has expired or did not come from this site: reload it.")


def current_user(request: Request) -> UserRecord | None:
    uid = request.session.get("uid")
    if not isinstance(uid, int):
        return None
    user = state(request).store.user(user_id=uid)
    if user is None or user.disabled or request.session.get("pw") != password_stamp(user):
        request.session.clear()
        return None
    return user


def signed_in(request: Request, role: str = "viewer") -> UserRecord:
    """The signed-in user with at least ``role``: else SignInRequiredError, or 403."""
    user = current_user(request)
    if user is None:
        raise SignInRequiredError()
    if ROLE_RANK[user.role] < ROLE_RANK[role]:
        raise HTTPException(403, f"This needs the {role} role.")
    return user


def not_found() -> HTTPException:
    return HTTPException(404, "Not found.")


def visible_school(user: UserRecord, school_id: str | None) -> str:
    """``school_id`` if the user may see it, else 404 (as for a school that does not exist)."""
    if school_id is None or not user.may_see(school_id):
        raise not_found()
    return school_id


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    user: UserRecord | None = None,
    status: int = 200,
) -> HTMLResponse:
    web = state(request)
    page = web.templates.get_template(template).render(
        request=request,
        user=user,
        csrf_field=CSRF_FIELD,
        csrf_token=csrf_token(request),
        url_for=web.paths,
        today=web.today(),
        **dict(context or {}),
    )
    return HTMLResponse(page, status_code=status)
