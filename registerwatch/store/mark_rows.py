"""Stored mark rows to Marks and back: the read columns, the fast Mark builder (reading a
school's marks is the hot path of every scan: a full year is ~570k marks), and the write row.

Pure: no queries here; :mod:`registerwatch.store.marks` runs them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.engine import Dialect

from registerwatch.schema import Mark, Session
from registerwatch.store import tables as t
from registerwatch.store.base import SESSIONS
from registerwatch.store.bulk import bind_converter
from registerwatch.store.records import MARK_CONTENT_FIELDS

MARK_READ_COLUMNS = (
    t.marks.c.pupil_id,
    t.marks.c.date,
    t.marks.c.session,
    t.marks.c.code,
    t.marks.c.vendor_code,
    t.marks.c.minutes_late,
    t.marks.c.comment,
    t.marks.c.recorded_at,
    t.marks.c.recorded_by,
    t.marks.c.source_ref,
)


def _construct_mark(row: Sequence[Any]) -> Mark:
    return Mark.model_construct(
        pupil_id=row[0],
        date=row[1],
        session=SESSIONS[row[2]],
        code=row[3],
        vendor_code=row[4],
        minutes_late=row[5],
        comment=row[6],
        recorded_at=row[7],
        recorded_by=row[8],
        source_ref=row[9],
    )


_MARK_NAMES = (
    "pupil_id",
    "date",
    "session",
    "code",
    "vendor_code",
    "minutes_late",
    "comment",
    "recorded_at",
    "recorded_by",
    "source_ref",
)
_new_object = object.__new__
_set_attribute = object.__setattr__


def _build_mark(row: Sequence[Any]) -> Mark:
    # What Mark.model_construct does, without its per-field alias and default handling: a full
    # year is ~570k marks, and model_construct alone was most of the cost of reading them.
    mark = _new_object(Mark)
    _set_attribute(
        mark,
        "__dict__",
        {
            "pupil_id": row[0],
            "date": row[1],
            "session": SESSIONS[row[2]],
            "code": row[3],
            "vendor_code": row[4],
            "minutes_late": row[5],
            "comment": row[6],
            "recorded_at": row[7],
            "recorded_by": row[8],
            "source_ref": row[9],
        },
    )
    _set_attribute(mark, "__pydantic_fields_set__", set(_MARK_NAMES))
    _set_attribute(mark, "__pydantic_extra__", None)
    _set_attribute(mark, "__pydantic_private__", None)
    return mark


def _fast_path_holds() -> bool:
    """Use _build_mark only while it builds exactly what model_construct builds."""
    if tuple(Mark.model_fields) != _MARK_NAMES or Mark.__pydantic_post_init__:
        return False
    sample = (
        "s:1",
        date(2025, 1, 6),
        "AM",
        "L",
        "L",
        5,
        "bus",
        datetime(2025, 1, 6, tzinfo=UTC),
        "JH",
        "r1",
    )
    fast, slow = _build_mark(sample), _construct_mark(sample)
    return (
        fast == slow
        and fast.model_fields_set == slow.model_fields_set
        and fast.model_dump() == slow.model_dump()
        and vars(fast) == vars(slow)
    )


# Rows were validated as Marks on the way in, so they are not validated again on the way out.
FAST_MARKS = _fast_path_holds()
mark_from_row = _build_mark if FAST_MARKS else _construct_mark


def marks_from_rows(rows: Iterable[Sequence[Any]]) -> list[Mark]:
    """_build_mark over a batch of rows, inlined: the loop, not the model, was the remaining
    per-mark cost once the collector is paused (Store.marks)."""
    if not FAST_MARKS:
        return [_construct_mark(row) for row in rows]
    marks: list[Mark] = []
    append = marks.append
    sessions, names = SESSIONS, _MARK_NAMES
    for (
        pupil_id,
        day,
        session,
        code,
        vendor_code,
        minutes_late,
        comment,
        recorded_at,
        recorded_by,
        source_ref,
    ) in rows:
        mark = _new_object(Mark)
        _set_attribute(
            mark,
            "__dict__",
            {
                "pupil_id": pupil_id,
                "date": day,
                "session": sessions[session],
                "code": code,
                "vendor_code": vendor_code,
                "minutes_late": minutes_late,
                "comment": comment,
                "recorded_at": recorded_at,
                "recorded_by": recorded_by,
                "source_ref": source_ref,
            },
        )
        _set_attribute(mark, "__pydantic_fields_set__", set(names))
        _set_attribute(mark, "__pydantic_extra__", None)
        _set_attribute(mark, "__pydantic_private__", None)
        append(mark)
    return marks


def mark_content(mark: Mark) -> tuple[Any, ...]:
    return tuple(getattr(mark, name) for name in MARK_CONTENT_FIELDS)


def changed_fields(old: Mark, new: Mark) -> tuple[str, ...]:
    return tuple(
        name
        for name, a, b in zip(
            MARK_CONTENT_FIELDS, mark_content(old), mark_content(new), strict=True
        )
        if a != b
    )


# The columns a mark's row is written with, in the order mark_writer's tuples hold them.
MARK_WRITE_COLUMNS = (
    "school_id",
    "pupil_id",
    "date",
    "session",
    "code",
    "vendor_code",
    "minutes_late",
    "comment",
    "recorded_at",
    "recorded_by",
    "source_ref",
    "first_seen_at",
    "last_seen_at",
    "changed_at",
    "deleted_at",
)
MARK_KEY_COLUMNS = ("school_id", "pupil_id", "date", "session")
# What a pulled mark overwrites in a stored one (first_seen_at stays).
MARK_UPDATE_COLUMNS = (*MARK_CONTENT_FIELDS, "last_seen_at", "changed_at", "deleted_at")


def mark_writer(
    dialect: Dialect, school_id: str, now: datetime
) -> Callable[[Mark], tuple[Any, ...]]:
    """A function making the write tuple of one mark, seen by sync at ``now`` (a live mark).

    Only the date and the instants are converted, with the column types' own bind processors
    (so the stored text is what SQLAlchemy writes); ``now`` is converted once for every row.
    """
    day = bind_converter(t.marks, "date", dialect)
    instant = bind_converter(t.marks, "recorded_at", dialect)
    seen = bind_converter(t.marks, "first_seen_at", dialect)(now)
    # A school's marks share few dates (one per school day) and few recorded_at instants (one
    # per register taken): convert each distinct value once. Equal instants in different zones
    # are equal keys and convert to the same UTC value.
    days: dict[Any, Any] = {}
    instants: dict[Any, Any] = {}
    sessions = {session: str(session) for session in Session}

    def row(mark: Mark) -> tuple[Any, ...]:
        recorded_at = mark.recorded_at
        if recorded_at is not None:
            bound = instants.get(recorded_at)
            if bound is None:
                bound = instants[recorded_at] = instant(recorded_at)
        else:
            bound = None
        when = days.get(mark.date)
        if when is None:
            when = days[mark.date] = day(mark.date)
        return (
            school_id,
            mark.pupil_id,
            when,
            sessions[mark.session],
            mark.code,
            mark.vendor_code,
            mark.minutes_late,
            mark.comment,
            bound,
            mark.recorded_by,
            mark.source_ref,
            seen,
            seen,
            seen,
            None,
        )

    return row
