"""Running a rule that keeps a per-pupil fold state (``Rule.fold``, ``validators.folding``), in
a full scan or a nightly one.

A full scan (no delta, or no stored states) folds every pupil's marks from ``initial``: the
rule's own ``check``. A nightly scan loads each pupil's stored state and folds only the marks
strictly after its ``through`` session, so the night costs the day's marks plus one step per
pupil. A pupil is refolded from ``initial`` over all their marks when there is no stored state
for them, when their record changed (a fold may depend on roll dates, date of birth,
boarding), or when one of their marks at or before ``through`` changed or was deleted since.
The findings are then judged from every pupil's state as of ``ctx.as_of``, so the run covers
all of the rule's findings and nothing is carried forward.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from registerwatch.schema import Finding
from registerwatch.validators.context import ScanContext
from registerwatch.validators.delta import RuleRun, ScanDelta
from registerwatch.validators.folding import PupilFold, pupils_for


def run_fold(
    fold: PupilFold[Any], ctx: ScanContext, delta: ScanDelta | None, stored: Any
) -> RuleRun:
    """The rule's findings from every pupil's folded state, and the states to keep (by pupil,
    dumped). ``stored``: the states the last scan kept (used only with a ``delta``)."""
    kept: Mapping[str, Any] = stored if delta is not None and isinstance(stored, dict) else {}
    states: dict[str, Any] = {}
    found: list[Finding] = []
    for pupil in pupils_for(ctx, fold, kept):
        state = _resumable(fold, pupil.id, kept.get(pupil.id), delta)
        if state is None:
            state = fold.fold(ctx, pupil, fold.initial(ctx, pupil), ctx.pupil_marks(pupil.id))
        else:
            after = ctx.pupil_marks_after(pupil.id, fold.through(state))
            state = fold.fold(ctx, pupil, state, after)
        states[pupil.id] = state
        found.extend(fold.findings(ctx, pupil, state))
    found.extend(fold.school_findings(ctx, states))
    return RuleRun(found, state={pid: fold.dump(state) for pid, state in states.items()})


def _resumable(fold: PupilFold[Any], pupil_id: str, dumped: Any, delta: ScanDelta | None) -> Any:
    """The pupil's stored state when folding on from it is exact, else None (refold)."""
    if dumped is None or delta is None or pupil_id in delta.pupils:
        return None
    state = fold.load(dumped)
    changed = delta.changed_marks.get(pupil_id)
    through = fold.through(state)
    if changed is not None and through is not None and changed <= through:
        return None
    return state
