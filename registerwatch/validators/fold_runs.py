"""Running a rule that keeps a per-pupil fold state (``Rule.fold``, ``validators.folding``), in
a full scan or a nightly one.

A full scan (no delta, or no stored states of this format) folds every pupil's marks from
``initial``, as the rule's own ``check`` does. A nightly scan folds on from the stored states
the marks strictly after their ``through``, so the night costs the day's marks, and for most
rules only the few pupils the night can change. A pupil is refolded from ``initial`` over all
their marks when their record changed (a fold may depend on roll dates, date of birth,
boarding) or appeared, or when one of their marks at or before their through changed or was
deleted since. Findings are then judged from the states as of ``ctx.as_of``, so the run covers
all of the rule's findings and nothing is carried forward.

What is kept (``RuleRun.state``) is sparse, since a night changes few pupils' states:
``{"v": FORMAT, "through": <the rule's through>, "pupils": {pupil id: dumped state}}``.

- A pupil with no entry has a *blank* state (``PupilFold.blank``: ``initial`` folded to the
  rule's through, e.g. no N mark for MRK001): a night's marks that the fold cannot keep
  (``PupilFold.night_pupils``) leave them blank, with no load, fold or dump.
- An entry whose through is the rule's holds it as null (the dump's first item), so an entry
  the night does not change is kept as it was, without a dump.
- Any other format (an older one, a missing row) gives a full run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from registerwatch.schema import Finding, Pupil
from registerwatch.validators.context import ScanContext, SessionKey
from registerwatch.validators.delta import RuleRun, ScanDelta
from registerwatch.validators.folding import (
    PupilFold,
    advance,
    night_marks,
    pupils_for,
    session_key_from,
    session_key_text,
)
from registerwatch.validators.lean_marks import SessionMark

#: the kept state's format: a stored state of another one gives a full run
FORMAT = 2


def run_fold(
    fold: PupilFold[Any], ctx: ScanContext, delta: ScanDelta | None, stored: Any
) -> RuleRun:
    """The rule's findings from every pupil's folded state, and the states to keep (see the
    module doc). ``stored``: what the last scan kept (used only with a ``delta``)."""
    if (
        delta is not None
        and isinstance(stored, dict)
        and stored.get("v") == FORMAT
        and isinstance(stored.get("pupils"), dict)
    ):
        return _nightly(fold, ctx, delta, stored)
    return _full(fold, ctx)


def _full(fold: PupilFold[Any], ctx: ScanContext) -> RuleRun:
    through = advance(None, ctx)
    text = session_key_text(through)
    states: dict[str, Any] = {}
    kept: dict[str, Any] = {}
    found: list[Finding] = []
    for pupil in pupils_for(ctx, fold):
        state = fold.fold(ctx, pupil, fold.initial(ctx, pupil), ctx.pupil_marks(pupil.id))
        states[pupil.id] = state
        found.extend(fold.findings(ctx, pupil, state))
        if not (fold.blank(state) and fold.through(state) == through):
            kept[pupil.id] = _relative(fold.dump(state), text)
    found.extend(fold.school_findings(ctx, states))
    return RuleRun(found, state={"v": FORMAT, "through": text, "pupils": kept})


def _nightly(
    fold: PupilFold[Any], ctx: ScanContext, delta: ScanDelta, stored: dict[str, Any]
) -> RuleRun:
    share = fold.share_key
    hit = None if share is None else ctx._cache.get(f"fold-share:{share}")
    if hit is not None and hit[0] is delta and hit[1] == stored:
        # another rule's fold of equal states tonight (ATT002 and ATT003): judged only
        text, pupils, states, kept = hit[2]
    else:
        text, pupils, states, kept = _fold_night(fold, ctx, delta, stored)
        if share is not None:
            ctx._cache[f"fold-share:{share}"] = (delta, stored, (text, pupils, states, kept))
    to_keep = {"v": FORMAT, "through": text, "pupils": kept}
    school = fold.school_findings_dumped(ctx, kept)
    if school is not None:
        return RuleRun(list(school), state=to_keep)
    found: list[Finding] = []
    judged = set(fold.blank_judged(ctx))
    loaded: dict[str, Any] = {}
    # bound once: asked for every pupil of every folding rule
    entry_of, quiet = kept.get, fold.quiet
    for pupil in pupils:
        pid = pupil.id
        data = entry_of(pid)
        if data is None:
            if pid in judged:
                found.extend(fold.findings(ctx, pupil, fold.initial(ctx, pupil)))
            continue
        if quiet(ctx, pupil, data):
            continue
        state = states.get(pid)
        if state is None:
            state = fold.load([text, *data[1:]] if data[0] is None else data)
        loaded[pid] = state
        found.extend(fold.findings(ctx, pupil, state))
    found.extend(fold.school_findings(ctx, loaded))
    return RuleRun(found, state=to_keep)


def _fold_night(
    fold: PupilFold[Any], ctx: ScanContext, delta: ScanDelta, stored: dict[str, Any]
) -> tuple[str | None, list[Pupil], dict[str, Any], dict[str, Any]]:
    """The night folded into the stored states: the rule's new through, the pupils, the
    states folded by loading them (by pupil) and the entries to keep."""
    entries: Mapping[str, Any] = stored["pupils"]
    before_text: str | None = stored.get("through")
    before = session_key_from(before_text)
    after = advance(before, ctx)
    text = session_key_text(after)
    changed_pupils, changed_marks = delta.pupils, delta.changed_marks
    night = night_marks(ctx, before, changed_marks)
    to_fold = fold.night_pupils(ctx, night)
    early = _changed_before(ctx, changed_marks, before)
    pupils = _candidates(ctx, fold, entries, changed_marks)
    # a pupil at the rule's through is refolded when their record changed or a mark at or
    # before it did (``early``): one set, asked once per pupil
    refold = changed_pupils | early
    night_of = night.by_pupil.get
    states: dict[str, Any] = {}
    kept: dict[str, Any] = {}
    marks: Sequence[SessionMark] | None
    for pupil in pupils:
        pid = pupil.id
        data = entries.get(pid)
        own = None if data is None else data[0]
        if own is None:
            if pid in refold:
                marks = None
            elif to_fold is not None and pid not in to_fold:
                # nothing of the night's marks for this fold: the state is as it was, at the
                # rule's new through (a blank one, most pupils of most rules, stays unstored)
                if data is not None:
                    kept[pid] = data
                continue
            else:
                marks = night_of(pid, ())
        else:
            through = session_key_from(own)
            changed = changed_marks.get(pid)
            if pid in changed_pupils or (
                changed is not None and (through is None or changed <= through)
            ):
                marks = None
            else:
                marks = ctx.pupil_marks_after(pid, through)
        if marks is None:  # refolded from initial over all their marks
            state = fold.fold(ctx, pupil, fold.initial(ctx, pupil), ctx.pupil_marks(pid))
        elif data is not None:
            folded = fold.fold_dumped(ctx, pupil, data, marks)
            if folded is not None:
                kept[pid] = _relative(folded, text)
                continue
            loaded = fold.load([before_text, *data[1:]] if own is None else data)
            state = fold.fold(ctx, pupil, loaded, marks)
        else:
            state = fold.fold(ctx, pupil, fold.initial(ctx, pupil), marks)
        if fold.blank(state) and fold.through(state) == after:
            continue
        states[pid] = state
        kept[pid] = _relative(fold.dump(state), text)
    return text, pupils, states, kept


def _candidates(
    ctx: ScanContext,
    fold: PupilFold[Any],
    entries: Mapping[str, Any],
    changed_marks: Mapping[str, SessionKey],
) -> list[Pupil]:
    """``pupils_for`` without the year's marks: a pupil id with marks but no record (for a
    fold that does not need one) is in the stored entries, or has a mark changed since (every
    new mark is), or is blank."""
    pupils = list(ctx.pupils)
    if not fold.needs_record:
        known = set(ctx.pupils_by_id)
        for pid in (*entries, *changed_marks):
            if pid not in known:
                known.add(pid)
                pupils.append(Pupil(id=pid, school_id=ctx.school_id, mis_id=pid))
    return pupils


def _changed_before(
    ctx: ScanContext, changed_marks: Mapping[str, SessionKey], before: SessionKey | None
) -> frozenset[str]:
    """Pupils with a mark changed at or before ``before`` (cached: the same for every rule)."""
    cache: dict[SessionKey | None, tuple[Any, frozenset[str]]]
    cache = ctx._cache.setdefault("changed_before", {})
    hit = cache.get(before)
    if hit is not None and hit[0] is changed_marks:
        return hit[1]
    found = frozenset(pid for pid, key in changed_marks.items() if before is None or key <= before)
    cache[before] = (changed_marks, found)
    return found


def _relative(data: Any, through_text: str | None) -> Any:
    """The dumped state with its through null when it is the rule's."""
    if data[0] == through_text:
        data[0] = None
    return data
