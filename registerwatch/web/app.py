"""The app factory: ``create_app(store, settings)`` is the Starlette app ``registerwatch serve``
runs under uvicorn (and the tests drive over loopback)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import structlog
from argon2 import PasswordHasher
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from registerwatch.config.web import WebSettings
from registerwatch.errors import ConfigError
from registerwatch.store import Store
from registerwatch.web import filters
from registerwatch.web.accounts import Authenticator
from registerwatch.web.context import (
    RoutePaths,
    SignInRequiredError,
    WebState,
    current_user,
    render,
)
from registerwatch.web.middleware import (
    RequestLogMiddleware,
    SecurityHeadersMiddleware,
    SessionCookieMiddleware,
)
from registerwatch.web.pages import auth, findings, pupils, returns, runs, schools, users

log = structlog.get_logger(__name__)

STATIC = Path(__file__).parent / "static"


def session_secret(settings: WebSettings, environ: dict[str, str] | None = None) -> bytes:
    """The cookie-signing key: from the file or variable the config names, else a random one
    (sessions then end when the server restarts)."""
    env = os.environ if environ is None else environ
    if settings.secret_key_file is not None:
        try:
            text = settings.secret_key_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                f"web.secret_key_file: cannot read {settings.secret_key_file}: {exc.strerror}"
            ) from exc
        if len(text) < 32:
            raise ConfigError("web.secret_key_file: the key must be at least 32 characters")
        return text.encode()
    value = env.get(settings.secret_key_env, "").strip()
    if value:
        if len(value) < 32:
            raise ConfigError(f"${settings.secret_key_env}: the key must be at least 32 characters")
        return value.encode()
    log.warning("web.random_session_key", hint=f"set ${settings.secret_key_env} to keep sessions")
    return secrets.token_bytes(32)


def templates() -> Environment:
    env = Environment(
        loader=PackageLoader("registerwatch.web", "templates"),
        autoescape=select_autoescape(["html", "j2"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
        # The templates are package data: compile each once, never stat the file per page.
        auto_reload=False,
    )
    filters.install(env)
    return env


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    user = current_user(request) if "uid" in request.session else None
    return render(
        request,
        "error.html.j2",
        {"status": exc.status_code, "detail": exc.detail},
        user=user,
        status=exc.status_code,
    )


async def _sign_in_required(request: Request, exc: Exception) -> Response:
    return RedirectResponse("/login", status_code=303)


def create_app(
    store: Store,
    settings: WebSettings | None = None,
    *,
    secret: bytes | None = None,
    hasher: PasswordHasher | None = None,
    clock: Callable[[], datetime] | None = None,
) -> Starlette:
    web_settings = settings or WebSettings()
    now = clock or (lambda: datetime.now(UTC))
    routes = [
        *auth.routes,
        *schools.routes,
        *findings.routes,
        *pupils.routes,
        *returns.routes,
        *runs.routes,
        *users.routes,
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ]
    middleware = [
        Middleware(RequestLogMiddleware),
        Middleware(SecurityHeadersMiddleware),
        Middleware(
            SessionCookieMiddleware,
            secret=secret or session_secret(web_settings),
            idle_seconds=web_settings.idle_minutes * 60,
            always_secure=web_settings.secure_cookies == "always",
        ),
    ]
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={HTTPException: _http_error, SignInRequiredError: _sign_in_required},
    )
    env = templates()
    # Compiled and imported now, at start-up, rather than by the first requests after a
    # restart (which would all wait for them at once).
    for name in env.list_templates(filter_func=lambda name: name.endswith(".j2")):
        env.get_template(name)
    findings.rules_by_code()
    app.state.web = WebState(
        store=store,
        settings=web_settings,
        templates=env,
        authenticator=Authenticator(store, web_settings, hasher=hasher, clock=now),
        clock=now,
        paths=RoutePaths(routes),
    )
    return app


# How `registerwatch serve --workers N` tells each worker process what to serve: uvicorn starts
# the workers afresh and each builds its app with app_from_environment(). The session key is
# passed the same way, in the variable [web] secret_key_env names: every worker must sign and
# check cookies with the same key, or a request landing on another worker would sign out.
CONFIG_ENV = "REGISTERWATCH_SERVE_CONFIG"
STORE_ENV = "REGISTERWATCH_SERVE_STORE"
LOG_LEVEL_ENV = "REGISTERWATCH_SERVE_LOG_LEVEL"
FACTORY = "registerwatch.web.app:app_from_environment"


def app_from_environment() -> Starlette:
    """The app of one worker of `registerwatch serve --workers N` (a uvicorn factory)."""
    from registerwatch.config import load_config
    from registerwatch.logging import configure_logging

    configure_logging(level=os.environ.get(LOG_LEVEL_ENV, "WARNING"))
    config = os.environ.get(CONFIG_ENV)
    settings = load_config(Path(config) if config else None)
    store = Store(os.environ.get(STORE_ENV) or settings.store.url)
    return create_app(store, settings.web)


__all__ = ["Route", "app_from_environment", "create_app", "session_secret", "templates"]
