"""The app's ASGI middleware: the signed session cookie, the security headers and the request
log.

The session lives in the cookie itself, signed (itsdangerous) and never encrypted, so it
holds no pupil data: only the user's id, a stamp of their password hash (changing the
password ends every other session) and the CSRF token. It is re-signed on every response, and
a cookie older than the idle time is refused: the session ends after that long without a
request. Cookie flags: HttpOnly, SameSite=Lax, Path=/, and Secure when the request came over
HTTPS (uvicorn takes the scheme from X-Forwarded-Proto when the proxy is trusted), or always
with ``secure_cookies = "always"``.
"""

from __future__ import annotations

import time
from typing import Any

import structlog
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = structlog.get_logger(__name__)

SESSION_COOKIE = "registerwatch_session"

# No inline script or style anywhere: everything comes from /static on this origin.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}


class SessionCookieMiddleware:
    def __init__(
        self, app: ASGIApp, *, secret: bytes, idle_seconds: int, always_secure: bool
    ) -> None:
        self.app = app
        self.serializer = URLSafeTimedSerializer(secret, salt="registerwatch.session")
        self.idle_seconds = idle_seconds
        self.always_secure = always_secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        raw = connection.cookies.get(SESSION_COOKIE)
        session: dict[str, Any] = {}
        if raw:
            try:
                loaded = self.serializer.loads(raw, max_age=self.idle_seconds)
                session = loaded if isinstance(loaded, dict) else {}
            except BadSignature:  # tampered, or expired (SignatureExpired is a BadSignature)
                scope["session_expired"] = True
        scope["session"] = session
        secure = self.always_secure or scope.get("scheme") == "https"

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                flags = "Path=/; HttpOnly; SameSite=Lax" + ("; Secure" if secure else "")
                if scope["session"]:
                    value = self.serializer.dumps(scope["session"])
                    headers.append(
                        "set-cookie",
                        f"{SESSION_COOKIE}={value}; {flags}; Max-Age={self.idle_seconds}",
                    )
                elif raw:
                    headers.append("set-cookie", f"{SESSION_COOKIE}=; {flags}; Max-Age=0")
            await send(message)

        await self.app(scope, receive, send_with_cookie)


class SecurityHeadersMiddleware:
    """The same headers on every response, including errors and static files."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
                if "cache-control" not in headers:
                    # Pages hold pupil data: no shared or back-button cache keeps them.
                    headers["cache-control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


class RequestLogMiddleware:
    """One ``web.request`` event per request, naming the route's pattern
    (``/pupils/{pupil_id}``), never the path: paths carry pupil and finding ids. (uvicorn's
    own access log is off for the same reason.)"""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def record_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = scope.get("route")
            log.info(
                "web.request",
                method=scope.get("method"),
                route=getattr(route, "path", None) or "(unmatched)",
                status=status[0],
                ms=round((time.perf_counter() - started) * 1000, 1),
            )
