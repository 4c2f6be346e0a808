"""The store: one place where synced registers, the ledger, findings and the outbox live.

Every method takes an optional ``conn``: pass the connection from :meth:`Store.transaction` to
make several calls one atomic unit (one school's sync is one transaction, so a killed run leaves
the store as it was before it). Without ``conn`` a writer runs in a transaction of its own and a
reader on a fresh connection.

Upserts go through one helper, :func:`_upsert`, which uses the dialect's
``INSERT ... ON CONFLICT DO UPDATE`` (SQLite and PostgreSQL spell it the same way) with
executemany batches.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import URL, Dialect

from registerwatch.errors import InvalidRecord, StoreError
from registerwatch.gcpause import collector_paused
from registerwatch.schema import (
    Amendment,
    Calendar,
    Finding,
    Mark,
    Notification,
    Pupil,
    Register,
    School,
    Session,
)
from registerwatch.store import tables as t
from registerwatch.store.engine import (
    WRITE_OPTION,
    make_engine,
    parse_url,
    prepare_sqlite_file,
    safe_url,
    sqlite_path,
)
from registerwatch.store.ledger import (
    GENESIS_HASH,
    KINDS,
    LedgerEntry,
    LedgerRecord,
    LedgerReport,
    canonical_json,
    instant_text,
    link,
    verify_chain,
)
from registerwatch.store.migrate import (
    UPGRADE_HINT,
    check_current,
    check_known,
    upgrade_connection,
)
from registerwatch.store.records import (
    MARK_CONTENT_FIELDS,
    DeletedMark,
    MarkChange,
    MarkDiff,
    MarkKey,
    OutboxItem,
    QuarantineEntry,
    RunRecord,
    StoredFinding,
)

# upsert_marks diffs this many incoming marks at a time (one read of the stored rows per chunk):
# bounds memory on a full-year pull while keeping the number of queries small.
MARK_CHUNK_ROWS = 20_000
# Below this many distinct pupils in a chunk, the read of stored rows is narrowed to those pupils
# (a changelog pull touches few pupils across many dates).
PUPIL_FILTER_LIMIT = 500
# Rows per fetch when Store.marks reads a school's marks.
MARK_READ_BATCH = 20_000
# Rows per executemany batch, and values per IN (...) list.
WRITE_BATCH_ROWS = 10_000
IN_LIST_LIMIT = 500

_SESSIONS = {"AM": Session.AM, "PM": Session.PM}
_UNSET: Any = object()

_MARK_READ_COLUMNS = (
    t.marks.c.pupil_id, t.marks.c.date, t.marks.c.session, t.marks.c.code,
    t.marks.c.vendor_code, t.marks.c.minutes_late, t.marks.c.comment, t.marks.c.recorded_at,
    t.marks.c.recorded_by, t.marks.c.source_ref,
)
_PUPIL_FIELDS = tuple(Pupil.model_fields)
_PUPIL_JSON_FIELDS = ("address", "future_address", "contacts")
_REGISTER_FIELDS = tuple(Register.model_fields)
_AMENDMENT_FIELDS = tuple(Amendment.model_fields)


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _construct_mark(row: Sequence[Any]) -> Mark:
    return Mark.model_construct(
        pupil_id=row[0], date=row[1], session=_SESSIONS[row[2]], code=row[3],
        vendor_code=row[4], minutes_late=row[5], comment=row[6], recorded_at=row[7],
        recorded_by=row[8], source_ref=row[9],
    )


_MARK_NAMES = (
    "pupil_id", "date", "session", "code", "vendor_code", "minutes_late", "comment",
    "recorded_at", "recorded_by", "source_ref",
)
_new_object = object.__new__
_set_attribute = object.__setattr__


def _build_mark(row: Sequence[Any]) -> Mark:
    # What Mark.model_construct does, without its per-field alias and default handling: a full
    # year is ~570k marks, and model_construct alone was most of the cost of reading them.
    mark = _new_object(Mark)
    _set_attribute(mark, "__dict__", {
        "pupil_id": row[0], "date": row[1], "session": _SESSIONS[row[2]], "code": row[3],
        "vendor_code": row[4], "minutes_late": row[5], "comment": row[6],
        "recorded_at": row[7], "recorded_by": row[8], "source_ref": row[9],
    })
    _set_attribute(mark, "__pydantic_fields_set__", set(_MARK_NAMES))
    _set_attribute(mark, "__pydantic_extra__", None)
    _set_attribute(mark, "__pydantic_private__", None)
    return mark


def _fast_path_holds() -> bool:
    """Use _build_mark only while it builds exactly what model_construct builds."""
    if tuple(Mark.model_fields) != _MARK_NAMES or Mark.__pydantic_post_init__:
        return False
    sample = ("s:1", date(2025, 1, 6), "AM", "L", "L", 5, "bus", datetime(2025, 1, 6, tzinfo=UTC),
              "JH", "r1")
    fast, slow = _build_mark(sample), _construct_mark(sample)
    return (
        fast == slow and fast.model_fields_set == slow.model_fields_set
        and fast.model_dump() == slow.model_dump() and vars(fast) == vars(slow)
    )


# Rows were validated as Marks on the way in, so they are not validated again on the way out.
_FAST_MARKS = _fast_path_holds()
_mark_from_row = _build_mark if _FAST_MARKS else _construct_mark


def _marks_from_rows(rows: Iterable[Sequence[Any]]) -> list[Mark]:
    """_build_mark over a batch of rows, inlined: the loop, not the model, was the remaining
    per-mark cost once the collector is paused (Store.marks)."""
    if not _FAST_MARKS:
        return [_construct_mark(row) for row in rows]
    marks: list[Mark] = []
    append = marks.append
    sessions, names = _SESSIONS, _MARK_NAMES
    for pupil_id, day, session, code, vendor_code, minutes_late, comment, recorded_at, \
            recorded_by, source_ref in rows:
        mark = _new_object(Mark)
        _set_attribute(mark, "__dict__", {
            "pupil_id": pupil_id, "date": day, "session": sessions[session], "code": code,
            "vendor_code": vendor_code, "minutes_late": minutes_late, "comment": comment,
            "recorded_at": recorded_at, "recorded_by": recorded_by, "source_ref": source_ref,
        })
        _set_attribute(mark, "__pydantic_fields_set__", set(names))
        _set_attribute(mark, "__pydantic_extra__", None)
        _set_attribute(mark, "__pydantic_private__", None)
        append(mark)
    return marks


def _mark_content(mark: Mark) -> tuple[Any, ...]:
    return tuple(getattr(mark, name) for name in MARK_CONTENT_FIELDS)


def _changed_fields(old: Mark, new: Mark) -> tuple[str, ...]:
    return tuple(
        name
        for name, a, b in zip(
            MARK_CONTENT_FIELDS, _mark_content(old), _mark_content(new), strict=True
        )
        if a != b
    )


def _sha256_key(parts: Sequence[Any]) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(list(parts)).encode("utf-8")).hexdigest()


def _amendment_key(amendment: Amendment) -> str:
    """The natural key that makes a reload of the same MIS amendment idempotent.

    The MIS's own reference when it gives one; otherwise the fields that identify the change
    (not the reason or the amender's position, which an MIS may fill in later: a later pull that
    adds them updates the record instead of duplicating it).
    """
    if amendment.source_ref:
        return f"ref:{amendment.source}:{amendment.source_ref}"
    return _sha256_key([
        str(amendment.source), amendment.pupil_id, amendment.date.isoformat(),
        str(amendment.session), amendment.original_code, amendment.amended_code,
        instant_text(amendment.amended_at) if amendment.amended_at else None,
        amendment.amended_by_name,
    ])


def _notification_key(notification: Notification) -> str:
    return _sha256_key([
        str(notification.kind), notification.pupil_id,
        notification.episode_start.isoformat() if notification.episode_start else None,
        instant_text(notification.made_at), notification.channel, notification.reference,
    ])


# A quarantined record as it arrived: text, bytes, or parsed JSON (kept as canonical JSON text).
RawRecord = str | bytes | Mapping[str, Any] | Sequence[Any] | None


def _raw_text(raw: RawRecord) -> str | None:
    if raw is None or isinstance(raw, str):
        return raw
    if isinstance(raw, bytes | bytearray):
        return bytes(raw).decode("utf-8", errors="replace")
    return canonical_json(raw) if isinstance(raw, Mapping | list | tuple) else str(raw)


def _upsert(
    conn: sa.Connection,
    table: sa.Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    keys: Sequence[str],
    update: Sequence[str] | None = None,
    update_exprs: Callable[[Any], Mapping[str, Any]] | None = None,
) -> None:
    """INSERT ... ON CONFLICT (keys) DO UPDATE (or DO NOTHING when there is nothing to update).

    ``update`` names columns taken from the incoming row; ``update_exprs`` builds any others from
    the insert statement (for example ``occurrences = occurrences + 1``).
    """
    if not rows:
        return
    dialect = conn.dialect.name
    if dialect == "sqlite":
        stmt: Any = sqlite_dialect.insert(table)
    elif dialect == "postgresql":
        stmt = pg_dialect.insert(table)
    else:  # pragma: no cover - parse_url refuses other backends
        raise StoreError(f"backend {dialect!r} is not supported")
    set_: dict[str, Any] = {name: stmt.excluded[name] for name in (update or ())}
    if update_exprs is not None:
        set_.update(update_exprs(stmt))
    if set_:
        stmt = stmt.on_conflict_do_update(index_elements=list(keys), set_=set_)
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=list(keys))
    for batch in _chunks(rows, WRITE_BATCH_ROWS):
        conn.execute(stmt, list(batch))


_LEDGER_COLUMNS = (
    "seq", "school_id", "pupil_id", "date", "session", "kind", "original_code", "new_code",
    "observed_at", "payload", "prev_hash", "hash",
)
LedgerRow = tuple[Any, ...]


def _ledger_insert(dialect: Dialect) -> tuple[str, Callable[[LedgerRecord, str], LedgerRow]]:
    """The ledger's INSERT for the driver's executemany, and a function making one row of it.

    A first sync appends one entry per mark (~200k by December). Through ``sa.insert`` each
    row's parameters were rebuilt by SQLAlchemy (a dict per row, every column's processor) and
    the payload serialised once more by the JSON type, on top of the canonical text already
    built for the hash: together a third of the append. Here the row is a tuple, only the two
    columns that need it are converted (with the column types' own bind processors, so the
    stored text is what SQLAlchemy writes), and the payload goes in as that canonical text:
    bound as it is on SQLite (which keeps JSON as TEXT) and CAST to json on PostgreSQL (which
    keeps json text as written). Never CAST on SQLite: "JSON" has NUMERIC affinity there.
    """
    if dialect.paramstyle not in ("qmark", "format", "pyformat"):  # pragma: no cover
        raise StoreError(f"driver paramstyle {dialect.paramstyle!r} is not supported")
    marker = "?" if dialect.paramstyle == "qmark" else "%s"
    quote = dialect.identifier_preparer.quote
    values = [
        f"CAST({marker} AS JSON)" if name == "payload" and dialect.name == "postgresql"
        else marker
        for name in _LEDGER_COLUMNS
    ]
    sql = (f"INSERT INTO {quote(t.ledger.name)} "
           f"({', '.join(quote(name) for name in _LEDGER_COLUMNS)}) "
           f"VALUES ({', '.join(values)})")

    def processor(name: str) -> Callable[[Any], Any]:
        column_type = t.ledger.c[name].type
        process = column_type.dialect_impl(dialect).bind_processor(dialect)
        return process if process is not None else (lambda value: value)

    day, instant = processor("date"), processor("observed_at")

    def to_row(r: LedgerRecord, payload_text: str) -> LedgerRow:
        return (
            r.seq, r.school_id, r.pupil_id, day(r.date), r.session.value, r.kind,
            r.original_code, r.new_code, instant(r.observed_at), payload_text, r.prev_hash,
            r.hash,
        )

    return sql, to_row


def _update_findings(
    conn: sa.Connection, fingerprints: Iterable[str], values: Mapping[str, Any]
) -> int:
    fd = t.findings
    updated = 0
    for batch in _chunks(sorted(set(fingerprints)), IN_LIST_LIMIT):
        updated += conn.execute(
            sa.update(fd).where(fd.c.fingerprint.in_(batch)).values(**values)
        ).rowcount
    return updated


def reopen_findings_on(conn: sa.Connection, fingerprints: Iterable[str], at: datetime) -> int:
    """The statements behind :meth:`Store.reopen_findings`, for a caller holding only a write
    connection (``at`` must be aware)."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise StoreError(f"naive datetime {at.isoformat()} refused: give it a timezone")
    return _update_findings(
        conn, fingerprints,
        {"first_seen": at.astimezone(UTC), "acknowledged_at": None, "ack_note": None},
    )


def clear_acknowledgements_on(conn: sa.Connection, fingerprints: Iterable[str]) -> int:
    """The statements behind :meth:`Store.clear_acknowledgements`, for a caller holding only a
    write connection."""
    return _update_findings(conn, fingerprints, {"acknowledged_at": None, "ack_note": None})


class Store:
    """The registerwatch store (SQLite file or PostgreSQL database), at the current schema.

    ``Store(url)`` opens an existing store and raises StoreError if it is missing or at an older
    schema revision; ``Store.open(url)`` (``create=True``) also creates and initialises an empty
    one, such as a new SQLite file.
    """

    def __init__(
        self,
        url: str | URL,
        *,
        create: bool = False,
        clock: Callable[[], datetime] | None = None,
        engine_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.url = parse_url(url)
        path = sqlite_path(self.url)
        if path is not None and not path.exists():
            if not create:
                raise StoreError(f"no store at {path}: {UPGRADE_HINT} to create it")
            prepare_sqlite_file(self.url)
        self.engine = make_engine(self.url, **dict(engine_options or {}))
        self._clock = clock or (lambda: datetime.now(UTC))
        try:
            self._check_schema(create)
        except BaseException:
            self.engine.dispose()
            raise

    @classmethod
    def open(cls, url: str | URL, create: bool = True, **kwargs: Any) -> Store:
        """Open the store at ``url``; with ``create`` (the default) initialise an empty one."""
        return cls(url, create=create, **kwargs)

    def _check_schema(self, create: bool) -> None:
        try:
            with self.engine.connect() as conn:
                if create:
                    conn.execution_options(**{WRITE_OPTION: True})
                with conn.begin():
                    if create and check_known(conn, self.url) is None:
                        upgrade_connection(conn)
                    check_current(conn, self.url)
        except sa.exc.OperationalError as exc:
            raise StoreError(f"cannot open the store at {self.display_url}: {exc.orig}") from exc

    @property
    def display_url(self) -> str:
        return safe_url(self.url)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def __repr__(self) -> str:
        return f"Store({self.display_url!r})"

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- connections ---------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        """One atomic unit of writes: commits when the block ends, rolls back if it raises.

        On SQLite the write lock is taken at the start (BEGIN IMMEDIATE), so concurrent writers
        queue (up to the busy timeout) rather than fail half-way.
        """
        try:
            with self.engine.connect() as conn:
                conn.execution_options(**{WRITE_OPTION: True})
                with conn.begin():
                    yield conn
        except sa.exc.OperationalError as exc:
            raise StoreError(f"store {self.display_url}: {exc.orig}") from exc

    @contextmanager
    def _write(self, conn: sa.Connection | None) -> Iterator[sa.Connection]:
        if conn is not None:
            yield conn
        else:
            with self.transaction() as own:
                yield own

    @contextmanager
    def _read(self, conn: sa.Connection | None) -> Iterator[sa.Connection]:
        if conn is not None:
            yield conn
            return
        try:
            with self.engine.connect() as own:
                yield own
        except sa.exc.OperationalError as exc:
            raise StoreError(f"store {self.display_url}: {exc.orig}") from exc

    def _at(self, at: datetime | None) -> datetime:
        value = self._clock() if at is None else at
        if value.tzinfo is None or value.utcoffset() is None:
            raise StoreError(f"naive datetime {value.isoformat()} refused: give it a timezone")
        return value.astimezone(UTC)

    # -- schools and calendars -----------------------------------------------------------------

    def upsert_school(
        self, school: School, *, at: datetime | None = None, conn: sa.Connection | None = None
    ) -> None:
        row = school.model_dump(mode="json") | {"updated_at": self._at(at)}
        with self._write(conn) as c:
            _upsert(c, t.schools, [row], keys=["id"], update=[k for k in row if k != "id"])

    def school(self, school_id: str, *, conn: sa.Connection | None = None) -> School | None:
        with self._read(conn) as c:
            row = c.execute(sa.select(t.schools).where(t.schools.c.id == school_id)).first()
        return None if row is None else self._school(row)

    def schools(self, *, conn: sa.Connection | None = None) -> list[School]:
        with self._read(conn) as c:
            rows = c.execute(sa.select(t.schools).order_by(t.schools.c.id)).all()
        return [self._school(row) for row in rows]

    @staticmethod
    def _school(row: sa.Row[Any]) -> School:
        data = dict(row._mapping)
        data.pop("updated_at")
        return School.model_validate(data)

    def upsert_calendar(
        self, calendar: Calendar, *, at: datetime | None = None,
        conn: sa.Connection | None = None,
    ) -> None:
        row = calendar.model_dump(mode="json") | {"updated_at": self._at(at)}
        with self._write(conn) as c:
            _upsert(c, t.calendars, [row], keys=["school_id"],
                    update=["terms", "closures", "register_times", "updated_at"])

    def calendar(self, school_id: str, *, conn: sa.Connection | None = None) -> Calendar | None:
        with self._read(conn) as c:
            row = c.execute(
                sa.select(t.calendars).where(t.calendars.c.school_id == school_id)
            ).first()
        if row is None:
            return None
        data = dict(row._mapping)
        data.pop("updated_at")
        return Calendar.model_validate(data)

    # -- pupils --------------------------------------------------------------------------------

    def upsert_pupils(
        self, pupils: Iterable[Pupil], *, at: datetime | None = None,
        conn: sa.Connection | None = None,
    ) -> int:
        """Insert or update pupils by id; returns how many were written."""
        now = self._at(at)
        rows: dict[str, dict[str, Any]] = {}
        for pupil in pupils:
            row = pupil.model_dump(mode="python", exclude=set(_PUPIL_JSON_FIELDS))
            row |= pupil.model_dump(mode="json", include=set(_PUPIL_JSON_FIELDS))
            rows[pupil.id] = row | {"first_seen_at": now, "updated_at": now}
        update = [name for name in _PUPIL_FIELDS if name != "id"] + ["updated_at"]
        with self._write(conn) as c:
            _upsert(c, t.pupils, list(rows.values()), keys=["id"], update=update)
        return len(rows)

    def pupils(self, school_id: str, *, conn: sa.Connection | None = None) -> list[Pupil]:
        columns = [t.pupils.c[name] for name in _PUPIL_FIELDS]
        query = sa.select(*columns).where(t.pupils.c.school_id == school_id).order_by(t.pupils.c.id)
        with self._read(conn) as c:
            rows = c.execute(query).all()
        return [Pupil.model_validate(dict(row._mapping)) for row in rows]

    # -- registers -----------------------------------------------------------------------------

    def upsert_registers(
        self, registers: Iterable[Register], *, at: datetime | None = None,
        conn: sa.Connection | None = None,
    ) -> int:
        """Insert or update registers by (school, group, date, session); returns rows written."""
        now = self._at(at)
        rows: dict[tuple[Any, ...], dict[str, Any]] = {}
        for register in registers:
            row = register.model_dump(mode="python")
            row["session"] = str(register.session)
            rows[(register.school_id, register.group, register.date, row["session"])] = (
                row | {"first_seen_at": now, "last_seen_at": now}
            )
        update = ["opened_at", "completed_at", "taken_by", "source_ref", "last_seen_at"]
        with self._write(conn) as c:
            _upsert(c, t.registers, list(rows.values()),
                    keys=["school_id", "group", "date", "session"], update=update)
        return len(rows)

    def registers(
        self, school_id: str, start: date | None = None, end: date | None = None, *,
        group: str | None = None, conn: sa.Connection | None = None,
    ) -> list[Register]:
        """Registers of a school, by date, session and group; ``start``/``end`` are inclusive."""
        r = t.registers
        query = sa.select(*(r.c[name] for name in _REGISTER_FIELDS)).where(
            r.c.school_id == school_id
        )
        if start is not None:
            query = query.where(r.c.date >= start)
        if end is not None:
            query = query.where(r.c.date <= end)
        if group is not None:
            query = query.where(r.c.group == group)
        query = query.order_by(r.c.date, r.c.session, r.c.group)
        with self._read(conn) as c:
            rows = c.execute(query).all()
        result = []
        for row in rows:
            data = dict(row._mapping)
            data["session"] = _SESSIONS[data["session"]]
            result.append(Register.model_construct(**data))
        return result

    # -- marks ---------------------------------------------------------------------------------

    def upsert_marks(
        self, marks: Iterable[Mark], school_id: str, *, at: datetime | None = None,
        touch_unchanged: bool = True, conn: sa.Connection | None = None,
    ) -> MarkDiff:
        """Store pulled marks, keyed by (school, pupil, date, session); report what changed.

        Reads the stored rows once per chunk of dates, compares in Python and writes only new
        and changed marks (plus ``last_seen_at`` on unchanged ones, unless ``touch_unchanged`` is
        off). A mark that had been flagged deleted and is pulled again is un-flagged and reported
        as a change with ``restored=True``. Rerunning with the same marks writes no new rows.
        """
        now = self._at(at)
        incoming: dict[MarkKey, Mark] = {}
        duplicates = 0
        for mark in marks:
            key = MarkKey(mark.pupil_id, mark.date, _SESSIONS[str(mark.session)])
            if key in incoming:
                duplicates += 1
            incoming[key] = mark  # the later record for a key wins
        diff = MarkDiff(duplicates=duplicates)
        by_date: dict[date, list[MarkKey]] = defaultdict(list)
        for key in incoming:
            by_date[key.date].append(key)
        with self._write(conn) as c:
            for keys in self._date_chunks(by_date):
                scope = self._chunk_scope(school_id, keys)
                existing, covered = self._stored_marks(c, scope, keys, live_only=False)
                writes: list[dict[str, Any]] = []
                touches: list[MarkKey] = []
                for key in keys:
                    mark = incoming[key]
                    stored = existing.get(key)
                    if stored is None:
                        diff.new.append(mark)
                        writes.append(self._mark_row(school_id, mark, now))
                        continue
                    content = _mark_content(mark)
                    deleted_at = stored[10]
                    if content != tuple(stored[3:10]) or deleted_at is not None:
                        old = _mark_from_row(stored)
                        diff.changed.append(MarkChange(
                            key, old, mark, _changed_fields(old, mark),
                            restored=deleted_at is not None,
                        ))
                        writes.append(self._mark_row(school_id, mark, now))
                    else:
                        diff.unchanged.append(key)
                        touches.append(key)
                _upsert(
                    c, t.marks, writes, keys=["school_id", "pupil_id", "date", "session"],
                    update=[*MARK_CONTENT_FIELDS, "last_seen_at", "changed_at", "deleted_at"],
                )
                if touch_unchanged and touches:
                    if covered:
                        # Every live mark in the chunk's scope was pulled again: one UPDATE.
                        c.execute(sa.update(t.marks).where(*scope, t.marks.c.deleted_at.is_(None))
                                  .values(last_seen_at=now))
                    else:
                        self._touch_marks(c, school_id, touches, now)
        return diff

    @staticmethod
    def _date_chunks(by_date: Mapping[date, list[MarkKey]]) -> Iterator[list[MarkKey]]:
        chunk: list[MarkKey] = []
        for day in sorted(by_date):
            chunk.extend(by_date[day])
            if len(chunk) >= MARK_CHUNK_ROWS:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    @staticmethod
    def _chunk_scope(school_id: str, keys: Sequence[MarkKey]) -> list[sa.ColumnElement[bool]]:
        """WHERE clauses covering ``keys``: their school and date range, and their pupils when
        there are few of them (a changelog pull touches few pupils across many dates)."""
        m = t.marks
        scope = [
            m.c.school_id == school_id,
            m.c.date >= min(k.date for k in keys),
            m.c.date <= max(k.date for k in keys),
        ]
        pupils = {k.pupil_id for k in keys}
        if len(pupils) <= PUPIL_FILTER_LIMIT:
            scope.append(m.c.pupil_id.in_(sorted(pupils)))
        return scope

    @staticmethod
    def _stored_marks(
        conn: sa.Connection, scope: Sequence[sa.ColumnElement[bool]], keys: Sequence[MarkKey],
        *, live_only: bool,
    ) -> tuple[dict[MarkKey, sa.Row[Any]], bool]:
        """Stored rows (mark columns, then deleted_at) for ``keys``, in one read of ``scope``;
        and whether every live row in the scope is one of ``keys``."""
        m = t.marks
        wanted = set(keys)
        query = sa.select(*_MARK_READ_COLUMNS, m.c.deleted_at).where(*scope)
        if live_only:
            query = query.where(m.c.deleted_at.is_(None))
        found: dict[MarkKey, sa.Row[Any]] = {}
        covered = True
        for row in conn.execute(query).all():
            key = MarkKey(row[0], row[1], _SESSIONS[row[2]])
            if key in wanted:
                found[key] = row
            elif row[10] is None:
                covered = False
        return found, covered

    @staticmethod
    def _mark_row(school_id: str, mark: Mark, now: datetime) -> dict[str, Any]:
        return {
            "school_id": school_id, "pupil_id": mark.pupil_id, "date": mark.date,
            "session": str(mark.session), "code": mark.code, "vendor_code": mark.vendor_code,
            "minutes_late": mark.minutes_late, "comment": mark.comment,
            "recorded_at": mark.recorded_at, "recorded_by": mark.recorded_by,
            "source_ref": mark.source_ref, "first_seen_at": now, "last_seen_at": now,
            "changed_at": now, "deleted_at": None,
        }

    @staticmethod
    def _key_update(values: Mapping[str, Any], *, live_only: bool = False) -> sa.Update:
        m = t.marks
        stmt = (
            sa.update(m)
            .where(
                m.c.school_id == sa.bindparam("k_school"),
                m.c.pupil_id == sa.bindparam("k_pupil"),
                m.c.date == sa.bindparam("k_date"),
                m.c.session == sa.bindparam("k_session"),
            )
            .values(**values)
        )
        return stmt.where(m.c.deleted_at.is_(None)) if live_only else stmt

    @staticmethod
    def _key_params(school_id: str, keys: Iterable[MarkKey]) -> list[dict[str, Any]]:
        return [
            {"k_school": school_id, "k_pupil": k.pupil_id, "k_date": k.date,
             "k_session": str(k.session)}
            for k in keys
        ]

    def _touch_marks(
        self, conn: sa.Connection, school_id: str, keys: Sequence[MarkKey], now: datetime
    ) -> None:
        if not keys:
            return
        stmt = self._key_update({"last_seen_at": now})
        for batch in _chunks(self._key_params(school_id, keys), WRITE_BATCH_ROWS):
            conn.execute(stmt, batch)

    def mark_deleted(
        self, school_id: str, keys: Iterable[MarkKey | tuple[str, date, Session | str]],
        at: datetime | None = None, *, conn: sa.Connection | None = None,
    ) -> list[Mark]:
        """Flag marks that disappeared from the MIS (they are never deleted: registers are kept
        6 years). Returns the marks newly flagged, as they last stood, for the ledger; keys that
        are unknown or already flagged are ignored, so a rerun flags nothing twice."""
        now = self._at(at)
        by_date: dict[date, list[MarkKey]] = defaultdict(list)
        for key in {MarkKey(k[0], k[1], _SESSIONS[str(k[2])]) for k in keys}:
            by_date[key.date].append(key)
        flagged: list[Mark] = []
        with self._write(conn) as c:
            stmt = self._key_update({"deleted_at": now, "changed_at": now}, live_only=True)
            for chunk in self._date_chunks(by_date):
                scope = self._chunk_scope(school_id, chunk)
                stored, _ = self._stored_marks(c, scope, chunk, live_only=True)
                if not stored:
                    continue
                found = sorted(stored, key=lambda k: (k.date, k.session, k.pupil_id))
                for batch in _chunks(self._key_params(school_id, found), WRITE_BATCH_ROWS):
                    c.execute(stmt, batch)
                flagged.extend(_mark_from_row(stored[k]) for k in found)
        return flagged

    def mark_keys(
        self, school_id: str, start: date, end: date, *, conn: sa.Connection | None = None
    ) -> set[MarkKey]:
        """Keys of the live (not deleted) marks between ``start`` and ``end`` inclusive: what a
        re-pull of that window should find again; the ones it does not are deletions."""
        m = t.marks
        query = sa.select(m.c.pupil_id, m.c.date, m.c.session).where(
            m.c.school_id == school_id, m.c.date >= start, m.c.date <= end,
            m.c.deleted_at.is_(None),
        )
        with self._read(conn) as c:
            return {MarkKey(p, d, _SESSIONS[s]) for p, d, s in c.execute(query)}

    def _marks_query(
        self, school_id: str, start: date | None, end: date | None, pupil_id: str | None,
        changed_since: datetime | None,
    ) -> sa.Select[Any]:
        m = t.marks
        query = sa.select(*_MARK_READ_COLUMNS).where(m.c.school_id == school_id)
        if start is not None:
            query = query.where(m.c.date >= start)
        if end is not None:
            query = query.where(m.c.date <= end)
        if pupil_id is not None:
            query = query.where(m.c.pupil_id == pupil_id)
        if changed_since is not None:
            query = query.where(m.c.changed_at >= self._at(changed_since))
        return query

    def iter_marks(
        self, school_id: str, start: date | None = None, end: date | None = None, *,
        pupil_id: str | None = None, changed_since: datetime | None = None,
        batch_size: int = 10_000, conn: sa.Connection | None = None,
    ) -> Iterator[Mark]:
        """Live marks ordered by pupil, date and session, streamed in batches."""
        m = t.marks
        query = (
            self._marks_query(school_id, start, end, pupil_id, changed_since)
            .where(m.c.deleted_at.is_(None))
            .order_by(m.c.pupil_id, m.c.date, m.c.session)
        )
        with self._read(conn) as c:
            result = c.execution_options(yield_per=batch_size).execute(query)
            for partition in result.partitions():
                yield from _marks_from_rows(partition)

    def marks(
        self, school_id: str, start: date | None = None, end: date | None = None, *,
        pupil_id: str | None = None, changed_since: datetime | None = None,
        conn: sa.Connection | None = None,
    ) -> list[Mark]:
        """Live marks of a school ordered by pupil, date and session; ``start``/``end`` are
        inclusive; ``changed_since`` keeps those whose content changed at or after that instant.

        Read in batches of MARK_READ_BATCH rows (a server-side cursor on PostgreSQL), each turned
        into Marks before the next is fetched, so a whole year's rows and its Marks are never
        all held at once; the cyclic collector is paused meanwhile (see registerwatch.gcpause)."""
        m = t.marks
        query = (
            self._marks_query(school_id, start, end, pupil_id, changed_since)
            .where(m.c.deleted_at.is_(None))
            .order_by(m.c.pupil_id, m.c.date, m.c.session)
        )
        marks: list[Mark] = []
        with self._read(conn) as c, collector_paused():
            result = c.execution_options(yield_per=MARK_READ_BATCH).execute(query)
            for partition in result.partitions():
                marks.extend(_marks_from_rows(partition))
        return marks

    def deleted_marks(
        self, school_id: str, start: date | None = None, end: date | None = None, *,
        conn: sa.Connection | None = None,
    ) -> list[DeletedMark]:
        """Marks that disappeared from the MIS (rule AMD003), with when sync noticed."""
        m = t.marks
        query = (
            self._marks_query(school_id, start, end, None, None)
            .add_columns(m.c.deleted_at)
            .where(m.c.deleted_at.is_not(None))
            .order_by(m.c.pupil_id, m.c.date, m.c.session)
        )
        with self._read(conn) as c:
            return [DeletedMark(_mark_from_row(row), row[10]) for row in c.execute(query)]

    # -- amendments ----------------------------------------------------------------------------

    def insert_amendments(
        self, amendments: Iterable[Amendment], school_id: str, *, at: datetime | None = None,
        conn: sa.Connection | None = None,
    ) -> int:
        """Store amendment records; a reload updates instead of duplicating. Returns how many
        were new."""
        now = self._at(at)
        rows: dict[str, dict[str, Any]] = {}
        for amendment in amendments:
            key = _amendment_key(amendment)
            row = amendment.model_dump(mode="python")
            row["session"] = str(amendment.session)
            row["source"] = str(amendment.source)
            rows[key] = row | {
                "school_id": school_id, "natural_key": key,
                "first_seen_at": now, "last_seen_at": now,
            }
        a = t.amendments
        with self._write(conn) as c:
            known: set[str] = set()
            for batch in _chunks(sorted(rows), IN_LIST_LIMIT):
                known.update(c.scalars(
                    sa.select(a.c.natural_key)
                    .where(a.c.school_id == school_id, a.c.natural_key.in_(batch))
                ))
            update = [name for name in _AMENDMENT_FIELDS] + ["last_seen_at"]
            _upsert(c, a, list(rows.values()), keys=["school_id", "natural_key"], update=update)
        return len(rows.keys() - known)

    def amendments(
        self, school_id: str, start: date | None = None, end: date | None = None, *,
        pupil_id: str | None = None, source: str | None = None,
        conn: sa.Connection | None = None,
    ) -> list[Amendment]:
        a = t.amendments
        query = sa.select(*(a.c[name] for name in _AMENDMENT_FIELDS)).where(
            a.c.school_id == school_id
        )
        if start is not None:
            query = query.where(a.c.date >= start)
        if end is not None:
            query = query.where(a.c.date <= end)
        if pupil_id is not None:
            query = query.where(a.c.pupil_id == pupil_id)
        if source is not None:
            query = query.where(a.c.source == str(source))
        query = query.order_by(a.c.date, a.c.session, a.c.pupil_id, a.c.id)
        with self._read(conn) as c:
            rows = c.execute(query).all()
        return [Amendment.model_validate(dict(row._mapping)) for row in rows]

    # -- ledger --------------------------------------------------------------------------------

    def append_ledger(
        self, entries: Iterable[LedgerEntry], *, conn: sa.Connection | None = None
    ) -> list[LedgerRecord]:
        """Append entries to the hash chain; returns them as stored (seq, prev_hash, hash).

        The tip is read and extended under a lock (PostgreSQL: a table lock held to the end of
        the transaction; SQLite: the write lock a Store.transaction() takes at BEGIN), so
        concurrent appenders queue rather than fork the chain; seq as primary key is the
        backstop. Pass ``conn`` only from Store.transaction().
        """
        entries = list(entries)
        if not entries:
            return []
        lg = t.ledger
        with self._write(conn) as c:
            if c.dialect.name == "postgresql":
                # EXCLUSIVE blocks other writers (and other appenders' own lock) but not readers.
                c.execute(sa.text("LOCK TABLE ledger IN EXCLUSIVE MODE"))
            tip = c.execute(
                sa.select(lg.c.seq, lg.c.hash).order_by(lg.c.seq.desc()).limit(1)
            ).first()
            last_seq, last_hash = (tip[0], tip[1]) if tip else (0, GENESIS_HASH)
            linked = list(link(entries, last_seq, last_hash))
            sql, to_row = _ledger_insert(c.dialect)
            rows = [to_row(record, text) for record, text in linked]
            for batch in _chunks(rows, WRITE_BATCH_ROWS):
                c.exec_driver_sql(sql, list(batch))
        return [record for record, _text in linked]

    def _ledger_query(self) -> sa.Select[Any]:
        lg = t.ledger
        return sa.select(
            lg.c.seq, lg.c.school_id, lg.c.pupil_id, lg.c.date, lg.c.session, lg.c.kind,
            lg.c.original_code, lg.c.new_code, lg.c.observed_at, lg.c.payload, lg.c.prev_hash,
            lg.c.hash,
        ).order_by(lg.c.seq)

    @staticmethod
    def _ledger_record(row: Sequence[Any]) -> LedgerRecord:
        return LedgerRecord(
            seq=row[0], school_id=row[1], pupil_id=row[2], date=row[3],
            session=_SESSIONS.get(row[4], row[4]), kind=row[5], original_code=row[6],
            new_code=row[7], observed_at=row[8], payload=row[9], prev_hash=row[10], hash=row[11],
        )

    def ledger(
        self, school_id: str | None = None, *, pupil_id: str | None = None,
        start: date | None = None, end: date | None = None,
        kinds: Iterable[str] | None = None, conn: sa.Connection | None = None,
    ) -> list[LedgerRecord]:
        """Ledger entries in seq order, optionally for one school, pupil, date range or set of
        kinds (``kinds=("observed_change", "observed_deleted")``: what the scan checks, without
        the one ``observed_new`` entry sync writes per mark). Raises StoreError for an unknown
        kind rather than silently matching nothing."""
        lg = t.ledger
        query = self._ledger_query()
        if kinds is not None:
            wanted = sorted({kinds} if isinstance(kinds, str) else set(kinds))
            unknown = [kind for kind in wanted if kind not in KINDS]
            if unknown:
                raise StoreError(
                    f"ledger kind {unknown[0]!r} is not one of {', '.join(KINDS)}"
                )
            if not wanted:
                return []
            query = query.where(lg.c.kind.in_(wanted))
        if school_id is not None:
            query = query.where(lg.c.school_id == school_id)
        if pupil_id is not None:
            query = query.where(lg.c.pupil_id == pupil_id)
        if start is not None:
            query = query.where(lg.c.date >= start)
        if end is not None:
            query = query.where(lg.c.date <= end)
        with self._read(conn) as c:
            return [self._ledger_record(row) for row in c.execute(query)]

    def verify_ledger(
        self, *, batch_size: int = 5_000, conn: sa.Connection | None = None
    ) -> LedgerReport:
        """Walk the whole chain in seq order; ok, or the first broken entry and why."""
        with self._read(conn) as c:
            result = c.execution_options(yield_per=batch_size).execute(self._ledger_query())
            records = (self._ledger_record(row) for part in result.partitions() for row in part)
            try:
                return verify_chain(records)
            finally:
                result.close()

    # -- quarantine ----------------------------------------------------------------------------

    def quarantine(
        self, school_id: str, resource: str, reason: str, *, record_ref: str | None = None,
        field: str | None = None, raw: RawRecord = None, at: datetime | None = None,
        conn: sa.Connection | None = None,
    ) -> None:
        """Keep a record that would not map, with the field and reason. The same record and
        field seen again updates the entry (reason, raw, last_seen_at, occurrences) instead of
        adding another."""
        now = self._at(at)
        row = {
            "school_id": school_id, "resource": resource, "record_ref": record_ref or "",
            "field": field or "", "reason": reason, "raw": _raw_text(raw), "occurrences": 1,
            "first_seen_at": now, "last_seen_at": now,
        }
        q = t.quarantine
        with self._write(conn) as c:
            _upsert(
                c, q, [row], keys=["school_id", "resource", "record_ref", "field"],
                update=["reason", "raw", "last_seen_at"],
                update_exprs=lambda _stmt: {"occurrences": q.c.occurrences + 1},
            )

    def quarantine_error(
        self, school_id: str, error: InvalidRecord, *, resource: str | None = None,
        raw: RawRecord = None, at: datetime | None = None, conn: sa.Connection | None = None,
    ) -> None:
        """Quarantine the record an InvalidRecord was raised for."""
        name = resource or error.resource
        if not name:
            raise StoreError("quarantine needs the resource the record came from")
        self.quarantine(school_id, name, error.reason, record_ref=error.record_ref,
                        field=error.field, raw=raw, at=at, conn=conn)

    def quarantined(
        self, school_id: str | None = None, *, resource: str | None = None,
        conn: sa.Connection | None = None,
    ) -> list[QuarantineEntry]:
        q = t.quarantine
        query = sa.select(q).order_by(q.c.school_id, q.c.resource, q.c.record_ref, q.c.field)
        if school_id is not None:
            query = query.where(q.c.school_id == school_id)
        if resource is not None:
            query = query.where(q.c.resource == resource)
        with self._read(conn) as c:
            rows = c.execute(query).all()
        return [
            QuarantineEntry(
                school_id=r.school_id, resource=r.resource, record_ref=r.record_ref or None,
                field=r.field or None, reason=r.reason, raw=r.raw, occurrences=r.occurrences,
                first_seen_at=r.first_seen_at, last_seen_at=r.last_seen_at,
            )
            for r in rows
        ]

    # -- bookmarks -----------------------------------------------------------------------------

    def get_bookmark(
        self, school_id: str, resource: str, *, conn: sa.Connection | None = None
    ) -> str | None:
        b = t.bookmarks
        with self._read(conn) as c:
            return c.scalar(
                sa.select(b.c.value).where(b.c.school_id == school_id, b.c.resource == resource)
            )

    def set_bookmark(
        self, school_id: str, resource: str, value: str, *, at: datetime | None = None,
        conn: sa.Connection | None = None,
    ) -> None:
        if not isinstance(value, str):
            raise TypeError(f"bookmark values are strings, got {type(value).__name__}")
        row = {"school_id": school_id, "resource": resource, "value": value,
               "updated_at": self._at(at)}
        with self._write(conn) as c:
            _upsert(c, t.bookmarks, [row], keys=["school_id", "resource"],
                    update=["value", "updated_at"])

    # -- notifications -------------------------------------------------------------------------

    def add_notifications(
        self, notifications: Iterable[Notification], *, at: datetime | None = None,
        conn: sa.Connection | None = None,
    ) -> int:
        """Record returns already made; one already recorded is left alone. Returns how many
        were new."""
        now = self._at(at)
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        for n in notifications:
            key = _notification_key(n)
            rows[(n.school_id, key)] = n.model_dump(mode="python") | {
                "kind": str(n.kind), "natural_key": key, "recorded_at": now,
            }
        if not rows:
            return 0
        nt = t.notifications
        with self._write(conn) as c:
            known: set[tuple[str, str]] = set()
            for batch in _chunks(sorted(rows), IN_LIST_LIMIT):
                known.update(
                    (s, k) for s, k in c.execute(
                        sa.select(nt.c.school_id, nt.c.natural_key).where(
                            sa.tuple_(nt.c.school_id, nt.c.natural_key).in_(batch)
                        )
                    )
                )
            _upsert(c, nt, list(rows.values()), keys=["school_id", "natural_key"])
        return len(rows.keys() - known)

    def add_notification(
        self, notification: Notification, *, at: datetime | None = None,
        conn: sa.Connection | None = None,
    ) -> bool:
        """Record one return already made; False if it was already recorded."""
        return self.add_notifications([notification], at=at, conn=conn) == 1

    def notifications(
        self, school_id: str, *, kind: str | None = None, pupil_id: str | None = None,
        conn: sa.Connection | None = None,
    ) -> list[Notification]:
        nt = t.notifications
        fields = tuple(Notification.model_fields)
        query = sa.select(*(nt.c[name] for name in fields)).where(nt.c.school_id == school_id)
        if kind is not None:
            query = query.where(nt.c.kind == str(kind))
        if pupil_id is not None:
            query = query.where(nt.c.pupil_id == pupil_id)
        query = query.order_by(nt.c.made_at, nt.c.id)
        with self._read(conn) as c:
            rows = c.execute(query).all()
        return [Notification.model_validate(dict(row._mapping)) for row in rows]

    # -- findings ------------------------------------------------------------------------------

    def save_findings(
        self, findings: Iterable[Finding], *, at: datetime | None = None,
        conn: sa.Connection | None = None,
    ) -> int:
        """Insert or update findings by fingerprint (which every finding must carry).

        ``first_seen`` of a stored finding is kept; status is 'resolved' when ``resolved_at`` is
        set, else 'open'; an acknowledgement survives later saves. Returns rows written.
        """
        now = self._at(at)
        rows: dict[str, dict[str, Any]] = {}
        for f in findings:
            if not f.fingerprint:
                raise StoreError(f"finding {f.rule} for school {f.school_id!r} has no fingerprint")
            first, last = f.first_session, f.last_session
            rows[f.fingerprint] = {
                "fingerprint": f.fingerprint, "rule": f.rule, "severity": str(f.severity),
                "school_id": f.school_id, "pupil_id": f.pupil_id,
                "first_date": first.date if first else None,
                "first_session": str(first.session) if first else None,
                "last_date": last.date if last else None,
                "last_session": str(last.session) if last else None,
                "due": f.due, "message": f.message,
                "evidence": f.model_dump(mode="json", include={"evidence"})["evidence"],
                "status": "resolved" if f.resolved_at is not None else "open",
                "first_seen": self._at(f.first_seen) if f.first_seen else now,
                "last_seen": self._at(f.last_seen) if f.last_seen else now,
                "resolved_at": self._at(f.resolved_at) if f.resolved_at else None,
            }
        update = [
            "rule", "severity", "school_id", "pupil_id", "first_date", "first_session",
            "last_date", "last_session", "due", "message", "evidence", "status", "last_seen",
            "resolved_at",
        ]
        with self._write(conn) as c:
            _upsert(c, t.findings, list(rows.values()), keys=["fingerprint"], update=update)
        return len(rows)

    def load_findings(
        self, school_id: str, *, status: str | None = None, conn: sa.Connection | None = None
    ) -> dict[str, StoredFinding]:
        """Stored findings of a school by fingerprint (all, or only 'open' / 'resolved')."""
        fd = t.findings
        query = sa.select(fd).where(fd.c.school_id == school_id).order_by(fd.c.fingerprint)
        if status is not None:
            query = query.where(fd.c.status == status)
        with self._read(conn) as c:
            rows = c.execute(query).all()
        result: dict[str, StoredFinding] = {}
        for r in rows:
            finding = Finding.model_validate({
                "rule": r.rule, "severity": r.severity, "school_id": r.school_id,
                "pupil_id": r.pupil_id,
                "first_session": {"date": r.first_date, "session": r.first_session}
                if r.first_date is not None else None,
                "last_session": {"date": r.last_date, "session": r.last_session}
                if r.last_date is not None else None,
                "due": r.due, "message": r.message, "evidence": r.evidence,
                "fingerprint": r.fingerprint, "first_seen": r.first_seen,
                "last_seen": r.last_seen, "resolved_at": r.resolved_at,
            })
            result[r.fingerprint] = StoredFinding(finding, r.status, r.acknowledged_at, r.ack_note)
        return result

    def acknowledge_finding(
        self, fingerprint: str, note: str | None = None, *, at: datetime | None = None,
        conn: sa.Connection | None = None,
    ) -> bool:
        """Record that someone has seen a finding; False if there is no such finding."""
        fd = t.findings
        stmt = (
            sa.update(fd).where(fd.c.fingerprint == fingerprint)
            .values(acknowledged_at=self._at(at), ack_note=note)
        )
        with self._write(conn) as c:
            return c.execute(stmt).rowcount == 1

    def reopen_findings(
        self, fingerprints: Iterable[str], at: datetime | None = None, *,
        conn: sa.Connection | None = None,
    ) -> int:
        """Findings that were resolved and are seen again: first seen ``at``, acknowledgement
        withdrawn. ``save_findings`` keeps ``first_seen`` and the acknowledgement on purpose (an
        open finding seen again is the same breach); one that comes back after it was resolved
        is a new breach that nobody has seen. Call after ``save_findings``, in its transaction.
        Returns how many findings were updated (unknown fingerprints are ignored)."""
        now = self._at(at)
        with self._write(conn) as c:
            return reopen_findings_on(c, fingerprints, now)

    def clear_acknowledgements(
        self, fingerprints: Iterable[str], *, conn: sa.Connection | None = None
    ) -> int:
        """Withdraw the acknowledgement of findings (say, a warning acknowledged before its
        deadline that is now an error: nobody has seen the new severity). Returns how many
        findings were updated (unknown fingerprints are ignored)."""
        with self._write(conn) as c:
            return clear_acknowledgements_on(c, fingerprints)

    # -- outbox --------------------------------------------------------------------------------

    def enqueue_outbox(
        self, *, return_kind: str, school_id: str, idempotency_key: str, payload: bytes,
        sha256: str | None = None, pupil_id: str | None = None, episode: str | None = None,
        artefact_path: str | None = None, at: datetime | None = None,
        conn: sa.Connection | None = None,
    ) -> tuple[OutboxItem, bool]:
        """Queue an artefact once per idempotency key: returns (item, created). A key already
        queued returns the stored item untouched and created=False, so a rerun never sends
        twice."""
        digest = hashlib.sha256(payload).hexdigest()
        if sha256 is not None and sha256.lower() != digest:
            raise StoreError(
                f"outbox item {idempotency_key!r}: sha256 {sha256} does not match the payload "
                f"({digest}); re-render the artefact"
            )
        now = self._at(at)
        row = {
            "return_kind": return_kind, "school_id": school_id, "pupil_id": pupil_id,
            "episode": episode, "idempotency_key": idempotency_key, "sha256": digest,
            "artefact_path": artefact_path, "payload": bytes(payload), "state": "queued",
            "attempts": 0, "last_error": None, "receipt": None, "created_at": now,
            "updated_at": now,
        }
        with self._write(conn) as c:
            dialect_insert = (
                sqlite_dialect.insert if c.dialect.name == "sqlite" else pg_dialect.insert
            )
            stmt = (
                dialect_insert(t.outbox).values(row)
                .on_conflict_do_nothing(index_elements=["idempotency_key"])
                .returning(t.outbox.c.id)
            )
            # A row comes back only when this call inserted it (rowcount is not reliable here).
            created = c.execute(stmt).first() is not None
            item = self.outbox_item(idempotency_key=idempotency_key, conn=c)
        assert item is not None
        return item, created

    def outbox_item(
        self, item_id: int | None = None, *, idempotency_key: str | None = None,
        conn: sa.Connection | None = None,
    ) -> OutboxItem | None:
        o = t.outbox
        if (item_id is None) == (idempotency_key is None):
            raise TypeError("give exactly one of item_id or idempotency_key")
        where = o.c.id == item_id if item_id is not None else o.c.idempotency_key == idempotency_key
        with self._read(conn) as c:
            row = c.execute(sa.select(o).where(where)).first()
        return None if row is None else OutboxItem(**dict(row._mapping))

    def outbox_items(
        self, *, state: str | None = None, school_id: str | None = None,
        conn: sa.Connection | None = None,
    ) -> list[OutboxItem]:
        o = t.outbox
        query = sa.select(o).order_by(o.c.id)
        if state is not None:
            query = query.where(o.c.state == state)
        if school_id is not None:
            query = query.where(o.c.school_id == school_id)
        with self._read(conn) as c:
            return [OutboxItem(**dict(row._mapping)) for row in c.execute(query)]

    def update_outbox(
        self, item_id: int, *, state: str, expected_state: str | None = None,
        last_error: str | None = _UNSET, receipt: str | None = _UNSET, attempted: bool = False,
        at: datetime | None = None, conn: sa.Connection | None = None,
    ) -> bool:
        """Move an item to ``state`` (optionally only if it is still in ``expected_state``, so
        two workers cannot both claim it). ``attempted`` counts a submission attempt;
        ``last_error`` and ``receipt`` change only when given. Returns whether it was updated."""
        if state not in t.OUTBOX_STATES:
            raise StoreError(f"outbox state {state!r} is not one of {', '.join(t.OUTBOX_STATES)}")
        o = t.outbox
        values: dict[str, Any] = {"state": state, "updated_at": self._at(at)}
        if last_error is not _UNSET:
            values["last_error"] = last_error
        if receipt is not _UNSET:
            values["receipt"] = receipt
        if attempted:
            values["attempts"] = o.c.attempts + 1
        stmt = sa.update(o).where(o.c.id == item_id).values(**values)
        if expected_state is not None:
            stmt = stmt.where(o.c.state == expected_state)
        with self._write(conn) as c:
            return c.execute(stmt).rowcount == 1

    # -- runs ----------------------------------------------------------------------------------

    def start_run(
        self, command: str, *, at: datetime | None = None, conn: sa.Connection | None = None
    ) -> int:
        r = t.runs
        stmt = sa.insert(r).values(command=command, started_at=self._at(at), counts={})
        with self._write(conn) as c:
            return c.execute(stmt.returning(r.c.id)).scalar_one()

    def finish_run(
        self, run_id: int, outcome: str, counts: Mapping[str, Any] | None = None, *,
        at: datetime | None = None, conn: sa.Connection | None = None,
    ) -> None:
        r = t.runs
        stmt = sa.update(r).where(r.c.id == run_id).values(
            finished_at=self._at(at), outcome=outcome, counts=dict(counts or {})
        )
        with self._write(conn) as c:
            if c.execute(stmt).rowcount != 1:
                raise StoreError(f"no run {run_id} to finish")

    def runs(
        self, *, command: str | None = None, limit: int = 50, conn: sa.Connection | None = None
    ) -> list[RunRecord]:
        """The most recent runs, newest first."""
        r = t.runs
        query = sa.select(r).order_by(r.c.started_at.desc(), r.c.id.desc()).limit(limit)
        if command is not None:
            query = query.where(r.c.command == command)
        with self._read(conn) as c:
            return [RunRecord(**dict(row._mapping)) for row in c.execute(query)]
