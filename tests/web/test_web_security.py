"""Sign-in, sessions and the rules every response keeps: CSRF tokens, throttling, one uniform
refusal, passwords never kept or logged in clear, cookie flags, idle expiry, security
headers, and no pupil data in logs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from structlog.testing import capture_logs
from web_client import WebClient, signed_in_client
from web_world import OAK, PASSWORD, SECRET, LiveServer, copy_store, start_server

from registerwatch.config.web import WebSettings
from registerwatch.store import Store
from registerwatch.web.accounts import (
    WRONG_CREDENTIALS,
    Authenticator,
    set_disabled,
    set_password,
)
from registerwatch.web.context import password_stamp
from registerwatch.web.middleware import CONTENT_SECURITY_POLICY, SESSION_COOKIE

MANAGER = "manager@oak.example"


def _open_fingerprint(store: Store) -> str:
    return next(iter(store.load_findings(OAK, status="open")))


@pytest.fixture
def fresh(template: Path, tmp_path: Path) -> Iterator[LiveServer]:
    """A server over its own store copy, for tests that throttle or change accounts."""
    store = Store(copy_store(template, tmp_path / "store.db"))
    server = start_server(
        store, WebSettings(max_failures_per_account=3, max_failures_per_address=5)
    )
    try:
        yield server
    finally:
        server.stop()
        store.close()


def test_forms_without_the_csrf_token_are_refused(live: LiveServer) -> None:
    fingerprint = _open_fingerprint(live.store)
    client = signed_in_client(live.url, MANAGER, PASSWORD)
    action = f"/findings/{fingerprint}/acknowledge"
    assert client.post(action, {"note": "no token"}, csrf=False).status_code == 403
    assert (
        client.post(action, {"note": "forged", "csrf_token": "x" * 43}, csrf=False).status_code
        == 403
    )
    assert client.post("/logout", csrf=False).status_code == 403
    assert live.store.load_findings(OAK)[fingerprint].acknowledged_at is None
    # a token from another session is no good either
    other = signed_in_client(live.url, "viewer@oak.example", PASSWORD)
    stolen = other.token("/account")
    assert (
        client.post(action, {"note": "stolen", "csrf_token": stolen}, csrf=False).status_code == 403
    )
    assert live.store.load_findings(OAK)[fingerprint].acknowledged_at is None
    # sign-in itself needs the token of the page it was served with
    anonymous = WebClient(live.url)
    response = anonymous.http.post("/login", data={"email": MANAGER, "password": PASSWORD})
    assert response.status_code == 403


def test_one_uniform_refusal_for_unknown_email_and_wrong_password(fresh: LiveServer) -> None:
    client = WebClient(fresh.url)
    unknown = client.sign_in("nobody@oak.example", PASSWORD)
    wrong = client.sign_in(MANAGER, "not the password at all")
    assert unknown.status_code == wrong.status_code == 401
    assert WRONG_CREDENTIALS in unknown.text and WRONG_CREDENTIALS in wrong.text
    # the pages differ only by the email typed back into the form
    assert unknown.text.replace("nobody@oak.example", "E") == wrong.text.replace(MANAGER, "E")


def test_sign_in_is_throttled_per_account(fresh: LiveServer) -> None:
    client = WebClient(fresh.url)
    for _ in range(3):
        assert client.sign_in(MANAGER, "wrong password!!").status_code == 401
    # now even the right password waits
    refused = client.sign_in(MANAGER, PASSWORD)
    assert refused.status_code == 429 and "Too many failed sign-ins" in refused.text
    assert not client.signed_in
    # another account from the same address is not locked out by this one
    assert client.sign_in("viewer@oak.example", PASSWORD).status_code == 303


def test_sign_in_is_throttled_per_address(fresh: LiveServer) -> None:
    client = WebClient(fresh.url)
    for n in range(5):
        assert client.sign_in(f"guess{n}@oak.example", "wrong password!!").status_code == 401
    assert client.sign_in("viewer@oak.example", PASSWORD).status_code == 429


def test_passwords_are_never_stored_or_logged_in_clear(fresh: LiveServer, tmp_path: Path) -> None:
    new_password = "a brand new passphrase 42"
    with capture_logs() as logs:
        set_password(fresh.store, MANAGER, new_password, actor="test")
        assert WebClient(fresh.url).sign_in(MANAGER, new_password).status_code == 303
        assert WebClient(fresh.url).sign_in(MANAGER, "wrong " + new_password).status_code == 401
    user = fresh.store.user(MANAGER)
    assert user is not None and user.password_hash.startswith("$argon2id$")
    assert new_password not in user.password_hash
    logged = repr(logs)
    assert new_password not in logged and user.password_hash not in logged
    assert "argon2" not in logged
    database = Path(str(fresh.store.url.database)).read_bytes()
    for secret in (new_password, PASSWORD):
        assert secret.encode() not in database


def test_changing_the_password_or_disabling_ends_sessions(fresh: LiveServer) -> None:
    client = signed_in_client(fresh.url, MANAGER, PASSWORD)
    set_password(fresh.store, MANAGER, "another good passphrase", actor="test")
    assert client.get("/").status_code == 303
    viewer = signed_in_client(fresh.url, "viewer@oak.example", PASSWORD)
    set_disabled(fresh.store, "viewer@oak.example", actor="test")
    assert viewer.get("/").status_code == 303
    assert viewer.sign_in("viewer@oak.example", PASSWORD).status_code == 401


def test_session_cookie_flags(live: LiveServer) -> None:
    client = WebClient(live.url)
    response = client.sign_in(MANAGER, PASSWORD)
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(SESSION_COOKIE + "=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http on loopback
    # behind a trusted proxy (loopback) that says the request came over https: Secure
    proxied = client.http.get("/login", headers={"X-Forwarded-Proto": "https"})
    assert "; Secure" in proxied.headers["set-cookie"]


class _BackdatedSigner(TimestampSigner):
    """Signs as if 31 minutes ago: the default idle time is 30."""

    def get_timestamp(self) -> int:
        return int(time.time()) - 31 * 60


def test_a_session_ends_after_the_idle_time(live: LiveServer) -> None:
    user = live.store.user(MANAGER)
    assert user is not None
    client = signed_in_client(live.url, MANAGER, PASSWORD)
    session = URLSafeTimedSerializer(SECRET, salt="registerwatch.session").loads(
        client.http.cookies[SESSION_COOKIE]
    )
    fresh = URLSafeTimedSerializer(SECRET, salt="registerwatch.session").dumps(session)
    stale = URLSafeTimedSerializer(
        SECRET, salt="registerwatch.session", signer=_BackdatedSigner
    ).dumps(session)

    def with_cookie(path: str, value: str) -> httpx.Response:
        return httpx.get(live.url + path, headers={"cookie": f"{SESSION_COOKIE}={value}"})

    assert with_cookie("/", fresh).status_code == 200
    assert with_cookie("/", stale).status_code == 303
    assert "without activity" in with_cookie("/login", stale).text
    # a tampered cookie is no session either
    assert (
        with_cookie("/", fresh[:-2] + ("xx" if not fresh.endswith("xx") else "yy")).status_code
        == 303
    )


def test_security_headers_on_every_kind_of_response(live: LiveServer) -> None:
    client = signed_in_client(live.url, MANAGER, PASSWORD)
    for path in ("/", "/login", "/static/app.css", "/no-such-page", "/findings/" + "0" * 64):
        headers = client.get(path).headers
        assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY, path
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert "script-src" not in headers["content-security-policy"]  # default-src 'none'
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"
    assert client.get("/").headers["cache-control"] == "no-store"


def test_no_pupil_data_in_logs_or_query_strings(live: LiveServer) -> None:
    store = live.store
    pupil = store.pupils(OAK)[0]
    client = signed_in_client(live.url, MANAGER, PASSWORD)
    with capture_logs() as logs:
        page = client.get(f"/pupils/{pupil.id}")
        findings = client.get(f"/schools/{OAK}/findings?status=")
    assert page.status_code == findings.status_code == 200
    requests = [e for e in logs if e["event"] == "web.request"]
    # (the sign-in's own event may land here too: the server logs after it has answered)
    assert {"/pupils/{pupil_id}", "/schools/{school_id}/findings"} <= {e["route"] for e in requests}
    logged = repr(logs)
    for value in (pupil.id, pupil.mis_id, pupil.upn, pupil.legal_surname):
        if value:
            assert value not in logged
    # links carry ids in the path only; the only query strings are the findings filters
    for text in (page.text, findings.text):
        for href in text.split('href="')[1:]:
            link = href.split('"', 1)[0]
            if "?" in link:
                assert link.split("?", 1)[1].split("=")[0] in {
                    "rule",
                    "severity",
                    "status",
                    "year",
                    "group",
                }


def test_a_password_rehashed_at_sign_in_keeps_the_new_session(
    template: Path, tmp_path: Path
) -> None:
    """An account whose hash was made with weaker Argon2 parameters than the app's gets a new
    hash at sign-in; the session must carry that hash's stamp, or the next page signs out."""
    with Store(copy_store(template, tmp_path / "store.db")) as store:
        stronger = PasswordHasher(time_cost=2, memory_cost=8 * 1024, parallelism=1)
        user = Authenticator(store, WebSettings(), hasher=stronger).sign_in(
            MANAGER, PASSWORD, "127.0.0.1"
        )
        stored = store.user(MANAGER)
        assert stored is not None
        assert not stronger.check_needs_rehash(stored.password_hash)
        assert password_stamp(user) == password_stamp(stored)
