"""The nightly scan's delta and what it carries forward (issue 12 item 2).

A scan that keeps rule states (``Store.save_rule_states``) also keeps, in the school's row
(``SCHOOL_ROW``), what the next scan compares against: how far it read the marks' and the
registers' ``changed_at``, the capabilities it judged with, and per pupil a digest of the record
with the fields that place the pupil on a register (group, boarding, roll dates, NC year).
``read_delta`` turns the difference into a :class:`~registerwatch.validators.delta.ScanDelta`:

- the newly judged sessions (from the last scan's ``as_of`` to the day before this one's);
- the sessions with a mark or a register changed since (through the changed_at indexes, from
  ``REREAD_MARGIN`` before the recorded high-water mark: a sync that took its time before an
  earlier one committed is still seen);
- for a pupil whose roll dates changed, the days between the old and the new date; a pupil who
  came or went, the days they are (were) on roll; a change of group, boarding or NC year cannot
  be placed on a few days (``localised`` False: the register rules run in full).

There is no delta (every rule runs in full) on the first scan, when the last scan kept no
state, when this scan's ``as_of`` is before the last one's or more than ``MAX_DELTA_DAYS`` after
it, or when the capabilities changed. The caller has already ruled out a change of basis and
a backdated scan (``pipeline.incremental_state``).

``carried_findings``: a rule that re-judged only the delta covers only some of its findings;
its stored open findings outside that scope are kept as they were (and stay open).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from registerwatch.calendar import SchoolCalendar
from registerwatch.schema import Finding, Pupil, Session
from registerwatch.store import SCHOOL_ROW, Connection, RuleState, Store, StoredFinding
from registerwatch.store.summary import REREAD_MARGIN, SummaryUpdate
from registerwatch.validators import Rule
from registerwatch.validators.context import SessionKey
from registerwatch.validators.delta import RuleRun, ScanDelta

__all__ = [
    "MAX_DELTA_DAYS",
    "DeltaRead",
    "carried_findings",
    "kept_states",
    "needs_registers_in_full",
    "read_delta",
]

# A nightly scan after a longer gap than this runs in full: its delta would be most of a term.
MAX_DELTA_DAYS = 31
# Bumped when the school row's shape changes: an older row then gives no delta. 2: the pupil
# digest is of the stored row (``Store.pupils_digested``), no longer of the model's JSON.
SCHOOL_ROW_VERSION = 2


@dataclass(frozen=True)
class DeltaRead:
    """The delta (None: a full scan), the school row to keep, and the rule states judged to
    the delta's ``previous_as_of`` (by code)."""

    delta: ScanDelta | None
    school_row: RuleState
    states: dict[str, Any]


# Positions in a pupil's entry (``pupil_entry``): after the digest, what places the pupil on a
# register.
_GROUP, _BOARDER, _START, _LEAVE, _NC_YEAR = 1, 2, 3, 4, 5


def _on_roll_fields(pupil: Pupil) -> list[Any]:
    return [
        pupil.reg_group,
        pupil.boarder,
        pupil.starting_day.isoformat() if pupil.starting_day else None,
        pupil.leaving_date.isoformat() if pupil.leaving_date else None,
        pupil.nc_year,
    ]


def pupil_entry(pupil: Pupil, digest: str) -> list[Any]:
    """What the school row keeps per pupil: a digest of the whole record (its stored row),
    then the fields that place the pupil on a register."""
    return [digest, *_on_roll_fields(pupil)]


def _instant(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def read_delta(
    store: Store,
    school_id: str,
    calendar: SchoolCalendar,
    judged_as_of: date,
    pupils: Sequence[tuple[Pupil, str]],
    capabilities: Mapping[str, Any],
    *,
    allowed: bool,
    marks_read: SummaryUpdate | None = None,
    conn: Connection | None = None,
) -> DeltaRead:
    """The delta since the school's last scan that kept states (see the module doc), for a
    scan whose rules judge as of ``judged_as_of``, with the school's pupils and their digests
    (``Store.pupils_digested``). ``allowed`` False: a full scan regardless. ``marks_read``:
    the summary update this scan read in the same snapshot (its changed marks are reused)."""
    entries = {p.id: pupil_entry(p, digest) for p, digest in pupils}
    caps = {k: capabilities[k] for k in sorted(capabilities)}
    latest = store.latest_change(school_id, conn=conn)
    row = RuleState(
        SCHOOL_ROW,
        judged_as_of,
        {
            "version": SCHOOL_ROW_VERSION,
            "marks_seen_to": _instant(latest),
            "marks_window": {},
            "registers_seen_to": _instant(store.latest_register_change(school_id, conn=conn)),
            "capabilities": caps,
            "pupils": entries,
        },
    )
    stored = store.rule_states(school_id, conn=conn) if allowed else {}
    before = stored.get(SCHOOL_ROW)
    usable = before is not None and not (
        before.data.get("version") != SCHOOL_ROW_VERSION
        or before.data.get("capabilities") != caps
        or judged_as_of < before.judged_to
        or (judged_as_of - before.judged_to).days > MAX_DELTA_DAYS
        or (before.data.get("marks_seen_to") is None and latest is not None)
    )
    # The marks changed since the last scan's high-water mark less the margin (with a
    # delta), or only inside this scan's own margin window (to remember it, see _unseen).
    since = None if latest is None else latest - REREAD_MARGIN
    if usable and before is not None and before.data.get("marks_seen_to") is not None:
        since = datetime.fromisoformat(before.data["marks_seen_to"]) - REREAD_MARGIN
    rows = (
        []
        if since is None
        else store.changed_mark_keys(school_id, since, read=marks_read, conn=conn)
    )
    if latest is not None:
        window = Counter(r[3] for r in rows if r[3] >= latest - REREAD_MARGIN)
        row.data["marks_window"] = {_instant(k): n for k, n in window.items()}
    if not usable or before is None:
        return DeltaRead(None, row, {})
    previous = before.judged_to
    sessions: set[SessionKey] = set(_sessions(calendar, previous, judged_as_of - timedelta(days=1)))
    changed_marks: dict[str, SessionKey] = {}
    for pid, day, session, _changed in _unseen(rows, before.data.get("marks_window", {})):
        key = (day, session)
        sessions.add(key)
        if pid not in changed_marks or key < changed_marks[pid]:
            changed_marks[pid] = key
    registers_since = before.data.get("registers_seen_to")
    if registers_since is not None:
        since = datetime.fromisoformat(registers_since) - REREAD_MARGIN
        sessions.update(store.changed_register_sessions(school_id, since, conn=conn))
    elif row.data["registers_seen_to"] is not None:
        return DeltaRead(None, row, {})
    old_entries: dict[str, list[Any]] = before.data.get("pupils", {})
    changed_pupils = {
        pid
        for pid in entries.keys() | old_entries.keys()
        if entries.get(pid) != old_entries.get(pid)
    }
    localised = True
    for pid in changed_pupils:
        days = _roll_change_days(calendar, old_entries.get(pid), entries.get(pid))
        if days is None:
            localised = False
            continue
        first, last = days
        sessions.update(_sessions(calendar, first, min(last, judged_as_of - timedelta(days=1))))
    delta = ScanDelta(
        previous_as_of=previous,
        sessions=frozenset(sessions),
        localised=localised,
        pupils=frozenset(changed_pupils),
        changed_marks=changed_marks,
    )
    states = {code: state.data for code, state in stored.items() if state.judged_to == previous}
    states.pop(SCHOOL_ROW, None)
    return DeltaRead(delta, row, states)


def _unseen(
    rows: list[tuple[str, date, Session, datetime]], remembered: Mapping[str, int]
) -> list[tuple[str, date, Session, datetime]]:
    """The changed marks the last scan did not see. It reread from ``REREAD_MARGIN`` before
    its high-water mark (a sync that took its ``changed_at`` before an earlier one committed),
    and remembered how many marks it saw at each instant of that window: an instant with the
    same count now is what it saw (a mark changed again has moved to a later instant), so the
    previous night's marks are not taken for changes (which would refold every pupil)."""
    per_instant = Counter(r[3] for r in rows)
    seen = {at for at, n in per_instant.items() if remembered.get(_instant(at) or "") == n}
    return [r for r in rows if r[3] not in seen]


def _sessions(calendar: SchoolCalendar, first: date, last: date) -> list[SessionKey]:
    first = max(first, calendar.first_day)
    last = min(last, calendar.last_day)
    if first > last:
        return []
    return [(d, s) for d in calendar.school_days(first, last) for s in calendar.sessions_on(d)]


def _roll_change_days(
    calendar: SchoolCalendar, old: list[Any] | None, new: list[Any] | None
) -> tuple[date, date] | None:
    """The days on which the pupil's place on the registers may differ between the two
    entries (inclusive; an empty range when only other fields changed), or None when that is
    not a few days (a change of group, boarding or NC year)."""
    far_past, far_future = calendar.first_day, calendar.last_day
    if old is None or new is None:
        entry = old if new is None else new
        assert entry is not None
        start, leave = entry[_START], entry[_LEAVE]
        return (
            date.fromisoformat(start) if start else far_past,
            date.fromisoformat(leave) if leave else far_future,
        )
    if any(old[i] != new[i] for i in (_GROUP, _BOARDER, _NC_YEAR)):
        return None
    bounds: list[date] = []
    for index, unbounded in ((_START, far_past), (_LEAVE, far_future)):
        if old[index] != new[index]:
            for value in (old[index], new[index]):
                bounds.append(date.fromisoformat(value) if value else unbounded)
    if not bounds:
        return far_future, far_past  # empty: nothing about the registers changed
    return min(bounds), max(bounds)


def carried_findings(
    stored: Mapping[str, StoredFinding], runs: Mapping[str, RuleRun], failed: Iterable[str]
) -> list[Finding]:
    """The stored open findings of rules that re-judged only part of their findings, outside
    that part and not found again: they stand as they were."""
    skip = set(failed)
    produced = {f.fingerprint for run in runs.values() for f in run.findings}
    out: list[Finding] = []
    for fp, before in stored.items():
        run = runs.get(before.finding.rule)
        if (
            before.status != "open"
            or run is None
            or run.covers is None
            or before.finding.rule in skip
            or fp in produced
            or run.covers(before.finding)
        ):
            continue
        out.append(before.finding)
    return out


def kept_states(
    rules: Sequence[Rule], runs: Mapping[str, RuleRun], failed: Iterable[str], judged_to: date
) -> dict[str, RuleState]:
    """The states to store after a scan: each rule that ran cleanly and keeps one (a failed
    rule keeps none, so its next scan is a full one)."""
    skip = set(failed)
    return {
        rule.code: RuleState(rule.code, judged_to, runs[rule.code].state)
        for rule in rules
        if rule.code in runs and rule.code not in skip and runs[rule.code].state is not None
    }


def needs_registers_in_full(
    rules: Sequence[Rule], delta: ScanDelta | None, states: Mapping[str, Any]
) -> bool:
    """Whether the context must hold every register: a full scan, or a rule that reads them
    and will run in full (no stored state, or a change the delta could not place)."""
    if delta is None or not delta.localised:
        return True
    return any(rule.reads_registers and rule.code not in states for rule in rules)
