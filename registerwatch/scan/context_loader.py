"""What the scan reads from the store: one school's records as a ScanContext.

``load_context`` builds one school's :class:`~registerwatch.validators.ScanContext` from the store
(pupils, registers, live marks, amendment records, observed changes, notifications, what the MIS
exposed at its last sync) and the calendar from the config, which is the authority on term dates.

The marks are read lean (``store.lean``): per pupil, one token per live mark, aggregated by the
database, turned into shared ``SessionMark`` tuples (``validators.lean_marks``), never a Mark
object per mark. They come either from the marks table (a **full** read, which also rebuilds the
per-pupil summary) or from the summary kept by the school's last scan, with only the
pupil-months whose marks changed since reread (an **incremental** read: ``store.summary``).
``marks_read`` chooses; both give the same marks, so the same findings (tests/scan).

Everything here goes through public ``Store`` methods: the observed changes are
``Store.ledger(kinds=OBSERVED_KINDS)`` (sync writes one ``observed_new`` entry per mark, so the
whole ledger is as large as the marks table; the rules need only the changes and deletions, found
through the ledger's (school_id, kind) index), and a finding's lifecycle beyond
``save_findings`` is ``Store.reopen_findings`` / ``Store.clear_acknowledgements``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from registerwatch import __version__
from registerwatch.calendar import calendar_for
from registerwatch.config import SchoolSettings
from registerwatch.gcpause import collector_paused
from registerwatch.schema import Pupil, Register, Session
from registerwatch.store import OBSERVED_KINDS, Connection, ScanState, Store, SummaryUpdate
from registerwatch.validators import (
    DEFAULT_SETTINGS,
    ObservedChange,
    Rule,
    RuleSettings,
    ScanContext,
    observed_changes_from_ledger,
)
from registerwatch.validators.lean_marks import LazyMarks

__all__ = ["MarksRead", "load_context", "marks_read", "observed_ledger", "scan_basis"]


def observed_ledger(
    store: Store, school_id: str, *, conn: Connection | None = None
) -> list[ObservedChange]:
    """The school's observed changes and deletions from the ledger, in ledger order."""
    return observed_changes_from_ledger(store.ledger(school_id, kinds=OBSERVED_KINDS, conn=conn))


def load_context(
    store: Store,
    school: SchoolSettings,
    as_of: date,
    *,
    settings: RuleSettings = DEFAULT_SETTINGS,
    conn: Connection | None = None,
    marks: MarksRead | None = None,
    pupils: Sequence[Pupil] | None = None,
    registers: Sequence[Register] | None = None,
    session_pupils: Mapping[tuple[date, Session], frozenset[str]] | None = None,
) -> ScanContext:
    """One school's records as a ScanContext for a scan on ``as_of``.

    ``marks`` is the lean read of the marks (default: a full read, ``marks_read``).
    ``pupils`` and ``registers`` are what the caller already read (default: every one of the
    school's); ``session_pupils`` the marked pupils of the sessions a nightly scan re-judges.
    Marks flagged deleted are left out (the lean read reads live marks only): a deletion
    reaches the rules as an observed change (AMD003). Before the first sync with capability
    records, the MIS is taken to expose neither register events nor amendment records, so REG001
    and AMD002 each say once what could not be checked instead of reporting breaches.
    Raises CalendarError when the school's configured calendar has no terms.
    """
    calendar = calendar_for(school)
    capabilities = store.capabilities(school.id, conn=conn)
    if marks is None:
        marks = marks_read(store, school.id, None, conn=conn)
    with collector_paused():
        return ScanContext.build(
            calendar=calendar,
            as_of=as_of,
            school_id=school.id,
            pupils=store.pupils(school.id, conn=conn) if pupils is None else pupils,
            registers=store.registers(school.id, conn=conn) if registers is None else registers,
            session_pupils=session_pupils,
            mark_rows=marks.rows,
            amendments=store.amendments(school.id, conn=conn),
            observed_changes=observed_ledger(store, school.id, conn=conn),
            notifications=store.notifications(school.id, conn=conn),
            exposes_registers=bool(capabilities.get("registers", False)),
            exposes_amendments=bool(capabilities.get("amendments", False)),
            # A store synced before this capability was recorded: judge as before.
            exposes_social_worker=bool(capabilities.get("social_worker", True)),
            settings=settings,
        )


@dataclass(frozen=True)
class MarksRead:
    """The school's live marks as the rules read them (decoded per pupil when a rule asks),
    and the summary update to store."""

    rows: LazyMarks
    summary: SummaryUpdate
    incremental: bool

    @property
    def count(self) -> int:
        return self.rows.count()


def scan_basis(school: SchoolSettings, rules: Sequence[Rule], settings: RuleSettings) -> str:
    """What a scan's findings rest on besides the records: the rules (their codes and this
    registerwatch's version, which fixes what they mean), their settings and the school's
    configuration (its calendar). A change of any makes the next scan a full one."""
    parts = {
        "version": __version__,
        "rules": sorted(rule.code for rule in rules),
        "settings": _canonical(settings.model_dump()),
        "school": _canonical(school.model_dump()),
    }
    text = json.dumps(parts, sort_keys=True, default=str)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def _canonical(value: Any) -> Any:
    """``value`` with its sets as sorted lists: a set's order differs from one process to the
    next (string hashing is randomised), and the basis must not."""
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted((_canonical(v) for v in value), key=repr)
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    return value


def marks_read(
    store: Store,
    school_id: str,
    incremental_from: ScanState | None,
    *,
    conn: Connection | None = None,
) -> MarksRead:
    """The school's live marks, lean: from the summary kept by the last scan plus the
    pupil-months changed since (``incremental_from``: that scan's state), or, without it, from
    the marks table, rebuilding the summary."""
    if incremental_from is not None and incremental_from.marks_seen_to is not None:
        update = store.summary_changes(school_id, incremental_from.marks_seen_to, conn=conn)
        # kept as text: a nightly's rules mostly ask for the last few days of each pupil
        raw: Mapping[str, str | list[str]] = store.summary_texts(school_id, update, conn=conn)
    else:
        update = store.summary_rebuild(school_id, conn=conn)
        raw = store.summary_tokens(school_id, update, conn=conn)
    return MarksRead(LazyMarks(raw), update, not update.full)
