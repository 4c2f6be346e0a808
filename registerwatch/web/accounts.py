"""Accounts: creating them, passwords (Argon2, via argon2-cffi) and signing in with throttling.

A password is hashed here and only the hash reaches the store; no function logs a password or
a hash. Signing in answers one uniform refusal ("wrong email or password") whether the account
is unknown, disabled or the password wrong, and takes the same Argon2 time in each case, so
neither the message nor the timing says which accounts exist.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import structlog
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from registerwatch.config.web import WebSettings
from registerwatch.errors import RegisterwatchError
from registerwatch.store import ROLES, AuditEntry, Store, UserRecord, normalise_email

log = structlog.get_logger(__name__)

MIN_PASSWORD_LENGTH = 12
WRONG_CREDENTIALS = "Wrong email or password."
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
# Verified against when the account does not exist, so an unknown email costs the same time.
_DUMMY_HASH_SOURCE = "registerwatch-no-such-account"


class AccountError(RegisterwatchError):
    """An account cannot be created or changed as asked (the message says what to change)."""


class SignInRefusedError(RegisterwatchError):
    """Wrong email or password (deliberately the same message for every cause)."""

    def __init__(self) -> None:
        super().__init__(WRONG_CREDENTIALS)


class SignInThrottledError(RegisterwatchError):
    """Too many wrong passwords for this account or from this address: wait and try again."""

    def __init__(self, minutes: int) -> None:
        self.minutes = minutes
        super().__init__(
            f"Too many failed sign-ins. Try again in {minutes} minutes, or ask an admin."
        )


def password_hasher() -> PasswordHasher:
    """argon2-cffi's defaults (RFC 9106 low-memory profile: Argon2id, 64 MiB, 3 passes)."""
    return PasswordHasher()


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(
            f"the password is too short: give at least {MIN_PASSWORD_LENGTH} characters"
        )


def check_email(email: str) -> str:
    address = normalise_email(email)
    if not _EMAIL.fullmatch(address):
        raise AccountError(f"{email!r} is not an email address (name@example.org)")
    return address


def create_user(
    store: Store,
    email: str,
    password: str,
    role: str,
    *,
    schools: Iterable[str] = (),
    all_schools: bool = False,
    morning_email: bool = False,
    actor: str,
    hasher: PasswordHasher | None = None,
    at: datetime | None = None,
) -> UserRecord:
    """Create an account (audited as ``actor``); AccountError for a bad email, role, password
    or an account with neither schools nor ``all_schools``."""
    address = check_email(email)
    if role not in ROLES:
        raise AccountError(f"role {role!r} is not one of {', '.join(ROLES)}")
    chosen = sorted(set(schools))
    if not chosen and not all_schools:
        raise AccountError(f"user {address} would see no school: give --school ID or --all-schools")
    if chosen and all_schools:
        raise AccountError("give --school or --all-schools, not both")
    check_password_rules(password)
    digest = (hasher or password_hasher()).hash(password)
    now = at or datetime.now(UTC)
    with store.transaction() as tx:
        if store.user(address, conn=tx) is not None:
            raise AccountError(
                f"user {address} already exists: use `registerwatch users set-password`"
            )
        user = store.add_user(
            address,
            digest,
            role,
            schools=chosen,
            all_schools=all_schools,
            morning_email=morning_email,
            at=now,
            conn=tx,
        )
        store.add_audit(
            AuditEntry(
                now,
                actor,
                "user_added",
                subject=address,
                detail=f"role {role}; schools: {'all' if all_schools else ', '.join(chosen)}",
            ),
            conn=tx,
        )
    log.info("web.user_added", role=role, all_schools=all_schools, schools=len(chosen))
    return user


def set_password(
    store: Store,
    email: str,
    password: str,
    *,
    actor: str,
    hasher: PasswordHasher | None = None,
    at: datetime | None = None,
) -> None:
    check_password_rules(password)
    digest = (hasher or password_hasher()).hash(password)
    now = at or datetime.now(UTC)
    with store.transaction() as tx:
        if not store.update_user(email, password_hash=digest, at=now, conn=tx):
            raise AccountError(f"no user {normalise_email(email)}: see `registerwatch users list`")
        store.add_audit(
            AuditEntry(now, actor, "password_set", subject=normalise_email(email)), conn=tx
        )
        store.clear_login_failures(email, conn=tx)


def set_disabled(
    store: Store, email: str, disabled: bool = True, *, actor: str, at: datetime | None = None
) -> None:
    now = at or datetime.now(UTC)
    with store.transaction() as tx:
        if not store.update_user(email, disabled=disabled, at=now, conn=tx):
            raise AccountError(f"no user {normalise_email(email)}: see `registerwatch users list`")
        action = "user_disabled" if disabled else "user_enabled"
        store.add_audit(AuditEntry(now, actor, action, subject=normalise_email(email)), conn=tx)


def set_morning_email(
    store: Store, email: str, wanted: bool, *, actor: str, at: datetime | None = None
) -> None:
    now = at or datetime.now(UTC)
    with store.transaction() as tx:
        if not store.update_user(email, morning_email=wanted, at=now, conn=tx):
            raise AccountError(f"no user {normalise_email(email)}: see `registerwatch users list`")
        store.add_audit(
            AuditEntry(
                now,
                actor,
                "morning_email_" + ("on" if wanted else "off"),
                subject=normalise_email(email),
            ),
            conn=tx,
        )


class Authenticator:
    """Signs people in against the store, throttled per account and per address."""

    def __init__(
        self,
        store: Store,
        settings: WebSettings,
        *,
        hasher: PasswordHasher | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.hasher = hasher or password_hasher()
        self.clock = clock or (lambda: datetime.now(UTC))
        self._dummy_hash = self.hasher.hash(_DUMMY_HASH_SOURCE)

    def _check_throttle(self, email: str, address: str, now: datetime) -> None:
        since = now - timedelta(minutes=self.settings.login_window_minutes)
        by_account = self.store.login_failures_since(since, account=email)
        by_address = self.store.login_failures_since(since, address=address)
        if (
            by_account >= self.settings.max_failures_per_account
            or by_address >= self.settings.max_failures_per_address
        ):
            log.warning("web.sign_in_throttled", by_account=by_account, by_address=by_address)
            raise SignInThrottledError(self.settings.login_window_minutes)

    def sign_in(self, email: str, password: str, address: str) -> UserRecord:
        """The account, or SignInRefusedError / SignInThrottledError."""
        now = self.clock()
        self._check_throttle(email, address, now)
        user = self.store.user(email) if email.strip() else None
        stored_hash = user.password_hash if user is not None else self._dummy_hash
        ok: bool
        try:
            ok = self.hasher.verify(stored_hash, password)
        except (VerificationError, InvalidHashError):
            ok = False
        if not ok or user is None or user.disabled:
            self.store.record_login_failure(email, address, at=now)
            log.info("web.sign_in_refused")
            raise SignInRefusedError()
        self.store.clear_login_failures(email)
        if self.hasher.check_needs_rehash(user.password_hash):
            # The new hash is the one the session's password stamp must match.
            digest = self.hasher.hash(password)
            self.store.update_user(user.email, password_hash=digest, at=now)
            user = replace(user, password_hash=digest)
        log.info("web.signed_in", user_id=user.id, role=user.role)
        return user
