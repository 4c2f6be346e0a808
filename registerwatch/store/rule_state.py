"""What incremental rules carry from one scan of a school to the next (``rule_state``).

One row per school and rule: the rule's state as JSON and the day it was judged to (the
context's ``as_of``). The row with rule ``SCHOOL_ROW`` holds the school-wide part the next scan's
delta compares against (``scan.incremental``: how far the marks and registers were read, a
digest per pupil). The table is a cache of the records: a missing or unreadable row makes that
rule's next scan a full one, so ``forget_rule_states`` is always safe.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from registerwatch.store import tables as t
from registerwatch.store.base import StoreBase, upsert

SCHOOL_ROW = "*"


@dataclass(frozen=True)
class RuleState:
    """One rule's stored state for one school (``data`` is the decoded JSON)."""

    rule: str
    judged_to: date
    data: Any


class RuleStateStore(StoreBase):
    def rule_states(
        self, school_id: str, *, conn: sa.Connection | None = None
    ) -> dict[str, RuleState]:
        """Every stored state of the school, by rule (``SCHOOL_ROW`` included)."""
        s = t.rule_state
        query = sa.select(s.c.rule, s.c.judged_to, s.c.state).where(s.c.school_id == school_id)
        with self._read(conn) as c:
            rows = c.execute(query).all()
        return {
            rule: RuleState(rule, judged_to, json.loads(text)) for rule, judged_to, text in rows
        }

    def save_rule_states(
        self,
        school_id: str,
        states: Mapping[str, RuleState],
        *,
        drop_others: bool = True,
        at: datetime | None = None,
        conn: sa.Connection | None = None,
    ) -> None:
        """Store ``states`` (by rule); with ``drop_others``, the school's other rows go, so a
        rule that ran without keeping a state (or failed) is scanned in full next time."""
        now = self._at(at)
        s = t.rule_state
        dumped: dict[tuple[Any, ...], str] = {}
        rows = [
            {
                "school_id": school_id,
                "rule": rule,
                "judged_to": state.judged_to,
                "state": _dumped(state.data, dumped),
                "updated_at": now,
            }
            for rule, state in states.items()
        ]
        with self._write(conn) as c:
            if drop_others:
                c.execute(
                    sa.delete(s).where(s.c.school_id == school_id, s.c.rule.not_in(list(states)))
                )
            upsert(
                c, s, rows, keys=["school_id", "rule"], update=["judged_to", "state", "updated_at"]
            )

    def forget_rule_states(self, school_id: str, *, conn: sa.Connection | None = None) -> None:
        """Drop the school's rule states: its next scan runs every rule in full."""
        s = t.rule_state
        with self._write(conn) as c:
            c.execute(sa.delete(s).where(s.c.school_id == school_id))


def _dumped(data: Any, memo: dict[tuple[Any, ...], str]) -> str:
    """``data`` as JSON, dumped once per set of objects: rules that share a fold (ATT002 and
    ATT003) hand back states made of the very same objects, ~174 KB each a night. Keyed by
    identity, which holds because nothing changes the states while they are saved (the
    objects stay referenced by ``states``, so no id is reused meanwhile)."""
    if not isinstance(data, dict):
        return json.dumps(data, separators=(",", ":"))
    key = tuple((k, id(v)) for k, v in data.items())
    text = memo.get(key)
    if text is None:
        text = memo[key] = json.dumps(data, separators=(",", ":"))
    return text
