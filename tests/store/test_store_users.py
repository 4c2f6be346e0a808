"""The web app's tables (store/users.py) on SQLite and PostgreSQL: accounts and their schools,
the audit trail, failed sign-ins."""

from __future__ import annotations

from datetime import timedelta

import pytest
from conftest import FIXED_NOW

from registerwatch.errors import StoreError
from registerwatch.store import AuditEntry, Store


def test_accounts_keep_their_schools_and_are_found_by_any_case(store: Store) -> None:
    added = store.add_user(
        "DM@Oak.Example", "$argon2id$hash", "data-manager", schools=["oak", "elm", "oak"]
    )
    assert added.email == "dm@oak.example" and added.schools == ("elm", "oak")
    assert added.may_see("oak") and not added.may_see("birch")
    assert store.user("dm@OAK.example") == added
    assert store.user(user_id=added.id) == added
    admin = store.add_user("it@trust.example", "$argon2id$other", "admin", all_schools=True)
    assert admin.may_see("anything")
    assert [u.email for u in store.users()] == ["dm@oak.example", "it@trust.example"]
    with pytest.raises(StoreError, match="already exists"):
        store.add_user("dm@oak.example", "$argon2id$x", "viewer", schools=["oak"])
    with pytest.raises(StoreError, match="role 'owner'"):
        store.add_user("x@oak.example", "$argon2id$x", "owner")


def test_update_user_changes_only_what_is_given(store: Store) -> None:
    store.add_user("dm@oak.example", "$argon2id$old", "data-manager", schools=["oak"])
    assert store.update_user("dm@oak.example", disabled=True)
    assert store.update_user("DM@oak.example", password_hash="$argon2id$new", morning_email=True)
    user = store.user("dm@oak.example")
    assert user is not None
    assert (user.disabled, user.password_hash, user.morning_email) == (True, "$argon2id$new", True)
    assert not store.update_user("nobody@oak.example", disabled=True)


def test_audit_entries_oldest_first_by_subject_and_actor(store: Store) -> None:
    for minutes, actor, action in (
        (2, "b@x.example", "pupil_viewed"),
        (1, "a@x.example", "acknowledged"),
    ):
        store.add_audit(
            AuditEntry(FIXED_NOW + timedelta(minutes=minutes), actor, action, "oak", "fp1", "note")
        )
    store.add_audit(AuditEntry(FIXED_NOW, "a@x.example", "signed_in", subject="a@x.example"))
    assert [e.action for e in store.audit_entries(subject="fp1")] == [
        "acknowledged",
        "pupil_viewed",
    ]
    assert [e.action for e in store.audit_entries(actor="a@x.example")] == [
        "signed_in",
        "acknowledged",
    ]
    assert store.audit_entries(subject="fp1")[0].at == FIXED_NOW + timedelta(minutes=1)


def test_login_failures_count_within_the_window(store: Store) -> None:
    for minutes in (0, 10, 20):
        store.record_login_failure(
            "DM@oak.example", "10.0.0.1", at=FIXED_NOW + timedelta(minutes=minutes)
        )
    store.record_login_failure(
        "other@oak.example", "10.0.0.1", at=FIXED_NOW + timedelta(minutes=20)
    )
    since = FIXED_NOW + timedelta(minutes=5)
    assert store.login_failures_since(since, account="dm@oak.example") == 2
    assert store.login_failures_since(since, address="10.0.0.1") == 3
    store.clear_login_failures("dm@oak.example")
    assert store.login_failures_since(since, account="dm@oak.example") == 0
    assert store.login_failures_since(since, address="10.0.0.1") == 1


def test_page_summaries_on_an_empty_store(store: Store) -> None:
    assert store.finding_school("0" * 64) is None
    assert store.pupil_school("oak:1") is None
    assert store.mark_code_counts("oak", FIXED_NOW.date(), FIXED_NOW.date()) == {}
    assert store.outbox_state_counts("oak") == {}
