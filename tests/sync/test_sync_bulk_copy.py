"""A first sync's marks reach PostgreSQL by COPY and one INSERT ... SELECT (store.bulk): the
stored rows and the diff are those of the row-at-a-time path SQLite takes, first time and on a
re-pull that changes some marks."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from support.pg import pg_schema_url

from registerwatch.schema import Mark
from registerwatch.simulator.generate import generate_school
from registerwatch.store import Store, bulk
from registerwatch.store import tables as t
from registerwatch.store.records import MarkDiff

FIRST = datetime(2025, 12, 1, 18, 0, tzinfo=UTC)
SECOND = datetime(2025, 12, 2, 18, 0, tzinfo=UTC)


def _two_pulls() -> tuple[str, list[Mark], list[Mark]]:
    generated = generate_school(7, 40, vendor="arbor", inject_breaches=False)
    marks = list(generated.marks)
    assert len(marks) >= bulk.PG_COPY_MIN_ROWS  # the COPY path is the one taken
    changed = [
        m.model_copy(update={"code": "L" if m.code != "L" else "/", "minutes_late": 5})
        if n % 97 == 0
        else m
        for n, m in enumerate(marks)
    ]
    return generated.school.id, marks, changed


def _sync(url: str, school_id: str, pulls: list[list[Mark]]) -> tuple[list[Any], list[Any]]:
    store = Store.open(url)
    try:
        diffs: list[MarkDiff] = []
        for pull, at in zip(pulls, (FIRST, SECOND), strict=False):
            with store.transaction() as tx:
                diffs.append(store.upsert_marks(pull, school_id, at=at, conn=tx))
        summary = [
            (len(d.new), len(d.unchanged), sorted((c.key, c.fields) for c in d.changed))
            for d in diffs
        ]
        with store.transaction() as tx:
            m = t.marks
            rows = tx.execute(sa.select(m).order_by(m.c.pupil_id, m.c.date, m.c.session)).all()
        return summary, [tuple(row) for row in rows]
    finally:
        store.close()


def test_marks_copied_into_postgresql_are_stored_and_diffed_as_sqlite_does_them(
    tmp_path: Path,
) -> None:
    school_id, marks, changed = _two_pulls()
    with pg_schema_url("bulkcopy") as pg_url:
        pg = _sync(pg_url, school_id, [marks, changed])
    sqlite = _sync(f"sqlite:///{tmp_path / 's.db'}", school_id, [marks, changed])
    assert pg[0] == sqlite[0]
    assert pg[0][0][0] == len(marks) and pg[0][1][2]  # all new, then some changed
    # Every column, read through the column types: the same values from both backends.
    assert pg[1] == sqlite[1]
    assert len(pg[1]) == len(marks)
