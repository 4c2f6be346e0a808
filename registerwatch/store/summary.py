"""The incremental scan's per-pupil summary: each pupil's live marks, one row per month.

A row of ``pupil_summary`` holds one pupil's live marks of one month as the lean read's tokens
(``store.lean``), so the summary is exactly what ``mark_tokens`` would return, kept between
scans. ``scan_state`` says how far it follows the marks: every mark whose ``changed_at`` is after
``marks_seen_to`` (its content or its deletion flag changed) is not in it yet.

A nightly scan refreshes the summary in two steps, because it reads inside one snapshot and may
write only after: ``summary_changes`` (inside the snapshot) recomputes, from the marks table,
only the pupil-months with a mark changed since ``marks_seen_to`` minus ``REREAD_MARGIN``
(through the ``(school_id, changed_at)`` index); ``save_summary`` (in a write transaction
afterwards) stores them. Recomputing a whole pupil-month rather than patching tokens makes a
repeated refresh harmless, so the margin can be generous: it covers a sync that took its
``changed_at`` before an earlier one committed.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

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
# Above this many pupils changed in one month, the month is reread for the whole school.
PUPIL_FILTER_LIMIT = 500

PupilMonth = tuple[str, str]  # (pupil id, "YYYY-MM")
PERIOD_END = 7  # a token starts with its ISO date: its first 7 characters are the period
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
    """Pupil-months recomputed from the marks (tokens; an empty list: no live marks left)."""

    months: dict[PupilMonth, list[str]] = field(default_factory=dict)
    marks_seen_to: datetime | None = None
    full: bool = False  # the whole summary was rebuilt: rows not in ``months`` are dropped


def _period(dialect: str) -> sa.ColumnElement[str]:
    if dialect == "postgresql":
        return sa.func.to_char(t.marks.c.date, "YYYY-MM")
    return sa.func.substr(sa.cast(t.marks.c.date, sa.String), 1, 7)


def _aggregate(dialect: str) -> sa.ColumnElement[str]:
    token = token_expression(dialect)
    if dialect == "postgresql":
        return sa.func.string_agg(token, TOKEN_SEPARATOR)
    return sa.func.group_concat(token, TOKEN_SEPARATOR)


def _joined(dialect: str, column: sa.ColumnElement[str]) -> sa.ColumnElement[str]:
    """Text rows joined into one with the token separator (per group)."""
    if dialect == "postgresql":
        return sa.func.string_agg(column, TOKEN_SEPARATOR)
    return sa.func.group_concat(column, TOKEN_SEPARATOR)


def _month_bounds(period: str) -> tuple[date, date]:
    first = date.fromisoformat(f"{period}-01")
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return first, following - timedelta(days=1)


def _month_slices(tokens: list[str]) -> Iterator[tuple[str, list[str]]]:
    """Sorted tokens cut into (month, that month's tokens): a bisection per month, not a look
    at every token. A month's tokens start with "YYYY-MM-"; MONTH_AFTER sorts after "-"."""
    start, end = 0, len(tokens)
    while start < end:
        month = tokens[start][:PERIOD_END]
        stop = bisect_left(tokens, month + MONTH_AFTER, start, end)
        yield month, tokens[start:stop]
        start = stop


def _batches(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


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
        """The pupil-months with a mark changed at or after ``since - REREAD_MARGIN``,
        recomputed from the marks (all of them when ``since`` is None)."""
        if since is None:
            return self.summary_rebuild(school_id, conn=conn)
        m = t.marks
        update = SummaryUpdate(marks_seen_to=since)
        with self._read(conn) as c:
            period = _period(c.dialect.name)
            query = (
                sa.select(m.c.pupil_id, period, sa.func.max(m.c.changed_at))
                .where(m.c.school_id == school_id, m.c.changed_at >= since - REREAD_MARGIN)
                .group_by(m.c.pupil_id, period)
            )
            touched: dict[str, set[str]] = {}
            for pid, month, changed in c.execute(query):
                touched.setdefault(month, set()).add(pid)
                if update.marks_seen_to is None or changed > update.marks_seen_to:
                    update.marks_seen_to = changed
            for month, pupils in sorted(touched.items()):
                found = self._months(c, school_id, month, pupils)
                update.months.update({(pid, month): found.get((pid, month), []) for pid in pupils})
        return update

    def _months(
        self, c: sa.Connection, school_id: str, month: str | None, pupils: set[str] | None
    ) -> dict[PupilMonth, list[str]]:
        m = t.marks
        period = _period(c.dialect.name)
        query = (
            sa.select(m.c.pupil_id, period, _aggregate(c.dialect.name))
            .where(m.c.school_id == school_id, m.c.deleted_at.is_(None))
            .group_by(m.c.pupil_id, period)
        )
        if month is not None:
            first, last = _month_bounds(month)
            query = query.where(m.c.date >= first, m.c.date <= last)
        out: dict[PupilMonth, list[str]] = {}
        if pupils is None or len(pupils) > PUPIL_FILTER_LIMIT:
            for pid, key, text in c.execute(query):
                if pupils is None or pid in pupils:
                    out[(pid, key)] = split_tokens(text)
            return out
        for batch in _batches(sorted(pupils), PUPIL_FILTER_LIMIT):
            for pid, key, text in c.execute(query.where(m.c.pupil_id.in_(batch))):
                out[(pid, key)] = split_tokens(text)
        return out

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
