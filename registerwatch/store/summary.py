"""The incremental scan's per-pupil summary: each pupil's live marks, one row per month.

A row of ``pupil_summary`` holds one pupil's live marks of one month as the lean read's tokens
(``store.lean``), so the summary is exactly what ``mark_tokens`` would return, kept between
scans. ``scan_state`` says how far it follows the marks: every mark whose ``changed_at`` is after
``marks_seen_to`` (its content or its deletion flag changed) is not in it yet.

A nightly scan refreshes the summary in two steps, because it reads inside one snapshot and may
write only after: ``summary_changes`` (inside the snapshot) reads the marks changed since
``marks_seen_to`` minus ``REREAD_MARGIN`` (through the ``(school_id, changed_at)`` index) with
their current token or deletion, and patches their pupil-months: each changed key's token is
set to what the marks table holds now (or dropped); ``save_summary`` (in a write transaction
afterwards) stores them. Setting a key to its current state rather than applying a difference
makes a repeated refresh harmless, so the margin can be generous: it covers a sync that took its
``changed_at`` before an earlier one committed. (Recomputing the whole pupil-month from the
marks gave the same text at ~4x the cost: the night's new day touches every pupil's month.)

The scan reads the summary as one text per pupil (``summary_texts``: months joined with
``MONTH_SEPARATOR``) and decodes a pupil's months only when a rule asks
(``validators.lean_marks.LazyMarks``).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from registerwatch.store import tables as t
from registerwatch.store.base import StoreBase, upsert
from registerwatch.store.bulk import bind_converter, insert_rows
from registerwatch.store.lean import (
    TOKEN_SEPARATOR,
    read_mark_tokens,
    split_tokens,
    token_expression,
)

# Changes are reread from this long before the recorded high-water mark (see the module doc).
REREAD_MARGIN = timedelta(minutes=15)

PupilMonth = tuple[str, str]  # (pupil id, "YYYY-MM")
ChangedMark = tuple[str, str, datetime]  # (pupil id, token, changed_at)
PERIOD_END = 7  # a token starts with its ISO date: its first 7 characters are the period
KEY_END = 12  # ... and its first 12 the date and session: the mark's key within its pupil
# Between the months of a pupil's text in ``summary_texts`` (validators.lean_marks reads it):
# in no attendance code, and not the token separator.
MONTH_SEPARATOR = ";"
MONTH_AFTER = "."  # sorts after the "-" that follows the period in every token of the month
SUMMARY_COLUMNS = ("school_id", "pupil_id", "period", "marks", "updated_at")


@dataclass(frozen=True)
class ScanState:
    """What the summary follows and what the last scan that kept it judged."""

    school_id: str
    marks_seen_to: datetime | None
    as_of: date
    basis: str


@dataclass
class SummaryUpdate:
    """Pupil-months brought up to date with the marks (tokens; an empty list: no live marks
    left)."""

    months: dict[PupilMonth, list[str]] = field(default_factory=dict)
    marks_seen_to: datetime | None = None
    full: bool = False  # the whole summary was rebuilt: rows not in ``months`` are dropped
    #: the stored text of the other pupil-months of the months ``months`` touches, read with
    #: them (``summary_texts`` then need not read them again); None: not read
    kept: dict[PupilMonth, str] | None = None
    #: every mark changed at or after ``changed_from`` as (pupil, token, changed_at), deleted
    #: ones included, read with them (the nightly's delta filters these instead of reading the
    #: same rows again: ``Store.changed_mark_keys``); None: not read
    changed: list[ChangedMark] | None = None
    changed_from: datetime | None = None


def _joined(
    dialect: str, column: sa.ColumnElement[str], separator: str = TOKEN_SEPARATOR
) -> sa.ColumnElement[str]:
    """Text rows joined into one with ``separator`` (per group)."""
    if dialect == "postgresql":
        return sa.func.string_agg(column, separator)
    return sa.func.group_concat(column, separator)


def _month_slices(tokens: list[str]) -> Iterator[tuple[str, list[str]]]:
    """Sorted tokens cut into (month, that month's tokens): a bisection per month, not a look
    at every token. A month's tokens start with "YYYY-MM-"; MONTH_AFTER sorts after "-"."""
    start, end = 0, len(tokens)
    while start < end:
        month = tokens[start][:PERIOD_END]
        stop = bisect_left(tokens, month + MONTH_AFTER, start, end)
        yield month, tokens[start:stop]
        start = stop


def _appended(before: list[str], marks: dict[str, str | None]) -> list[str] | None:
    """The patched month when ``marks`` (key -> token now, None: deleted) only add tokens
    after the sorted ``before`` and restate tokens it holds as they are (the previous night's
    marks, reread inside the margin): ``before`` followed by the new ones, sorted. None when
    anything else changed (the caller patches key by key)."""
    if None in marks.values() or before != sorted(before):
        return None
    last = before[-1][:KEY_END] if before else ""
    added: list[str] = []
    for key, token in marks.items():
        if key > last:
            added.append(token)  # type: ignore[arg-type]  # None ruled out above
            continue
        at = bisect_left(before, key)
        if at == len(before) or before[at] != token:
            return None
    return before + sorted(added)


def _instant_reader(column: sa.Column[datetime], dialect: sa.Dialect) -> Callable[[Any], Any]:
    """The column's own result conversion, done once per distinct stored value."""
    convert = column.type.result_processor(dialect, None)
    converted: dict[Any, Any] = {}

    def read(value: Any) -> Any:
        if convert is None or value is None:
            return value
        known = converted.get(value)
        if known is None:
            known = converted[value] = convert(value)
        return known

    return read


class SummaryStore(StoreBase):
    def scan_state(self, school_id: str, *, conn: sa.Connection | None = None) -> ScanState | None:
        s = t.scan_state
        with self._read(conn) as c:
            row = c.execute(sa.select(s).where(s.c.school_id == school_id)).first()
        if row is None:
            return None
        return ScanState(row.school_id, row.marks_seen_to, row.as_of, row.basis)

    def summary_tokens(
        self,
        school_id: str,
        update: SummaryUpdate | None = None,
        *,
        conn: sa.Connection | None = None,
    ) -> dict[str, list[str]]:
        """Every pupil's summarised marks as tokens (unsorted), with ``update``'s recomputed
        pupil-months in place of the stored ones: what ``mark_tokens`` gives, without rereading
        the months that did not change."""
        p = t.pupil_summary
        out: dict[str, list[str]] = {}
        if update is None or not update.full:
            # The months the update does not touch arrive joined per pupil (one row per pupil,
            # not per pupil-month); the months it touches row by row, the update's replacing
            # those it recomputed.
            touched = sorted({month for _, month in update.months}) if update is not None else []
            with self._read(conn) as c:
                whole = sa.select(p.c.pupil_id, _joined(c.dialect.name, p.c.marks)).where(
                    p.c.school_id == school_id
                )
                if touched:
                    whole = whole.where(p.c.period.not_in(touched))
                for pid, text in c.execute(whole.group_by(p.c.pupil_id)):
                    if text:
                        out[pid] = split_tokens(text)
                if touched and update is not None:
                    query = sa.select(p.c.pupil_id, p.c.period, p.c.marks).where(
                        p.c.school_id == school_id, p.c.period.in_(touched)
                    )
                    for pid, month, text in c.execute(query):
                        if (pid, month) not in update.months and text:
                            out.setdefault(pid, []).extend(split_tokens(text))
        if update is not None:
            for (pid, _month), tokens in update.months.items():
                if not tokens:
                    continue
                if pid in out:
                    out[pid].extend(tokens)
                else:
                    out[pid] = list(tokens)  # a copy: the update's lists are saved afterwards
        return out

    def summary_texts(
        self, school_id: str, update: SummaryUpdate, *, conn: sa.Connection | None = None
    ) -> dict[str, str]:
        """Every pupil's summarised marks as one text, with ``update``'s pupil-months in place
        of the stored ones: each month's tokens joined with TOKEN_SEPARATOR, the months with
        MONTH_SEPARATOR, in no particular order. Nothing is split here: the scan decodes a
        pupil's months when a rule asks for them (``validators.lean_marks.LazyMarks``)."""
        p = t.pupil_summary
        parts: dict[str, list[str]] = {}
        if not update.full:
            touched = sorted({month for _, month in update.months})
            with self._read(conn) as c:
                whole = sa.select(
                    p.c.pupil_id, _joined(c.dialect.name, p.c.marks, MONTH_SEPARATOR)
                ).where(p.c.school_id == school_id)
                if touched:
                    whole = whole.where(p.c.period.not_in(touched))
                for pid, text in c.execute(whole.group_by(p.c.pupil_id)).all():
                    if text:
                        parts[pid] = [text]
                kept = update.kept
                if touched and kept is None:
                    query = sa.select(p.c.pupil_id, p.c.period, p.c.marks).where(
                        p.c.school_id == school_id, p.c.period.in_(touched)
                    )
                    kept = {(pid, month): text for pid, month, text in c.execute(query).all()}
            for (pid, month), text in (kept or {}).items():
                if (pid, month) not in update.months and text:
                    parts.setdefault(pid, []).append(text)
        for (pid, _month), tokens in update.months.items():
            if tokens:
                parts.setdefault(pid, []).append(TOKEN_SEPARATOR.join(tokens))
        return {pid: MONTH_SEPARATOR.join(texts) for pid, texts in parts.items()}

    def summary_rebuild(
        self, school_id: str, *, conn: sa.Connection | None = None
    ) -> SummaryUpdate:
        """Every pupil-month of the school recomputed from the marks (a full scan's read).
        Aggregated per pupil in SQL and split by month here: grouping by an expression on the
        date made SQLite sort every mark again, where grouping by pupil walks an index. Each
        pupil's tokens are sorted (tokens sort by date and session), so a month is one slice."""
        update = SummaryUpdate(full=True)
        with self._read(conn) as c:
            update.marks_seen_to = self.latest_change(school_id, conn=c)
            by_pupil = read_mark_tokens(c, school_id)
        months = update.months
        for pid, tokens in by_pupil.items():
            tokens.sort()
            for month, tokens_of_month in _month_slices(tokens):
                months[(pid, month)] = tokens_of_month
        return update

    def summary_changes(
        self, school_id: str, since: datetime | None, *, conn: sa.Connection | None = None
    ) -> SummaryUpdate:
        """The pupil-months with a mark changed at or after ``since - REREAD_MARGIN``, patched
        with those marks as they are now (all of them recomputed when ``since`` is None)."""
        if since is None:
            return self.summary_rebuild(school_id, conn=conn)
        m, p = t.marks, t.pupil_summary
        kept: dict[PupilMonth, str] = {}
        update = SummaryUpdate(marks_seen_to=since, kept=kept)
        # (pupil, month) -> mark key (date and session) -> its token now (None: deleted)
        changed: dict[PupilMonth, dict[str, str | None]] = {}
        update.changed_from = since - REREAD_MARGIN
        update.changed = []
        with self._read(conn) as c:
            query = sa.select(
                m.c.pupil_id,
                token_expression(c.dialect.name),
                m.c.deleted_at.is_(None),
                # as the driver gives it, converted once per instant below: a sync stamps all
                # its marks with one instant, and converting each row was half this read
                sa.type_coerce(m.c.changed_at, sa.String),
            ).where(m.c.school_id == school_id, m.c.changed_at >= update.changed_from)
            instant = _instant_reader(m.c.changed_at, c.dialect)
            for pid, token, live, stored_at in c.execute(query).all():
                changed.setdefault((pid, token[:PERIOD_END]), {})[token[:KEY_END]] = (
                    token if live else None
                )
                update.changed.append((pid, token, instant(stored_at)))
            if not changed:
                return update
            latest = self.latest_change(school_id, conn=c)
            if latest is not None and latest > since:
                update.marks_seen_to = latest
            touched = sorted({month for _, month in changed})
            stored: dict[PupilMonth, str] = {}
            query = sa.select(p.c.pupil_id, p.c.period, p.c.marks).where(
                p.c.school_id == school_id, p.c.period.in_(touched)
            )
            for pid, month, text in c.execute(query).all():
                if (pid, month) in changed:
                    stored[(pid, month)] = text
                else:
                    kept[(pid, month)] = text
        for key, marks in changed.items():
            before = split_tokens(stored.get(key))
            appended = _appended(before, marks)
            if appended is not None:
                # The usual night: the month's new day after its stored marks, last night's
                # reread as stored, nothing deleted (~1,500 pupil-months; the same list as
                # patching a dict of every token).
                update.months[key] = appended
                continue
            tokens = {token[:KEY_END]: token for token in before}
            for at, token in marks.items():
                if token is None:
                    tokens.pop(at, None)
                else:
                    tokens[at] = token
            update.months[key] = sorted(tokens.values())
        return update

    def latest_change(
        self, school_id: str, *, conn: sa.Connection | None = None
    ) -> datetime | None:
        """The latest ``changed_at`` of the school's marks (None before any mark)."""
        m = t.marks
        with self._read(conn) as c:
            value: datetime | None = c.execute(
                sa.select(sa.func.max(m.c.changed_at)).where(m.c.school_id == school_id)
            ).scalar()
        return value

    def save_summary(
        self,
        school_id: str,
        update: SummaryUpdate,
        *,
        as_of: date,
        basis: str,
        at: datetime | None = None,
        conn: sa.Connection | None = None,
    ) -> None:
        """Store recomputed pupil-months and the new scan state (one transaction).

        Only the pupil-months whose tokens differ from the stored ones are written (a full
        rebuild of an unchanged year writes none); after a full rebuild, the stored
        pupil-months it did not find are deleted. ``updated_at`` is when a row last changed."""
        now = self._at(at)
        p = t.pupil_summary
        texts = {
            key: TOKEN_SEPARATOR.join(tokens) for key, tokens in update.months.items() if tokens
        }
        with self._write(conn) as c:
            stored: dict[PupilMonth, str] = {}
            if update.full:
                query = sa.select(p.c.pupil_id, p.c.period, p.c.marks).where(
                    p.c.school_id == school_id
                )
                stored = {(pid, month): text for pid, month, text in c.execute(query)}
                gone = [key for key in stored if key not in texts]
            else:
                gone = [key for key, tokens in update.months.items() if not tokens]
            if gone:
                c.execute(
                    sa.delete(p).where(
                        p.c.school_id == school_id,
                        p.c.pupil_id == sa.bindparam("pupil"),
                        p.c.period == sa.bindparam("month"),
                    ),
                    [{"pupil": pid, "month": month} for pid, month in gone],
                )
            written_at = bind_converter(p, "updated_at", c.dialect)(now)
            insert_rows(
                c,
                p,
                SUMMARY_COLUMNS,
                [
                    (school_id, pid, month, text, written_at)
                    for (pid, month), text in texts.items()
                    if stored.get((pid, month)) != text
                ],
                conflict_keys=("school_id", "pupil_id", "period"),
                update=("marks", "updated_at"),
            )
            upsert(
                c,
                t.scan_state,
                [
                    {
                        "school_id": school_id,
                        "marks_seen_to": update.marks_seen_to,
                        "as_of": as_of,
                        "basis": basis,
                        "updated_at": now,
                    }
                ],
                keys=("school_id",),
                update=("marks_seen_to", "as_of", "basis", "updated_at"),
            )

    def forget_summary(self, school_id: str, *, conn: sa.Connection | None = None) -> None:
        """Drop the school's summary and scan state: its next scan is a full one."""
        with self._write(conn) as c:
            c.execute(sa.delete(t.pupil_summary).where(t.pupil_summary.c.school_id == school_id))
            c.execute(sa.delete(t.scan_state).where(t.scan_state.c.school_id == school_id))
