"""Initial store: schools, pupils, calendars, registers, marks, amendments, the ledger,
quarantine, bookmarks, notifications, findings, outbox and runs.

Revision ID: 0001
Revises:
Create Date: 2025-01-06

Written out by hand: this revision, not tables.py, is the authority on the store's shape
(tests/store checks that the two agree). Instants are TIMESTAMP WITH TIME ZONE, always in UTC.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SESSION_CHECK = "session IN ('AM', 'PM')"

# The ledger is append-only: the database itself refuses to change or remove an entry, on top of
# the hash chain that proves nobody did. (Registers are kept 6 years; a future pruning revision
# will have to checkpoint the chain before it may drop old entries.)
SQLITE_LEDGER_TRIGGERS = (
    "CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger "
    "BEGIN SELECT RAISE(ABORT, 'ledger is append-only'); END",
    "CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger "
    "BEGIN SELECT RAISE(ABORT, 'ledger is append-only'); END",
)
PG_LEDGER_TRIGGERS = (
    "CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'ledger is append-only'; END $$",
    "CREATE TRIGGER ledger_no_update BEFORE UPDATE OR DELETE ON ledger "
    "FOR EACH ROW EXECUTE FUNCTION ledger_append_only()",
    "CREATE TRIGGER ledger_no_truncate BEFORE TRUNCATE ON ledger "
    "FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only()",
)


def _instant(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _str(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.String(), nullable=nullable)


def _session(name: str = "session", nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.String(length=2), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "schools",
        _str("id", nullable=False),
        _str("urn"),
        _str("laestab"),
        _str("name", nullable=False),
        _str("la_code"),
        _str("phase"),
        _str("vendor"),
        _instant("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_schools"),
    )

    op.create_table(
        "pupils",
        _str("id", nullable=False),
        _str("school_id", nullable=False),
        _str("mis_id", nullable=False),
        _str("upn"),
        _str("former_upn"),
        _str("legal_forename"),
        _str("legal_surname"),
        _str("middle_names"),
        _str("preferred_forename"),
        _str("preferred_surname"),
        sa.Column("dob", sa.Date(), nullable=True),
        _str("sex"),
        _str("nc_year"),
        _str("reg_group"),
        sa.Column("starting_day", sa.Date(), nullable=True),
        sa.Column("leaving_date", sa.Date(), nullable=True),
        _str("deletion_ground"),
        sa.Column("future_address", sa.JSON(), nullable=True),
        _str("new_school"),
        sa.Column("address", sa.JSON(), nullable=True),
        sa.Column("contacts", sa.JSON(), nullable=False),
        sa.Column("ehcp", sa.Boolean(), nullable=False),
        sa.Column("sen_support", sa.Boolean(), nullable=False),
        sa.Column("fsm", sa.Boolean(), nullable=False),
        sa.Column("looked_after", sa.Boolean(), nullable=False),
        sa.Column("has_social_worker", sa.Boolean(), nullable=False),
        sa.Column("boarder", sa.Boolean(), nullable=False),
        _instant("first_seen_at", nullable=False),
        _instant("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_pupils"),
        sa.UniqueConstraint("school_id", "mis_id", name="uq_pupils_school_id_mis_id"),
    )

    op.create_table(
        "calendars",
        _str("school_id", nullable=False),
        sa.Column("terms", sa.JSON(), nullable=False),
        sa.Column("closures", sa.JSON(), nullable=False),
        sa.Column("register_times", sa.JSON(), nullable=False),
        _instant("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("school_id", name="pk_calendars"),
    )

    op.create_table(
        "registers",
        _str("school_id", nullable=False),
        _str("group", nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        _session(),
        _instant("opened_at"),
        _instant("completed_at"),
        _str("taken_by"),
        _str("source_ref"),
        _instant("first_seen_at", nullable=False),
        _instant("last_seen_at", nullable=False),
        sa.CheckConstraint(SESSION_CHECK, name="ck_registers_session"),
        sa.PrimaryKeyConstraint("school_id", "group", "date", "session", name="pk_registers"),
    )
    op.create_index("ix_registers_school_id_date", "registers", ["school_id", "date"])

    op.create_table(
        "marks",
        _str("school_id", nullable=False),
        _str("pupil_id", nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        _session(),
        sa.Column("code", sa.String(length=2), nullable=False),
        _str("vendor_code"),
        sa.Column("minutes_late", sa.Integer(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        _instant("recorded_at"),
        _str("recorded_by"),
        _str("source_ref"),
        _instant("first_seen_at", nullable=False),
        _instant("last_seen_at", nullable=False),
        _instant("changed_at", nullable=False),
        _instant("deleted_at"),
        sa.CheckConstraint(SESSION_CHECK, name="ck_marks_session"),
        sa.PrimaryKeyConstraint("school_id", "pupil_id", "date", "session", name="pk_marks"),
    )
    op.create_index("ix_marks_school_id_date", "marks", ["school_id", "date"])
    op.create_index("ix_marks_school_id_changed_at", "marks", ["school_id", "changed_at"])

    op.create_table(
        "amendments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _str("school_id", nullable=False),
        _str("natural_key", nullable=False),
        _str("pupil_id", nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        _session(),
        _str("original_code"),
        _str("amended_code"),
        sa.Column("reason", sa.Text(), nullable=True),
        _instant("amended_at"),
        _str("amended_by_name"),
        _str("amended_by_position"),
        _str("source", nullable=False),
        _str("source_ref"),
        _instant("first_seen_at", nullable=False),
        _instant("last_seen_at", nullable=False),
        sa.CheckConstraint(SESSION_CHECK, name="ck_amendments_session"),
        sa.PrimaryKeyConstraint("id", name="pk_amendments"),
        sa.UniqueConstraint("school_id", "natural_key", name="uq_amendments_school_id_natural_key"),
    )
    op.create_index("ix_amendments_school_id_date", "amendments", ["school_id", "date"])

    op.create_table(
        "ledger",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        _str("school_id", nullable=False),
        _str("pupil_id", nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        _session(),
        _str("kind", nullable=False),
        _str("original_code"),
        _str("new_code"),
        _instant("observed_at", nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.CheckConstraint(SESSION_CHECK, name="ck_ledger_session"),
        sa.CheckConstraint(
            "kind IN ('observed_change', 'observed_new', 'observed_deleted', 'mis_amendment')",
            name="ck_ledger_kind",
        ),
        sa.PrimaryKeyConstraint("seq", name="pk_ledger"),
        sa.UniqueConstraint("hash", name="uq_ledger_hash"),
    )
    op.create_index(
        "ix_ledger_school_id_pupil_id_date", "ledger", ["school_id", "pupil_id", "date"]
    )
    dialect = op.get_context().dialect.name
    for statement in PG_LEDGER_TRIGGERS if dialect == "postgresql" else SQLITE_LEDGER_TRIGGERS:
        op.execute(statement)

    op.create_table(
        "quarantine",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _str("school_id", nullable=False),
        _str("resource", nullable=False),
        _str("record_ref", nullable=False),
        _str("field", nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("raw", sa.Text(), nullable=True),
        sa.Column("occurrences", sa.Integer(), nullable=False),
        _instant("first_seen_at", nullable=False),
        _instant("last_seen_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_quarantine"),
        sa.UniqueConstraint(
            "school_id",
            "resource",
            "record_ref",
            "field",
            name="uq_quarantine_school_id_resource_record_ref_field",
        ),
    )

    op.create_table(
        "bookmarks",
        _str("school_id", nullable=False),
        _str("resource", nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        _instant("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("school_id", "resource", name="pk_bookmarks"),
    )

    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _str("school_id", nullable=False),
        _str("natural_key", nullable=False),
        _str("kind", nullable=False),
        _str("pupil_id"),
        sa.Column("episode_start", sa.Date(), nullable=True),
        _instant("made_at", nullable=False),
        _str("channel", nullable=False),
        _str("reference"),
        _instant("recorded_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_notifications"),
        sa.UniqueConstraint(
            "school_id", "natural_key", name="uq_notifications_school_id_natural_key"
        ),
    )
    op.create_index(
        "ix_notifications_school_id_pupil_id", "notifications", ["school_id", "pupil_id"]
    )

    op.create_table(
        "findings",
        _str("fingerprint", nullable=False),
        _str("rule", nullable=False),
        _str("severity", nullable=False),
        _str("school_id", nullable=False),
        _str("pupil_id"),
        sa.Column("first_date", sa.Date(), nullable=True),
        _session("first_session", nullable=True),
        sa.Column("last_date", sa.Date(), nullable=True),
        _session("last_session", nullable=True),
        sa.Column("due", sa.Date(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        _str("status", nullable=False),
        _instant("first_seen", nullable=False),
        _instant("last_seen", nullable=False),
        _instant("resolved_at"),
        _instant("acknowledged_at"),
        sa.Column("ack_note", sa.Text(), nullable=True),
        sa.CheckConstraint("status IN ('open', 'resolved')", name="ck_findings_status"),
        sa.CheckConstraint("severity IN ('error', 'warning', 'info')", name="ck_findings_severity"),
        sa.PrimaryKeyConstraint("fingerprint", name="pk_findings"),
    )
    op.create_index("ix_findings_school_id_status", "findings", ["school_id", "status"])

    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _str("return_kind", nullable=False),
        _str("school_id", nullable=False),
        _str("pupil_id"),
        _str("episode"),
        _str("idempotency_key", nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        _str("artefact_path"),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        _str("state", nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("receipt", sa.Text(), nullable=True),
        _instant("created_at", nullable=False),
        _instant("updated_at", nullable=False),
        sa.CheckConstraint(
            "state IN ('queued', 'sent', 'acknowledged', 'failed')", name="ck_outbox_state"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.UniqueConstraint("idempotency_key", name="uq_outbox_idempotency_key"),
    )
    op.create_index("ix_outbox_state", "outbox", ["state"])

    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _str("command", nullable=False),
        _instant("started_at", nullable=False),
        _instant("finished_at"),
        _str("outcome"),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
    )


def downgrade() -> None:
    dialect = op.get_context().dialect.name
    for table in (
        "runs",
        "outbox",
        "findings",
        "notifications",
        "bookmarks",
        "quarantine",
        "ledger",
        "amendments",
        "marks",
        "registers",
        "calendars",
        "pupils",
        "schools",
    ):
        op.drop_table(table)  # drops the table's indexes and triggers with it
    if dialect == "postgresql":
        op.execute("DROP FUNCTION ledger_append_only()")
