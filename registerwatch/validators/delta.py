"""What changed since a school's last scan, as the rules see it: the nightly scan's delta.

After a school day every pupil on roll has a new mark, so a nightly scan is cheap only if each
rule re-judges what the day changed and carries forward what it found before. The scan
(``scan.incremental``) builds a :class:`ScanDelta` from the store; a rule that can use it
implements ``Rule.run_delta`` and returns a :class:`RuleRun` whose ``covers`` says which of its
findings the re-evaluation stands for. The scan keeps the rule's stored open findings outside
that scope as they are. A rule without a delta path, or any doubt (no delta: a first scan, a
change of basis or capabilities, a backdated scan, a long gap), runs in full with ``check``.

A carried finding must be exactly what a full scan would give: its severity and message must
not depend on ``as_of``, or the rule must cover it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from registerwatch.schema import Finding, Session, SessionRef
from registerwatch.validators.context import ScanContext, SessionKey
from registerwatch.validators.lean_marks import MarkInterner, SessionMark, mark_token


@dataclass(frozen=True)
class ScanDelta:
    """What changed since the last scan that kept rule states.

    ``previous_as_of``: that scan's context ``as_of`` (the rules judged the days before it).
    ``sessions``: the sessions whose judgement may differ: newly judged days, sessions with a
    mark or register changed since, and days on which a changed pupil record alters a group's
    roll. ``localised``: every change found its sessions (False when a pupil's group, year or
    boarding changed, or a pupil came or went without roll dates: the register rules then run
    in full). ``pupils``: pupils whose record changed, appeared or went. ``changed_marks``: per
    pupil, the earliest session with a mark changed (content or deletion) since.
    """

    previous_as_of: date
    sessions: frozenset[SessionKey]
    localised: bool = True
    pupils: frozenset[str] = frozenset()
    changed_marks: Mapping[str, SessionKey] = field(default_factory=dict)

    def covers(self, ref: SessionRef | None) -> bool:
        """Whether the session is one the delta re-judges."""
        return ref is not None and (ref.date, ref.session) in self.sessions


@dataclass
class RuleRun:
    """One rule's findings from one scan, what it keeps for the next, and what it covers.

    ``state``: JSON-safe, handed back to ``run_delta`` next time (None: the rule keeps no state
    and has no delta path). ``covers``: which of the rule's findings this run stands for (None:
    all of them, a full run); stored open findings it does not cover are carried forward.
    """

    findings: list[Finding]
    state: Any = None
    covers: Callable[[Finding], bool] | None = None


# -- what a rule without a fold reads in a nightly scan ----------------------------------------


def session_before(key: SessionKey) -> SessionKey:
    """The last possible session before ``key``: marks strictly after it start at ``key``."""
    day, session = key
    if session is Session.PM:
        return day, Session.AM
    return day - timedelta(days=1), Session.PM


def night_key(ctx: ScanContext) -> SessionKey:
    """The last session of the last day of data: what a nightly state is judged through."""
    return ctx.data_end, Session.PM


def marks_after(ctx: ScanContext, after: SessionKey) -> dict[str, Sequence[SessionMark]]:
    """Every pupil's marks strictly after ``after`` (pupils with none left out), read once per
    context and shared by the rules: a nightly scan's new day, never a pupil's whole year."""
    cache: dict[SessionKey, dict[str, Sequence[SessionMark]]]
    cache = ctx._cache.setdefault("delta_marks_after", {})
    found = cache.get(after)
    if found is None:
        found = {}
        # the pupil ids only: the rows as the store gave them, so no pupil's year is decoded
        # here (``pupil_marks_after`` serves the marks)
        pupil_ids = ctx.mark_rows if ctx.mark_rows is not None else ctx.marks_by_pupil
        for pupil_id in pupil_ids:
            marks = ctx.pupil_marks_after(pupil_id, after)
            if marks:
                found[pupil_id] = marks
        cache[after] = found
    return found


def marks_after_by_code(
    ctx: ScanContext, after: SessionKey
) -> dict[str, list[tuple[str, SessionMark]]]:
    """``marks_after`` filed by code, (pupil, mark) in pupil then session order (cached): a rule
    about a few codes looks only at those."""
    cache: dict[SessionKey, dict[str, list[tuple[str, SessionMark]]]]
    cache = ctx._cache.setdefault("delta_marks_after_by_code", {})
    found = cache.get(after)
    if found is None:
        found = {}
        for pupil_id, marks in marks_after(ctx, after).items():
            for mark in marks:
                entry = found.get(mark.code)
                if entry is None:
                    found[mark.code] = [(pupil_id, mark)]
                else:
                    entry.append((pupil_id, mark))
        cache[after] = found
    return found


@dataclass
class KeptMarks:
    """Some pupils' marks of a few codes up to ``through`` (the last day of data when kept),
    so a rule judges those pupils from them instead of their whole year."""

    through: SessionKey
    marks: dict[str, list[SessionMark]]

    def dump(self) -> dict[str, Any]:
        return {
            "through": f"{self.through[0].isoformat()}{self.through[1].value}",
            "marks": {
                pid: [mark_token(m.date, m.session.value, m.code, m.minutes_late) for m in marks]
                for pid, marks in sorted(self.marks.items())
                if marks
            },
        }

    @classmethod
    def load(cls, data: Any) -> KeptMarks | None:
        """A dumped state, or None when it is not one (a state of another shape: run in full)."""
        if not isinstance(data, dict) or not isinstance(data.get("through"), str):
            return None
        text: str = data["through"]
        marks = data.get("marks")
        if not isinstance(marks, dict):
            return None
        return cls(
            through=(date.fromisoformat(text[:10]), Session(text[10:])),
            marks={pid: [_INTERNER[t] for t in tokens] for pid, tokens in marks.items()},
        )


_INTERNER = MarkInterner()


def keep_marks(
    ctx: ScanContext, pupil_ids: Iterable[str], codes: frozenset[str]
) -> dict[str, list[SessionMark]]:
    """The pupils' marks with ``codes`` up to the last day of data, from their whole year (a
    full run, or a pupil whose past changed)."""
    end = night_key(ctx)
    kept: dict[str, list[SessionMark]] = {}
    for pupil_id in pupil_ids:
        if not ctx.code_count(pupil_id, codes):
            continue  # most pupils: counted in C, or from the context's grouping by code
        marks = [m for m in ctx.marks_with_codes(pupil_id, codes) if m[:2] <= end]
        if marks:
            kept[pupil_id] = marks
    return kept


def kept_marks(
    ctx: ScanContext,
    delta: ScanDelta | None,
    state: Any,
    codes: frozenset[str],
    wanted: Callable[[str], bool],
) -> KeptMarks:
    """The marks with ``codes`` of the pupils ``wanted`` keeps (a pupil id: it must depend on
    the pupil's record only), up to the last day of data: carried on from the last scan's
    ``state`` by the marks after its ``through`` when there is a delta, else read in full.

    A pupil whose record changed, or with a mark changed at or before ``through``, is read
    again from their whole year (a handful a night)."""
    kept = KeptMarks.load(state) if delta is not None else None
    end = night_key(ctx)
    if kept is None or kept.through > end:
        ids = [pid for pid in ctx.marks_by_pupil if wanted(pid)]
        return KeptMarks(end, keep_marks(ctx, ids, codes))
    through = kept.through
    assert delta is not None
    again = {pid for pid, key in delta.changed_marks.items() if key <= through} | delta.pupils
    marks = {pid: found for pid, found in kept.marks.items() if pid not in again}
    marks.update(keep_marks(ctx, [pid for pid in again if wanted(pid)], codes))
    by_code = marks_after_by_code(ctx, through)
    added: set[str] = set()
    for code in codes:
        for pupil_id, mark in by_code.get(code, ()):
            if mark[:2] <= end and pupil_id not in again and wanted(pupil_id):
                marks.setdefault(pupil_id, []).append(mark)
                added.add(pupil_id)
    for pupil_id in added:
        marks[pupil_id].sort()
    return KeptMarks(end, marks)


def year_pupils_changed(ctx: ScanContext, delta: ScanDelta, state: Any) -> set[str] | None:
    """For a rule over ``ctx.pupils_this_year`` judged from the records alone: the pupils to
    judge again (records changed, or come on roll since the last scan's ``as_of``), or None
    when the school year turned since (``state``: the ``year_state`` it kept): run in full."""
    if state != year_state(ctx):
        return None
    cache: dict[date, frozenset[str]] = ctx._cache.setdefault("delta_arrived", {})
    arrived = cache.get(delta.previous_as_of)
    if arrived is None:  # one pass over the pupils, shared by the rules that ask
        after, upto = delta.previous_as_of, ctx.as_of
        arrived = cache[after] = frozenset(
            p.id for p in ctx.pupils if (s := p.starting_day) is not None and after < s <= upto
        )
    return set(delta.pupils) | arrived


def year_state(ctx: ScanContext) -> dict[str, str]:
    """The state of a rule over ``ctx.pupils_this_year``: the school year it judged."""
    return {"school_year": ctx.school_year[0].isoformat()}
