"""The store's tables, as SQLAlchemy Core metadata.

The Alembic revisions under ``migrations/versions`` are the authority on the database's shape;
this module must describe the same shape (``tests/store`` compares the two), and is what the
queries in ``store.py`` are written against.

Portable types only, so SQLite (the default) and PostgreSQL behave alike. Instants are stored in
UTC: :class:`UTCDateTime` refuses naive datetimes on the way in and hands back aware UTC
datetimes on the way out, on both backends.

``school_id`` columns are deliberately not foreign keys: registers are kept for 6 years (The
School Attendance (Pupil Registration) (England) Regulations 2024, reg. 13), so the store keeps the
records of a school that has left the config, and keeps the marks of a pupil whose own record was
quarantined rather than drop a legal document.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from registerwatch.store.ledger import KINDS

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

# The CHECK constraint on ledger.kind (migrations keep their own copy, as written then).
LEDGER_KINDS = KINDS
OUTBOX_STATES = ("queued", "sent", "acknowledged", "failed")
FINDING_STATUSES = ("open", "resolved")
SEVERITIES = ("error", "warning", "info")


def _to_utc(value: Any) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"naive datetime {value.isoformat()} refused: the store keeps instants, "
            "so give it a timezone (UTC or Europe/London)"
        )
    return value.astimezone(UTC)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """An instant: aware in, stored as UTC, aware UTC out (SQLite keeps no offset of its own).

    The bind and result processors are written out here rather than left to the stacked
    TypeDecorator + DATETIME processors (on SQLite, to and from SQLAlchemy's own DATETIME text
    "YYYY-MM-DD HH:MM:SS.ffffff"): a school year is ~570k marks with several instants each, and
    the stacked version was most of the cost of writing them. process_bind_param stays for
    literal rendering (``alembic upgrade --sql``).
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = _to_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        instant: datetime = value
        if instant.tzinfo is None:
            return instant.replace(tzinfo=UTC)
        return instant.astimezone(UTC)

    def bind_processor(self, dialect: Dialect) -> Any:
        sqlite = dialect.name == "sqlite"
        # One batch binds the same "now" to every row: remember the last conversion. The memo is
        # one tuple, replaced whole, so threads sharing the processor never see half of it.
        memo: list[tuple[Any, Any]] = [(None, None)]

        def process(value: datetime | None) -> Any:
            if value is None:
                return None
            last = memo[0]
            if last[0] is value:
                return last[1]
            utc = _to_utc(value)
            bound: Any = (
                utc.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
                if sqlite
                else utc
            )
            memo[0] = (value, bound)
            return bound

        return process

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)

        def process(value: str | None) -> datetime | None:
            if value is None:
                return None
            try:
                # The bind processor writes UTC without an offset: parsing it with "+00:00"
                # appended gives the aware UTC instant (tzinfo is datetime.UTC itself) at a
                # fifth of the cost of parse-then-replace, which was ~15% of reading a
                # school year of marks.
                return _from_iso(value + "+00:00")
            except ValueError:  # text that carries its own offset (or "Z")
                parsed = _from_iso(value)
            if parsed.tzinfo is None:
                return parsed.replace(tzinfo=UTC)
            return parsed.astimezone(UTC)

        return process


_from_iso = datetime.fromisoformat


def _session_check() -> sa.CheckConstraint:
    return sa.CheckConstraint("session IN ('AM', 'PM')", name="session")


def _in_check(column: str, values: tuple[str, ...], name: str) -> sa.CheckConstraint:
    allowed = ", ".join(f"'{v}'" for v in values)
    return sa.CheckConstraint(f"{column} IN ({allowed})", name=name)


schools = sa.Table(
    "schools",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("urn", sa.String),
    sa.Column("laestab", sa.String),
    sa.Column("name", sa.String, nullable=False),
    sa.Column("la_code", sa.String),
    sa.Column("phase", sa.String),
    sa.Column("vendor", sa.String),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

pupils = sa.Table(
    "pupils",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("school_id", sa.String, nullable=False),
    sa.Column("mis_id", sa.String, nullable=False),
    sa.Column("upn", sa.String),
    sa.Column("former_upn", sa.String),
    sa.Column("legal_forename", sa.String),
    sa.Column("legal_surname", sa.String),
    sa.Column("middle_names", sa.String),
    sa.Column("preferred_forename", sa.String),
    sa.Column("preferred_surname", sa.String),
    sa.Column("dob", sa.Date),
    sa.Column("sex", sa.String),
    sa.Column("nc_year", sa.String),
    sa.Column("reg_group", sa.String),
    sa.Column("starting_day", sa.Date),
    sa.Column("leaving_date", sa.Date),
    sa.Column("deletion_ground", sa.String),
    sa.Column("future_address", sa.JSON),
    sa.Column("new_school", sa.String),
    sa.Column("address", sa.JSON),
    sa.Column("contacts", sa.JSON, nullable=False),
    sa.Column("ehcp", sa.Boolean, nullable=False),
    sa.Column("sen_support", sa.Boolean, nullable=False),
    sa.Column("fsm", sa.Boolean, nullable=False),
    sa.Column("looked_after", sa.Boolean, nullable=False),
    sa.Column("has_social_worker", sa.Boolean, nullable=False),
    sa.Column("boarder", sa.Boolean, nullable=False),
    sa.Column("first_seen_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("school_id", "mis_id"),
)

calendars = sa.Table(
    "calendars",
    metadata,
    sa.Column("school_id", sa.String, primary_key=True),
    sa.Column("terms", sa.JSON, nullable=False),
    sa.Column("closures", sa.JSON, nullable=False),
    sa.Column("register_times", sa.JSON, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

registers = sa.Table(
    "registers",
    metadata,
    sa.Column("school_id", sa.String, primary_key=True),
    sa.Column("group", sa.String, primary_key=True),
    sa.Column("date", sa.Date, primary_key=True),
    sa.Column("session", sa.String(2), primary_key=True),
    sa.Column("opened_at", UTCDateTime),
    sa.Column("completed_at", UTCDateTime),
    sa.Column("taken_by", sa.String),
    sa.Column("source_ref", sa.String),
    sa.Column("first_seen_at", UTCDateTime, nullable=False),
    sa.Column("last_seen_at", UTCDateTime, nullable=False),
    # Moves when the register's content changes (sync's upsert), so a nightly scan finds the
    # sessions whose registers changed; NULL (never after migration 0008) counts as changed.
    sa.Column("changed_at", UTCDateTime),
    _session_check(),
)
sa.Index(None, registers.c.school_id, registers.c.date)
sa.Index(None, registers.c.school_id, registers.c.changed_at)

# A mark that disappears from the MIS is flagged (deleted_at), never deleted: registers are legal
# documents kept 6 years. changed_at moves whenever the entry's content, or its deletion flag,
# changes, so an incremental scan reads only what changed since its last run.
marks = sa.Table(
    "marks",
    metadata,
    sa.Column("school_id", sa.String, primary_key=True),
    sa.Column("pupil_id", sa.String, primary_key=True),
    sa.Column("date", sa.Date, primary_key=True),
    sa.Column("session", sa.String(2), primary_key=True),
    sa.Column("code", sa.String(2), nullable=False),
    sa.Column("vendor_code", sa.String),
    sa.Column("minutes_late", sa.Integer),
    sa.Column("comment", sa.Text),
    sa.Column("recorded_at", UTCDateTime),
    sa.Column("recorded_by", sa.String),
    sa.Column("source_ref", sa.String),
    sa.Column("first_seen_at", UTCDateTime, nullable=False),
    sa.Column("last_seen_at", UTCDateTime, nullable=False),
    sa.Column("changed_at", UTCDateTime, nullable=False),
    sa.Column("deleted_at", UTCDateTime),
    _session_check(),
)
sa.Index(None, marks.c.school_id, marks.c.date)
sa.Index(None, marks.c.school_id, marks.c.changed_at)

# natural_key makes a reload idempotent: the MIS's own amendment id when it gives one, else a hash
# of the fields that identify the change (see store._amendment_key). NULLs never collide in a
# unique index, so the key is computed rather than left to nullable columns.
amendments = sa.Table(
    "amendments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("school_id", sa.String, nullable=False),
    sa.Column("natural_key", sa.String, nullable=False),
    sa.Column("pupil_id", sa.String, nullable=False),
    sa.Column("date", sa.Date, nullable=False),
    sa.Column("session", sa.String(2), nullable=False),
    sa.Column("original_code", sa.String),
    sa.Column("amended_code", sa.String),
    sa.Column("reason", sa.Text),
    sa.Column("amended_at", UTCDateTime),
    sa.Column("amended_by_name", sa.String),
    sa.Column("amended_by_position", sa.String),
    sa.Column("source", sa.String, nullable=False),
    sa.Column("source_ref", sa.String),
    sa.Column("first_seen_at", UTCDateTime, nullable=False),
    sa.Column("last_seen_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("school_id", "natural_key"),
    _session_check(),
)
sa.Index(None, amendments.c.school_id, amendments.c.date)

# Append-only and hash-chained: each row's hash covers its fields and the previous row's hash.
# The migration adds triggers that refuse UPDATE and DELETE; verify_ledger proves the rest.
ledger = sa.Table(
    "ledger",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("school_id", sa.String, nullable=False),
    sa.Column("pupil_id", sa.String, nullable=False),
    sa.Column("date", sa.Date, nullable=False),
    sa.Column("session", sa.String(2), nullable=False),
    sa.Column("kind", sa.String, nullable=False),
    sa.Column("original_code", sa.String),
    sa.Column("new_code", sa.String),
    sa.Column("observed_at", UTCDateTime, nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    # The HMAC key that signed the entry (NULL: plain SHA-256); migration 0005.
    sa.Column("key_id", sa.String),
    sa.UniqueConstraint("hash"),
    _session_check(),
    _in_check("kind", LEDGER_KINDS, "kind"),
)
sa.Index(None, ledger.c.school_id, ledger.c.pupil_id, ledger.c.date)
# The scan reads only a school's observed changes and deletions (Store.ledger(kinds=...)); sync
# writes one observed_new entry per mark, so without this it would walk the whole ledger.
sa.Index(None, ledger.c.school_id, ledger.c.kind)

# record_ref and field are '' (not NULL) when absent, so the unique key holds on both backends.
quarantine = sa.Table(
    "quarantine",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("school_id", sa.String, nullable=False),
    sa.Column("resource", sa.String, nullable=False),
    sa.Column("record_ref", sa.String, nullable=False),
    sa.Column("field", sa.String, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("raw", sa.Text),
    sa.Column("occurrences", sa.Integer, nullable=False),
    sa.Column("first_seen_at", UTCDateTime, nullable=False),
    sa.Column("last_seen_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("school_id", "resource", "record_ref", "field"),
)

bookmarks = sa.Table(
    "bookmarks",
    metadata,
    sa.Column("school_id", sa.String, primary_key=True),
    sa.Column("resource", sa.String, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

notifications = sa.Table(
    "notifications",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("school_id", sa.String, nullable=False),
    sa.Column("natural_key", sa.String, nullable=False),
    sa.Column("kind", sa.String, nullable=False),
    sa.Column("pupil_id", sa.String),
    sa.Column("episode_start", sa.Date),
    sa.Column("made_at", UTCDateTime, nullable=False),
    sa.Column("channel", sa.String, nullable=False),
    sa.Column("reference", sa.String),
    sa.Column("recorded_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("school_id", "natural_key"),
)
sa.Index(None, notifications.c.school_id, notifications.c.pupil_id)

findings = sa.Table(
    "findings",
    metadata,
    sa.Column("fingerprint", sa.String, primary_key=True),
    sa.Column("rule", sa.String, nullable=False),
    sa.Column("severity", sa.String, nullable=False),
    sa.Column("school_id", sa.String, nullable=False),
    sa.Column("pupil_id", sa.String),
    sa.Column("first_date", sa.Date),
    sa.Column("first_session", sa.String(2)),
    sa.Column("last_date", sa.Date),
    sa.Column("last_session", sa.String(2)),
    sa.Column("due", sa.Date),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("evidence", sa.JSON, nullable=False),
    sa.Column("status", sa.String, nullable=False),
    sa.Column("first_seen", UTCDateTime, nullable=False),
    sa.Column("last_seen", UTCDateTime, nullable=False),
    sa.Column("resolved_at", UTCDateTime),
    sa.Column("acknowledged_at", UTCDateTime),
    sa.Column("ack_note", sa.Text),
    # How a resolved finding ended: NULL (the breach went away), 'late' (the return it asked
    # for was made after its due date: kept and counted, issue 9).
    sa.Column("resolution", sa.String),
    _in_check("status", FINDING_STATUSES, "status"),
    _in_check("severity", SEVERITIES, "severity"),
)
sa.Index(None, findings.c.school_id, findings.c.status)

# Each status change of a finding, by fingerprint, with its cause: the history a backdated
# scan may not rewrite (`registerwatch findings history`).
finding_events = sa.Table(
    "finding_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("fingerprint", sa.String, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("event", sa.String, nullable=False),
    sa.Column("cause", sa.String, nullable=False),
    sa.Column("detail", sa.Text),
)
sa.Index(None, finding_events.c.fingerprint)

# Per school, what the last sync attempts achieved: the last school day whose sessions were
# pulled cleanly (the scan judges nothing after it), and the last attempt's outcome.
sync_status = sa.Table(
    "sync_status",
    metadata,
    sa.Column("school_id", sa.String, primary_key=True),
    sa.Column("registers_complete_to", sa.Date),
    sa.Column("last_success_at", UTCDateTime),
    sa.Column("last_attempt_at", UTCDateTime, nullable=False),
    sa.Column("last_outcome", sa.String, nullable=False),
    sa.Column("last_error", sa.Text),
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("return_kind", sa.String, nullable=False),
    sa.Column("school_id", sa.String, nullable=False),
    sa.Column("pupil_id", sa.String),
    sa.Column("episode", sa.String),
    sa.Column("idempotency_key", sa.String, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("artefact_path", sa.String),
    sa.Column("payload", sa.LargeBinary, nullable=False),
    sa.Column("state", sa.String, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("last_error", sa.Text),
    sa.Column("receipt", sa.Text),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    # The receiver's last answer as data (migration 0005): its status code, how it was
    # classified, and the SHA-256 of its whole body (the body itself is never kept).
    sa.Column("remote_status", sa.Integer),
    sa.Column("remote_class", sa.String),
    sa.Column("remote_sha256", sa.String(64)),
    sa.UniqueConstraint("idempotency_key"),
    _in_check("state", OUTBOX_STATES, "state"),
)
sa.Index(None, outbox.c.state)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("command", sa.String, nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime),
    sa.Column("outcome", sa.String),
    sa.Column("counts", sa.JSON, nullable=False),
    # The ledger's tip ("SEQ:HASH") when the run finished: a high-water mark outside the chain.
    sa.Column("ledger_tip", sa.String),
)

# The incremental scan's per-pupil summary (store.summary): each pupil's live marks of one month
# as the lean read's tokens, so a nightly scan rereads only the months whose marks changed.
pupil_summary = sa.Table(
    "pupil_summary",
    metadata,
    sa.Column("school_id", sa.String, primary_key=True),
    sa.Column("pupil_id", sa.String, primary_key=True),
    sa.Column("period", sa.String(7), primary_key=True),  # "YYYY-MM"
    sa.Column("marks", sa.Text, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

# Per school: how far the summary follows the marks (changed_at), and what the last scan that
# kept it judged (its as_of and the basis: rules, rule settings and calendar).
scan_state = sa.Table(
    "scan_state",
    metadata,
    sa.Column("school_id", sa.String, primary_key=True),
    sa.Column("marks_seen_to", UTCDateTime),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("basis", sa.String, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

# Per school and rule: what an incremental rule carries from one scan to the next (JSON), judged
# as of ``judged_to``; the row with rule "*" holds what the next scan's delta compares against
# (scan.incremental). A cache of the records: dropping a row makes that rule's next scan full.
rule_state = sa.Table(
    "rule_state",
    metadata,
    sa.Column("school_id", sa.String, primary_key=True),
    sa.Column("rule", sa.String, primary_key=True),
    sa.Column("judged_to", sa.Date, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

__all__ = [
    "FINDING_STATUSES",
    "LEDGER_KINDS",
    "OUTBOX_STATES",
    "SEVERITIES",
    "UTCDateTime",
    "amendments",
    "bookmarks",
    "calendars",
    "finding_events",
    "findings",
    "ledger",
    "marks",
    "metadata",
    "notifications",
    "outbox",
    "pupil_summary",
    "pupils",
    "quarantine",
    "registers",
    "rule_state",
    "runs",
    "scan_state",
    "schools",
    "sync_status",
]
