"""The rules without a fold re-judge only a night's delta (``Rule.run_delta``) and carry the rest:
night after night that must give exactly what a full run gives.

On the generator's school, one context per night holds the marks up to the last day of data
(the MIS has no register before it is taken), a few past marks change or disappear on some
nights, and a few pupil records change. Each night the rule runs from the state the last night
kept (dumped to JSON and loaded back, as the store keeps it) with a ``ScanDelta`` built as the
scan builds it; its stored findings outside what it covers are carried forward. The nights run
across the autumn half-term and the turn of a month (October into November), and across
Christmas into January.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Callable
from datetime import date, timedelta
from functools import cache
from typing import Any

import pytest
from support.generated_context import context

from registerwatch.calendar import SchoolCalendar
from registerwatch.schema import Finding, Pupil, Session
from registerwatch.simulator.generate import generate_school
from registerwatch.simulator.model import GeneratedSchool
from registerwatch.upn import check_upn
from registerwatch.validators import ScanContext, get_rule
from registerwatch.validators.delta import ScanDelta
from registerwatch.validators.lean_marks import SessionMark, rows_from_marks
from registerwatch.validators.registry import _delta_run, _sort_key
from registerwatch.validators.settings import RuleSettings

SessionKey = tuple[date, Session]
Rows = dict[str, tuple[SessionMark, ...]]

CHANGED = ["MRK005", "ATT005", "ATT006", "UPN001", "UPN002", "REG004", "LAR004", "LAR005"]
PERIODS = [(date(2025, 10, 20), date(2025, 11, 15)), (date(2025, 12, 15), date(2026, 1, 14))]


@cache
def school() -> GeneratedSchool:
    return generate_school(1, 150, as_of=date(2026, 1, 16))


@cache
def all_rows() -> Rows:
    return rows_from_marks(school().marks)


def dumped(findings: list[Finding]) -> list[dict[str, Any]]:
    return [f.model_dump(mode="json") for f in sorted(findings, key=_sort_key)]


def upto(rows: Rows, last: date) -> Rows:
    """The marks dated on or before ``last``."""
    out: Rows = {}
    for pid, marks in rows.items():
        kept = marks[: bisect.bisect_right(marks, (last, Session.PM, "\uffff"))]
        if kept:
            out[pid] = kept
    return out


def edited(rows: Rows, pupil_id: str, key: SessionKey, code: str | None) -> Rows:
    """``rows`` with the pupil's mark on ``key`` set to ``code`` (None: deleted)."""
    marks = [m for m in rows.get(pupil_id, ()) if (m.date, m.session) != key]
    if code is not None:
        marks.append(SessionMark(key[0], key[1], code))
    return {**rows, pupil_id: tuple(sorted(marks))}


def school_sessions(calendar: SchoolCalendar, first: date, last: date) -> set[SessionKey]:
    first, last = max(first, calendar.first_day), min(last, calendar.last_day)
    if first > last:
        return set()
    return {(d, s) for d in calendar.school_days(first, last) for s in calendar.sessions_on(d)}


class Night:
    """What changes on a night besides the new day: mark edits and pupil records."""

    def __init__(
        self,
        marks: list[tuple[str, SessionKey, str | None]] | None = None,
        pupils: Callable[[list[Pupil]], list[Pupil]] | None = None,
        registers: list[SessionKey] | None = None,
    ) -> None:
        self.marks = marks or []
        self.pupils = pupils
        # sessions whose register changed: in the delta with no mark changed on them
        self.registers = registers or []


def _ahead(generated: GeneratedSchool) -> set[str]:
    """Pupils whose marks are in the store ahead of their dates (planned absences)."""
    pupils = sorted(generated.pupils, key=lambda p: p.id)
    social = next((p for p in pupils if p.has_social_worker), pupils[1])
    plain = [p for p in pupils if not p.has_social_worker and not p.boarder]
    return {social.id, plain[2].id, plain[11].id}


def _nights(generated: GeneratedSchool) -> dict[date, Night]:
    """Edits chosen from the school: a run of E for a pupil (ATT006), N and # in the past
    (ATT005, MRK005), a deleted mark, a Y4 on one pupil, changed and new pupil records."""
    pupils = sorted(generated.pupils, key=lambda p: p.id)
    social = next((p for p in pupils if p.has_social_worker), pupils[1])
    plain = [p for p in pupils if not p.has_social_worker and not p.boarder]
    suspended, other, dupe, joiner_base = plain[2], plain[5], plain[7], plain[9]
    days = generated.calendar
    cal = SchoolCalendar(days)
    oct_days = cal.school_days(date(2025, 10, 6), date(2025, 10, 17))
    run_days = cal.school_days(date(2025, 11, 3), date(2025, 11, 11))

    def e_run(day: date) -> list[tuple[str, SessionKey, str | None]]:
        return [(suspended.id, (day, s), "E") for s in (Session.AM, Session.PM)]

    def upn_change(ps: list[Pupil]) -> list[Pupil]:
        return [p.model_copy(update={"upn": dupe.upn}) if p.id == other.id else p for p in ps]

    def upn_back(ps: list[Pupil]) -> list[Pupil]:
        return [p.model_copy(update={"upn": other.upn}) if p.id == other.id else p for p in ps]

    def social_flag(ps: list[Pupil]) -> list[Pupil]:
        return [
            p.model_copy(update={"has_social_worker": True}) if p.id == other.id else p for p in ps
        ]

    def join(ps: list[Pupil]) -> list[Pupil]:
        new = joiner_base.model_copy(
            update={
                "id": f"{joiner_base.school_id}:joiner",
                "mis_id": "joiner",
                "starting_day": date(2025, 11, 10),
                "leaving_date": None,
                "upn": joiner_base.upn,
            }
        )
        return [*ps, new]

    def leave(ps: list[Pupil]) -> list[Pupil]:
        return [
            p.model_copy(update={"leaving_date": date(2026, 1, 9)}) if p.id == dupe.id else p
            for p in ps
        ]

    nights: dict[date, Night] = {
        date(2025, 10, 22): Night(
            [
                (social.id, (oct_days[1], Session.AM), "N"),
                (social.id, (oct_days[1], Session.PM), "O"),
                (other.id, (oct_days[3], Session.AM), "#"),
                (other.id, (oct_days[4], Session.AM), "Y4"),
            ]
        ),
        date(2025, 10, 28): Night([(social.id, (oct_days[1], Session.PM), None)]),  # half-term
        date(2025, 10, 29): Night(registers=[(oct_days[4], Session.AM), (oct_days[3], Session.AM)]),
        date(2025, 12, 16): Night(registers=[(oct_days[4], Session.AM)]),
        date(2025, 11, 1): Night(pupils=upn_change),  # a Saturday, a new month
        date(2025, 11, 5): Night(
            [
                (other.id, (oct_days[3], Session.AM), "/"),
                # entered ahead for the pupil with a social worker
                (social.id, (date(2025, 11, 10), Session.AM), "N"),
                (social.id, (date(2025, 11, 10), Session.PM), "N"),
            ]
        ),
        date(2025, 11, 6): Night(pupils=social_flag),
        date(2025, 11, 7): Night(pupils=join),
        date(2026, 1, 6): Night(pupils=leave),
    }
    joiner = f"{joiner_base.school_id}:joiner"
    for day in cal.school_days(date(2025, 11, 10), date(2025, 11, 13)):
        # the joiner never arrives (REG004), but is first marked present on the third day,
        # which is corrected to N two nights later: the walk that had ended is walked again
        code = "/" if day == date(2025, 11, 12) else "N"
        nights.setdefault(day + timedelta(days=1), Night()).marks.extend(
            (joiner, (day, s), code) for s in (Session.AM, Session.PM)
        )
    nights.setdefault(date(2025, 11, 15), Night()).marks.extend(
        (joiner, (date(2025, 11, 12), s), "N") for s in (Session.AM, Session.PM)
    )
    invalid = next((p for p in pupils if not check_upn(p.upn).valid), None)
    assert invalid is not None  # the generator injects an invalid UPN

    def upn_fixed(ps: list[Pupil]) -> list[Pupil]:
        return [
            p.model_copy(update={"upn": plain[20].upn}) if p.id == invalid.id else p for p in ps
        ]

    for night in (date(2025, 11, 10), date(2026, 1, 8)):
        # an invalid UPN corrected (UPN001's finding goes) to one a pupil has (UPN002's comes)
        nights.setdefault(night, Night()).pupils = upn_fixed
    for night in (date(2025, 11, 12), date(2026, 1, 7)):
        # the UPN shared since 1 November is corrected: the other pupil's finding goes too
        nights.setdefault(night, Night()).pupils = upn_back
    # a suspension entered ahead: E on the days to come (the pupil's marks are all visible)
    nights.setdefault(date(2025, 11, 3), Night()).marks.extend(
        mark for day in run_days for mark in e_run(day)
    )
    return nights


def night_context(
    base: ScanContext, night: date, pupils: list[Pupil], visible: Rows
) -> ScanContext:
    """The night's context: ``base`` with tonight's pupils and visible marks, and only the
    notifications made before the night."""
    return ScanContext.build(
        calendar=base.calendar,
        as_of=night,
        school_id=base.school_id,
        pupils=pupils,
        registers=base.registers,
        mark_rows=visible,
        amendments=base.amendments,
        notifications=[n for n in base.notifications if n.made_at.date() < night],
        exposes_registers=True,
        exposes_amendments=True,
        settings=base.settings,
    )


def run_night(
    code: str,
    ctx: ScanContext,
    delta: ScanDelta | None,
    state: Any,
    stored: dict[str, Finding],
) -> tuple[list[Finding], Any]:
    """The rule's findings as the scan records them, and the state it keeps (via JSON)."""
    rule = get_rule(code)
    run = _delta_run(rule, ctx, delta, state)
    current = list(run.findings)
    if run.covers is not None:
        produced = {f.fingerprint for f in current}
        current += [f for fp, f in stored.items() if fp not in produced and not run.covers(f)]
    return current, json.loads(json.dumps(run.state))


@pytest.mark.parametrize("code", CHANGED)
@pytest.mark.parametrize("period", PERIODS, ids=["half-term", "christmas"])
def test_night_by_night_equals_a_full_run(code: str, period: tuple[date, date]) -> None:
    generated = school()
    settings = RuleSettings()
    calendar = SchoolCalendar(generated.calendar)
    nights = _nights(generated)
    rows = dict(all_rows())
    pupils = list(generated.pupils)
    first, last = period
    # the changes before the period, applied at once for its first (full) scan
    for night, change in sorted(nights.items()):
        if night < first:
            for pid, key, new_code in change.marks:
                rows = edited(rows, pid, key, new_code)
            if change.pupils:
                pupils = change.pupils(pupils)
    state: Any = None
    stored: dict[str, Finding] = {}
    seen_rows: Rows = {}
    ahead = _ahead(generated)
    previous: date | None = None
    seen = {"findings": 0, "partial": 0}
    night = first
    while night <= last:
        change = nights.get(night, Night())
        before = {p.id: p for p in pupils}
        changed_marks: dict[str, SessionKey] = {}
        sessions: set[SessionKey] = set()
        if previous is not None:
            for pid, key, new_code in change.marks:
                rows = edited(rows, pid, key, new_code)
            if change.pupils:
                pupils = change.pupils(pupils)
        after = {p.id: p for p in pupils}
        changed_pupils = frozenset(
            pid for pid in before.keys() | after.keys() if before.get(pid) != after.get(pid)
        )
        data_end = night - timedelta(days=1)
        # marks up to the last day of data, and the few pupils' planned ahead (any date)
        visible = {**upto(rows, data_end), **{p: rows[p] for p in ahead if p in rows}}
        base = context(generated, night, settings, mark_rows=visible)

        ctx = night_context(base, night, pupils, visible)
        delta = None
        if previous is not None:
            # what the store's changed_at would show: marks added, changed or deleted
            for pid in visible.keys() | seen_rows.keys():
                diff = set(visible.get(pid, ())) ^ set(seen_rows.get(pid, ()))
                if diff:
                    key = min((m.date, m.session) for m in diff)
                    changed_marks[pid] = min(changed_marks.get(pid, key), key)
                    sessions.update((m.date, m.session) for m in diff)
            sessions |= school_sessions(calendar, previous, data_end)
            sessions.update(change.registers)
            delta = ScanDelta(
                previous_as_of=previous,
                sessions=frozenset(sessions),
                pupils=changed_pupils,
                changed_marks=changed_marks,
            )
        current, state = run_night(code, ctx, delta, state, stored)
        # a context of its own: nothing the nightly run cached reaches the full one
        full = list(get_rule(code).run(night_context(base, night, pupils, visible)).findings)
        assert dumped(current) == dumped(full), f"{code} night of {night}"
        seen["findings"] += len(full)
        seen["partial"] += delta is not None
        stored = {f.fingerprint: f for f in current if f.fingerprint}
        previous, seen_rows = night, visible
        night += timedelta(days=1)
    assert seen["findings"] > 0, code  # not vacuous
    assert seen["partial"] > 0
