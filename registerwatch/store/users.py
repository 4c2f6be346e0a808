"""Accounts of the web app (``registerwatch serve``), its audit trail and its failed sign-ins.

- ``users``: one row per person: email (lower case, unique), the Argon2 hash of the password
  (never the password), role, and which schools they may see (``user_schools``, or
  ``all_schools``); ``disabled`` keeps the row (the audit names it) while refusing sign-in;
  ``morning_email`` asks for the morning summary email.
- ``audit``: who did what and when: every acknowledgement, notification recorded, artefact
  downloaded, admin action and pupil page viewed. Append-only; the finding page shows the
  entries whose ``subject`` is its fingerprint.
- ``login_failures``: one row per wrong password, by account and by address, so sign-in is
  throttled across processes and restarts.

The hashing itself lives with the app (``registerwatch.web.accounts``): the store keeps text.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from registerwatch.errors import StoreError
from registerwatch.store import tables as t
from registerwatch.store.base import StoreBase

ROLES = ("viewer", "data-manager", "admin")

users = sa.Table(
    "users",
    t.metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("email", sa.String, nullable=False),
    sa.Column("password_hash", sa.String, nullable=False),
    sa.Column("role", sa.String, nullable=False),
    sa.Column("all_schools", sa.Boolean, nullable=False),
    sa.Column("disabled", sa.Boolean, nullable=False),
    sa.Column("morning_email", sa.Boolean, nullable=False),
    sa.Column("created_at", t.UTCDateTime, nullable=False),
    sa.Column("updated_at", t.UTCDateTime, nullable=False),
    sa.UniqueConstraint("email"),
    sa.CheckConstraint("role IN ('viewer', 'data-manager', 'admin')", name="role"),
)

user_schools = sa.Table(
    "user_schools",
    t.metadata,
    sa.Column("user_id", sa.Integer, primary_key=True),
    sa.Column("school_id", sa.String, primary_key=True),
)

audit = sa.Table(
    "audit",
    t.metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", t.UTCDateTime, nullable=False),
    sa.Column("actor", sa.String, nullable=False),
    sa.Column("action", sa.String, nullable=False),
    sa.Column("school_id", sa.String),
    sa.Column("subject", sa.String),
    sa.Column("detail", sa.Text),
)
sa.Index(None, audit.c.subject)

login_failures = sa.Table(
    "login_failures",
    t.metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", t.UTCDateTime, nullable=False),
    sa.Column("account", sa.String, nullable=False),
    sa.Column("address", sa.String, nullable=False),
)
sa.Index(None, login_failures.c.account)
sa.Index(None, login_failures.c.address)


@dataclass(frozen=True)
class UserRecord:
    id: int
    email: str
    password_hash: str
    role: str  # viewer | data-manager | admin
    all_schools: bool
    schools: tuple[str, ...]
    disabled: bool
    morning_email: bool
    created_at: datetime
    updated_at: datetime

    def may_see(self, school_id: str) -> bool:
        return self.all_schools or school_id in self.schools


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    actor: str  # the user's email
    action: str  # acknowledged, notification_recorded, artefact_downloaded, pupil_viewed, ...
    school_id: str | None = None
    subject: str | None = None  # a fingerprint, a pupil id, an outbox id, a user's email
    detail: str | None = None


def normalise_email(email: str) -> str:
    return email.strip().lower()


# An account with the schools it may see, one row per school, in one query; the lookups by
# id and email are built once (the app looks its user up on every request).
_USER_WITH_SCHOOLS = (
    sa.select(users, user_schools.c.school_id)
    .select_from(users.outerjoin(user_schools, user_schools.c.user_id == users.c.id))
    .order_by(user_schools.c.school_id)
)
_USER_BY_ID = _USER_WITH_SCHOOLS.where(users.c.id == sa.bindparam("user_id"))
_USER_BY_EMAIL = _USER_WITH_SCHOOLS.where(users.c.email == sa.bindparam("email"))


def _user_from(rows: Sequence[sa.Row[Any]]) -> UserRecord | None:
    if not rows:
        return None
    account = {column.name: rows[0]._mapping[column] for column in users.columns}
    schools = tuple(r.school_id for r in rows if r.school_id is not None)
    return UserRecord(schools=schools, **account)


class UsersStore(StoreBase):
    # -- users ---------------------------------------------------------------------------------

    def add_user(
        self,
        email: str,
        password_hash: str,
        role: str,
        *,
        schools: Iterable[str] = (),
        all_schools: bool = False,
        morning_email: bool = False,
        at: datetime | None = None,
        conn: sa.Connection | None = None,
    ) -> UserRecord:
        """Create an account; StoreError if the email is taken or the role unknown."""
        if role not in ROLES:
            raise StoreError(f"role {role!r} is not one of {', '.join(ROLES)}")
        now = self._at(at)
        address = normalise_email(email)
        with self._write(conn) as c:
            if c.execute(sa.select(users.c.id).where(users.c.email == address)).first():
                raise StoreError(
                    f"user {address} already exists: use `registerwatch users set-password`"
                )
            user_id = c.execute(
                sa.insert(users)
                .values(
                    email=address,
                    password_hash=password_hash,
                    role=role,
                    all_schools=all_schools,
                    disabled=False,
                    morning_email=morning_email,
                    created_at=now,
                    updated_at=now,
                )
                .returning(users.c.id)
            ).scalar_one()
            rows = [{"user_id": user_id, "school_id": s} for s in sorted(set(schools))]
            if rows:
                c.execute(sa.insert(user_schools), rows)
            user = self._user_where(c, users.c.id == user_id)
        assert user is not None
        return user

    def _user_where(self, c: sa.Connection, where: sa.ColumnElement[bool]) -> UserRecord | None:
        return _user_from(c.execute(_USER_WITH_SCHOOLS.where(where)).all())

    def user(
        self,
        email: str | None = None,
        *,
        user_id: int | None = None,
        conn: sa.Connection | None = None,
    ) -> UserRecord | None:
        """The account with this email (any case) or id, or None."""
        if (email is None) == (user_id is None):
            raise TypeError("give exactly one of email or user_id")
        with self._read(conn) as c:
            if user_id is not None:
                return _user_from(c.execute(_USER_BY_ID, {"user_id": user_id}).all())
            address = normalise_email(email or "")
            return _user_from(c.execute(_USER_BY_EMAIL, {"email": address}).all())

    def users(self, *, conn: sa.Connection | None = None) -> list[UserRecord]:
        with self._read(conn) as c:
            ids = c.execute(sa.select(users.c.id).order_by(users.c.email)).scalars().all()
            found = [self._user_where(c, users.c.id == i) for i in ids]
        return [u for u in found if u is not None]

    def update_user(
        self,
        email: str,
        *,
        password_hash: str | None = None,
        disabled: bool | None = None,
        morning_email: bool | None = None,
        at: datetime | None = None,
        conn: sa.Connection | None = None,
    ) -> bool:
        """Change an account's password hash, disabled flag or morning email; False if there
        is no such account."""
        values: dict[str, Any] = {"updated_at": self._at(at)}
        if password_hash is not None:
            values["password_hash"] = password_hash
        if disabled is not None:
            values["disabled"] = disabled
        if morning_email is not None:
            values["morning_email"] = morning_email
        stmt = sa.update(users).where(users.c.email == normalise_email(email)).values(**values)
        with self._write(conn) as c:
            return c.execute(stmt).rowcount == 1

    # -- audit ---------------------------------------------------------------------------------

    def add_audit(self, entry: AuditEntry, *, conn: sa.Connection | None = None) -> None:
        with self._write(conn) as c:
            c.execute(
                sa.insert(audit).values(
                    at=self._at(entry.at),
                    actor=entry.actor,
                    action=entry.action,
                    school_id=entry.school_id,
                    subject=entry.subject,
                    detail=entry.detail,
                )
            )

    def audit_entries(
        self,
        *,
        subject: str | None = None,
        actor: str | None = None,
        limit: int = 200,
        conn: sa.Connection | None = None,
    ) -> list[AuditEntry]:
        """Audit entries, oldest first (of the most recent ``limit``)."""
        query = sa.select(audit).order_by(audit.c.at.desc(), audit.c.id.desc()).limit(limit)
        if subject is not None:
            query = query.where(audit.c.subject == subject)
        if actor is not None:
            query = query.where(audit.c.actor == actor)
        with self._read(conn) as c:
            rows = c.execute(query).all()
        return [
            AuditEntry(r.at, r.actor, r.action, r.school_id, r.subject, r.detail)
            for r in reversed(rows)
        ]

    # -- sign-in throttling ----------------------------------------------------------------------

    def record_login_failure(
        self,
        account: str,
        address: str,
        *,
        at: datetime | None = None,
        conn: sa.Connection | None = None,
    ) -> None:
        with self._write(conn) as c:
            c.execute(
                sa.insert(login_failures).values(
                    at=self._at(at), account=normalise_email(account), address=address
                )
            )

    def login_failures_since(
        self,
        since: datetime,
        *,
        account: str | None = None,
        address: str | None = None,
        conn: sa.Connection | None = None,
    ) -> int:
        """Wrong passwords since ``since`` for an account, or from an address."""
        query = (
            sa.select(sa.func.count())
            .select_from(login_failures)
            .where(login_failures.c.at >= self._at(since))
        )
        if account is not None:
            query = query.where(login_failures.c.account == normalise_email(account))
        if address is not None:
            query = query.where(login_failures.c.address == address)
        with self._read(conn) as c:
            return int(c.execute(query).scalar_one())

    def clear_login_failures(self, account: str, *, conn: sa.Connection | None = None) -> None:
        """A successful sign-in forgets the account's failures (not the address's)."""
        with self._write(conn) as c:
            c.execute(
                sa.delete(login_failures).where(
                    login_failures.c.account == normalise_email(account)
                )
            )

    # -- what the app's pages summarise -----------------------------------------------------------

    def finding_school(self, fingerprint: str, *, conn: sa.Connection | None = None) -> str | None:
        """The school a finding belongs to (None: no such finding), without loading the
        school's findings."""
        fd = t.findings
        with self._read(conn) as c:
            row = c.execute(
                sa.select(fd.c.school_id).where(fd.c.fingerprint == fingerprint)
            ).first()
        return None if row is None else str(row.school_id)

    def pupil_school(self, pupil_id: str, *, conn: sa.Connection | None = None) -> str | None:
        p = t.pupils
        with self._read(conn) as c:
            row = c.execute(sa.select(p.c.school_id).where(p.c.id == pupil_id)).first()
        return None if row is None else str(row.school_id)

    def mark_code_counts(
        self, school_id: str, start: date, end: date, *, conn: sa.Connection | None = None
    ) -> dict[str, int]:
        """Live marks per code between two days (inclusive): a term's attendance in one query."""
        m = t.marks
        query = (
            sa.select(m.c.code, sa.func.count())
            .where(
                m.c.school_id == school_id,
                m.c.date >= start,
                m.c.date <= end,
                m.c.deleted_at.is_(None),
            )
            .group_by(m.c.code)
        )
        with self._read(conn) as c:
            return {str(code): int(n) for code, n in c.execute(query)}

    def open_finding_counts(
        self, school_id: str, today: date, *, conn: sa.Connection | None = None
    ) -> dict[str, int]:
        """Open findings of a school by severity ("error", "warning", "info"), and "overdue"
        (due before ``today``), in one query."""
        fd = t.findings
        overdue = sa.case((fd.c.due < today, 1), else_=0)
        query = (
            sa.select(fd.c.severity, sa.func.count(), sa.func.sum(overdue))
            .where(fd.c.school_id == school_id, fd.c.status == "open")
            .group_by(fd.c.severity)
        )
        counts = {"overdue": 0}
        with self._read(conn) as c:
            for severity, n, late in c.execute(query):
                counts[str(severity)] = int(n)
                counts["overdue"] += int(late or 0)
        return counts

    def outbox_state_counts(
        self, school_id: str, *, conn: sa.Connection | None = None
    ) -> dict[str, int]:
        o = t.outbox
        query = (
            sa.select(o.c.state, sa.func.count())
            .where(o.c.school_id == school_id)
            .group_by(o.c.state)
        )
        with self._read(conn) as c:
            return {str(state): int(n) for state, n in c.execute(query)}
