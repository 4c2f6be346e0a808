"""The lean read of marks for the scan: per pupil, one token per live mark, built in SQL.

The rules need four columns of a mark (pupil, date, session, code; minutes late on the few late
marks), not a Mark model. The database concatenates each live mark into a token
``"<ISO date><session><code>[:<minutes late>]"`` and aggregates them per pupil
(``group_concat`` on SQLite, ``string_agg`` on PostgreSQL), so a school year of ~570k marks
arrives as one row per pupil; ``validators.lean_marks`` turns the tokens into shared tuples.
The same tokens are the per-pupil summary the incremental scan keeps (``store.summary``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from registerwatch.store import tables as t
from registerwatch.store.base import StoreBase

# Tokens are joined with this in SQL and split on it in Python; codes never contain it.
TOKEN_SEPARATOR = ","


def token_expression(dialect: str) -> sa.ColumnElement[str]:
    """SQL for a mark's token: date (ISO) || session || code || (':' || minutes late)."""
    m = t.marks
    if dialect == "postgresql":
        day: sa.ColumnElement[str] = sa.func.to_char(m.c.date, "YYYY-MM-DD")
        minutes: sa.ColumnElement[str] = sa.cast(m.c.minutes_late, sa.String)
    else:  # SQLite keeps a Date as ISO text already
        day = sa.cast(m.c.date, sa.String)
        minutes = sa.cast(m.c.minutes_late, sa.String)
    late = sa.func.coalesce(sa.literal(":") + minutes, sa.literal(""))
    return day + m.c.session + m.c.code + late


def _aggregate(dialect: str, token: sa.ColumnElement[str]) -> sa.ColumnElement[str]:
    if dialect == "postgresql":
        return sa.func.string_agg(token, TOKEN_SEPARATOR)
    return sa.func.group_concat(token, TOKEN_SEPARATOR)


def split_tokens(text: str | None) -> list[str]:
    return text.split(TOKEN_SEPARATOR) if text else []


def read_mark_tokens(
    c: sa.Connection, school_id: str, pupil_ids: Iterable[str] | None = None
) -> dict[str, list[str]]:
    """Every live mark of the school (or of ``pupil_ids``) as tokens, per pupil, unsorted."""
    m = t.marks
    dialect = c.dialect.name
    if pupil_ids is None and dialect == "sqlite":
        rows = c.execute(_sqlite_school_tokens(), {"school_id": school_id})
        return {pid: split_tokens(text) for pid, text in rows}
    query = (
        sa.select(m.c.pupil_id, _aggregate(dialect, token_expression(dialect)))
        .where(m.c.school_id == school_id, m.c.deleted_at.is_(None))
        .group_by(m.c.pupil_id)
    )
    if pupil_ids is None:
        return {pid: split_tokens(text) for pid, text in c.execute(query)}
    out: dict[str, list[str]] = {}
    for batch in _batches(sorted(set(pupil_ids)), 500):
        for pid, text in c.execute(query.where(m.c.pupil_id.in_(batch))):
            out[pid] = split_tokens(text)
    return out


# A whole school's marks on SQLite are read through the (school_id, date) index, not the primary
# key (school_id, pupil_id, date, session) the planner picks to group by pupil. Sync writes marks
# in date order (``upsert_marks`` works through them by date), so the table's rows lie in date
# order: walking the key fetches each pupil's rows from all over the file, walking the date index
# reads them in the order they lie and lets SQLite group them in a sorter. Measured on the
# benchmark's school (bench/bench_scan.py, 561,520 marks): 0.57 s of CPU against 0.88 s.
# SQLAlchemy renders no index hints for SQLite, hence the text; the token is the same expression.
SCHOOL_READ_INDEX = "ix_marks_school_id_date"


@lru_cache(maxsize=1)
def _sqlite_school_tokens() -> sa.TextClause:
    token = token_expression("sqlite").compile(
        dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}
    )
    return sa.text(
        f"SELECT marks.pupil_id, group_concat({token}, '{TOKEN_SEPARATOR}') "
        f"FROM marks INDEXED BY {SCHOOL_READ_INDEX} "
        "WHERE marks.school_id = :school_id AND marks.deleted_at IS NULL "
        "GROUP BY marks.pupil_id"
    )


class LeanMarksStore(StoreBase):
    def mark_tokens(
        self,
        school_id: str,
        *,
        pupil_ids: Iterable[str] | None = None,
        conn: sa.Connection | None = None,
    ) -> dict[str, list[str]]:
        """Every live mark of the school (or of ``pupil_ids``) as tokens, per pupil, unsorted
        (``validators.lean_marks.MarkInterner.decode`` sorts them)."""
        with self._read(conn) as c:
            return read_mark_tokens(c, school_id, pupil_ids)

    def mark_columns(
        self, school_id: str, *, conn: sa.Connection | None = None
    ) -> Sequence[sa.Row[Any, Any, Any, Any]]:
        """The plain read of the four columns the rules need, in key order: the floor the
        benchmark compares the scan with (the scan itself reads ``mark_tokens``)."""
        m = t.marks
        query = (
            sa.select(m.c.pupil_id, m.c.date, m.c.session, m.c.code)
            .where(m.c.school_id == school_id, m.c.deleted_at.is_(None))
            .order_by(m.c.pupil_id, m.c.date, m.c.session)
        )
        with self._read(conn) as c:
            return c.execute(query).all()


def _batches(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
