"""Runs: one row per sync, scan or nightly job, with its outcome and counts."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from registerwatch.errors import StoreError
from registerwatch.store import tables as t
from registerwatch.store.base import StoreBase
from registerwatch.store.records import RunRecord


class RunsStore(StoreBase):
    def start_run(
        self, command: str, *, at: datetime | None = None, conn: sa.Connection | None = None
    ) -> int:
        r = t.runs
        stmt = sa.insert(r).values(command=command, started_at=self._at(at), counts={})
        with self._write(conn) as c:
            run_id: int = c.execute(stmt.returning(r.c.id)).scalar_one()
            return run_id

    def finish_run(
        self,
        run_id: int,
        outcome: str,
        counts: Mapping[str, Any] | None = None,
        *,
        at: datetime | None = None,
        conn: sa.Connection | None = None,
    ) -> None:
        r, lg = t.runs, t.ledger
        tip_text: str | None = None
        with self._write(conn) as c:
            tip = c.execute(
                sa.select(lg.c.seq, lg.c.hash).order_by(lg.c.seq.desc()).limit(1)
            ).first()
            stmt = (
                sa.update(r)
                .where(r.c.id == run_id)
                .values(
                    finished_at=self._at(at),
                    outcome=outcome,
                    counts=dict(counts or {}),
                    ledger_tip=(tip_text := f"{tip[0]}:{tip[1]}" if tip else None),
                )
            )
            if c.execute(stmt).rowcount != 1:
                raise StoreError(f"no run {run_id} to finish")
        if conn is None:  # committed: a copy of the tip outside the store (the tip sink)
            self.witness_tip(run_id, tip_text, at=at)

    def witness_tip(self, run_id: int, tip: str | None, *, at: datetime | None = None) -> None:
        """Overridden by the ledger's table (LedgerStore), which knows the tip sink."""

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
