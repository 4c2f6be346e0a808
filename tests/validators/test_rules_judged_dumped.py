"""Nightly paths that judge without loading each pupil's state, against full runs:

- MRK006 judges its kept mark tokens as text (``PupilFold.school_findings_dumped``), in each
  of the rule's cases: late marks with minutes (L after the close, U within it), L marks
  without minutes beside others with minutes, and a school that records no minutes (one
  notice);
- LAR002 and LAR003 fold a usual night into the dumped state, and refold a night over an
  unexpected closure;
- ATT002 and ATT003 share one fold of the night (``share_key``) and each pupil's absence
  totals (summed once per stored counts), with their different thresholds.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from functools import cache
from typing import Any

import pytest
from support.generated_context import context

from registerwatch.schema import Closure, ClosureKind, Finding, Severity
from registerwatch.simulator.generate import generate_school
from registerwatch.simulator.model import GeneratedSchool
from registerwatch.validators import get_rule
from registerwatch.validators.delta import ScanDelta
from registerwatch.validators.fold_runs import run_fold
from registerwatch.validators.folding import PupilFold
from registerwatch.validators.lean_marks import SessionMark, rows_from_marks
from registerwatch.validators.registry import _sort_key
from registerwatch.validators.settings import RuleSettings

Rows = dict[str, tuple[SessionMark, ...]]
LATE = ("L", "U")


@cache
def school() -> GeneratedSchool:
    return generate_school(1, 150, as_of=date(2026, 1, 16))


def as_generated(rows: Rows) -> Rows:
    return rows


def some_l_without_minutes(rows: Rows) -> Rows:
    """Every other pupil's L marks lose their minutes."""
    return {
        pid: tuple(m._replace(minutes_late=None) if m.code == "L" and n % 2 else m for m in marks)
        for n, (pid, marks) in enumerate(sorted(rows.items()))
    }


def no_minutes(rows: Rows) -> Rows:
    return {
        pid: tuple(m._replace(minutes_late=None) if m.code in LATE else m for m in marks)
        for pid, marks in rows.items()
    }


def _findings(findings: list[Finding]) -> list[dict[str, Any]]:
    return [f.model_dump(mode="json") for f in sorted(findings, key=_sort_key)]


@pytest.mark.parametrize("close_minutes", [None, 20])
@pytest.mark.parametrize(
    ("rows_of", "expected"),
    [
        (as_generated, {Severity.ERROR}),
        (some_l_without_minutes, {Severity.ERROR, Severity.WARNING}),
        (no_minutes, {Severity.INFO}),
    ],
    ids=["minutes", "some-without", "none-recorded"],
)
def test_mrk006_nightly_judged_on_dumped_states_equals_a_full_run(
    rows_of: Callable[[Rows], Rows], expected: set[Severity], close_minutes: int | None
) -> None:
    generated = school()
    rows = rows_of(rows_from_marks(generated.marks))
    settings = RuleSettings(register_close_minutes=close_minutes)
    fold: PupilFold[Any] = get_rule("MRK006").fold  # type: ignore[assignment]
    before = date(2026, 1, 12)
    stored = run_fold(fold, context(generated, before, settings, mark_rows=rows), None, None)
    ctx = context(generated, date(2026, 1, 13), settings, mark_rows=rows)
    nightly = run_fold(
        fold, ctx, ScanDelta(before, frozenset()), json.loads(json.dumps(stored.state))
    )
    full = run_fold(fold, ctx, None, None)
    assert _findings(nightly.findings) == _findings(full.findings)
    assert nightly.state == json.loads(json.dumps(full.state))
    assert set(Counter(f.severity for f in nightly.findings)) == expected


@pytest.mark.parametrize("threshold", ["0.1", "0.2"])
def test_att002_and_att003_sharing_a_night_equal_full_runs(threshold: str) -> None:
    generated = school()
    rows = rows_from_marks(generated.marks)
    settings = RuleSettings(persistent_absence=threshold, absence_min_possible_sessions=20)
    rules = [get_rule("ATT002"), get_rule("ATT003")]
    before = date(2026, 1, 12)
    before_ctx = context(generated, before, settings, mark_rows=rows)
    ctx = context(generated, date(2026, 1, 13), settings, mark_rows=rows)
    delta = ScanDelta(before, frozenset())
    found: dict[str, list[dict[str, Any]]] = {}
    for rule in rules:  # one context, as a scan runs them: the second reuses the first's fold
        fold: PupilFold[Any] = rule.fold  # type: ignore[assignment]
        stored = json.loads(json.dumps(run_fold(fold, before_ctx, None, None).state))
        nightly = run_fold(fold, ctx, delta, stored)
        full = run_fold(
            fold, context(generated, date(2026, 1, 13), settings, mark_rows=rows), None, None
        )
        assert _findings(nightly.findings) == _findings(full.findings), rule.code
        found[rule.code] = _findings(nightly.findings)
    assert found["ATT002"] and found["ATT003"]
    assert len(found["ATT002"]) > len(found["ATT003"])


@pytest.mark.parametrize("code", ["LAR002", "LAR003"])
@pytest.mark.parametrize("mark_code", ["/", "Y4"])
def test_absence_runs_night_over_an_unexpected_closure_equals_a_full_run(
    code: str, mark_code: str
) -> None:
    """A night whose day the whole school closed unexpectedly (its marks Y4, or left as the
    MIS had them) is not a usual night for the runs' fold: refolded, as a full run walks it."""
    generated = school()
    closed = date(2026, 1, 13)
    calendar = generated.calendar.model_copy(
        update={
            "closures": [
                *generated.calendar.closures,
                Closure(date=closed, kind=ClosureKind.UNEXPECTED),
            ]
        }
    )
    closed_school = replace(generated, calendar=calendar)
    rows = {
        pid: tuple(m._replace(code=mark_code) if m.date == closed else m for m in marks)
        for pid, marks in rows_from_marks(generated.marks).items()
    }
    fold: PupilFold[Any] = get_rule(code).fold  # type: ignore[assignment]
    stored = run_fold(fold, context(closed_school, closed, mark_rows=rows), None, None)
    ctx = context(closed_school, date(2026, 1, 14), mark_rows=rows)
    nightly = run_fold(
        fold, ctx, ScanDelta(closed, frozenset()), json.loads(json.dumps(stored.state))
    )
    full = run_fold(fold, ctx, None, None)
    assert _findings(nightly.findings) == _findings(full.findings)
    assert nightly.state == json.loads(json.dumps(full.state))
    assert nightly.state != json.loads(json.dumps(stored.state))
