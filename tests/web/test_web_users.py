"""Admins manage accounts in the app: add one with a role, schools and an initial password
(a form with the CSRF token), disable and enable one; every change is in the audit trail under
the admin's email, and the new account can sign in and sees only its schools."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from web_client import WebClient, signed_in_client
from web_world import BIRCH, OAK, PASSWORD, LiveServer, copy_store, start_server

from registerwatch.store import Store

ADMIN = "admin@trust.example"
NEW = "new.officer@oak.example"
NEW_PASSWORD = "a long enough passphrase"


@pytest.fixture
def server(template: Path, tmp_path: Path) -> Iterator[LiveServer]:
    store = Store(copy_store(template, tmp_path / "store.db"))
    live = start_server(store)
    try:
        yield live
    finally:
        live.stop()
        store.close()


def _form(**changes: str) -> dict[str, str]:
    return {
        "email": NEW,
        "role": "data-manager",
        "school": OAK,
        "password": NEW_PASSWORD,
        "password_again": NEW_PASSWORD,
    } | changes


def test_an_admin_adds_a_user_who_can_then_sign_in(server: LiveServer) -> None:
    admin = signed_in_client(server.url, ADMIN, PASSWORD)
    page = admin.get("/admin/users").text
    assert 'action="/admin/users"' in page and 'name="password_again"' in page
    assert admin.post("/admin/users", _form(morning_email="1")).status_code == 303
    user = server.store.user(NEW)
    assert user is not None
    assert (user.role, user.schools, user.all_schools, user.morning_email) == (
        "data-manager",
        (OAK,),
        False,
        True,
    )
    assert NEW_PASSWORD not in user.password_hash
    (entry,) = [e for e in server.store.audit_entries(actor=ADMIN) if e.action == "user_added"]
    assert entry.subject == NEW and "data-manager" in (entry.detail or "")
    assert NEW in admin.get("/admin/users").text

    newcomer = signed_in_client(server.url, NEW, NEW_PASSWORD)
    home = newcomer.get("/").text
    assert f'data-school="{OAK}"' in home and f'data-school="{BIRCH}"' not in home


def test_a_bad_form_adds_nobody(server: LiveServer) -> None:
    admin = signed_in_client(server.url, ADMIN, PASSWORD)
    refused = {
        "passwords differ": _form(password_again=NEW_PASSWORD + "!"),
        "short password": _form(password="too short", password_again="too short"),
        "unknown school": _form(school="no-such-school"),
        "no school": _form(school=""),
        "bad role": _form(role="owner"),
        "bad email": _form(email="not-an-email"),
    }
    for why, form in refused.items():
        response = admin.post("/admin/users", form)
        assert response.status_code == 400, why
    assert admin.post("/admin/users", _form(email=ADMIN)).status_code == 400  # exists already
    assert admin.post("/admin/users", _form(), csrf=False).status_code == 403
    assert server.store.user(NEW) is None
    viewer = signed_in_client(server.url, "viewer@oak.example", PASSWORD)
    assert viewer.post("/admin/users", _form()).status_code == 403
    assert server.store.user(NEW) is None


def test_disabling_and_enabling_are_audited_and_end_the_session(server: LiveServer) -> None:
    admin = signed_in_client(server.url, ADMIN, PASSWORD)
    manager = signed_in_client(server.url, "manager@oak.example", PASSWORD)
    target = server.store.user("manager@oak.example")
    assert target is not None
    path = f"/admin/users/{target.id}/disabled"
    assert admin.post(path, {"disabled": "1"}).status_code == 303
    assert manager.get("/").status_code == 303  # signed out at once
    assert WebClient(server.url).sign_in("manager@oak.example", PASSWORD).status_code == 401
    assert admin.post(path, {"disabled": "0"}).status_code == 303
    actions = [
        (e.action, e.subject)
        for e in server.store.audit_entries(actor=ADMIN)
        if e.action.startswith("user_")
    ]
    assert actions == [
        ("user_disabled", "manager@oak.example"),
        ("user_enabled", "manager@oak.example"),
    ]
    signed_in_client(server.url, "manager@oak.example", PASSWORD)
