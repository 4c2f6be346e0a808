"""Schools, their calendars as the MIS sync last wrote them, and pupils."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from registerwatch.schema import Calendar, Pupil, School
from registerwatch.store import tables as t
from registerwatch.store.base import StoreBase, upsert

_PUPIL_FIELDS = tuple(Pupil.model_fields)
_PUPIL_JSON_FIELDS = ("address", "future_address", "contacts")


def _school(row: sa.Row[Any]) -> School:
    data = dict(row._mapping)
    data.pop("updated_at")
    return School.model_validate(data)


class PeopleStore(StoreBase):
    # -- schools and calendars -----------------------------------------------------------------

    def upsert_school(
        self, school: School, *, at: datetime | None = None, conn: sa.Connection | None = None
    ) -> None:
        row = school.model_dump(mode="json") | {"updated_at": self._at(at)}
        with self._write(conn) as c:
            upsert(c, t.schools, [row], keys=["id"], update=[k for k in row if k != "id"])

    def school(self, school_id: str, *, conn: sa.Connection | None = None) -> School | None:
        with self._read(conn) as c:
            row = c.execute(sa.select(t.schools).where(t.schools.c.id == school_id)).first()
        return None if row is None else _school(row)

    def schools(self, *, conn: sa.Connection | None = None) -> list[School]:
        with self._read(conn) as c:
            rows = c.execute(sa.select(t.schools).order_by(t.schools.c.id)).all()
        return [_school(row) for row in rows]

    def upsert_calendar(
        self,
        calendar: Calendar,
        *,
        at: datetime | None = None,
        conn: sa.Connection | None = None,
    ) -> None:
        row = calendar.model_dump(mode="json") | {"updated_at": self._at(at)}
        with self._write(conn) as c:
            upsert(
                c,
                t.calendars,
                [row],
                keys=["school_id"],
                update=["terms", "closures", "register_times", "updated_at"],
            )

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
        self,
        pupils: Iterable[Pupil],
        *,
        at: datetime | None = None,
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
            upsert(c, t.pupils, list(rows.values()), keys=["id"], update=update)
        return len(rows)

    def pupils(self, school_id: str, *, conn: sa.Connection | None = None) -> list[Pupil]:
        columns = [t.pupils.c[name] for name in _PUPIL_FIELDS]
        query = sa.select(*columns).where(t.pupils.c.school_id == school_id).order_by(t.pupils.c.id)
        with self._read(conn) as c:
            rows = c.execute(query).all()
        return [Pupil.model_validate(dict(row._mapping)) for row in rows]
