"""The mark rules' per-pupil folds (validators/folding.py) against recorded findings.

Three promises, on the generator's schools:

- a rule's ``check`` (a fold of every pupil's whole year) gives exactly the findings the rules
  gave before they were folds (``support/recorded_findings.json.gz``): fingerprint, severity,
  message, due date, first and last session, evidence;
- folding night by night (one context per scan day, each night's marks after the state's
  ``through``, the state dumped to JSON and loaded back between nights, as the nightly scan
  keeps it) gives the same state as one fold of the whole year, and the same findings;
- a dumped state loads back equal.
"""

from __future__ import annotations

import bisect
import gzip
import json
from datetime import date, timedelta
from functools import cache
from typing import Any

import pytest
from support.generated_context import context
from support.recorded_findings import CODES, RECORDED, SCHOOLS, SETTINGS

from registerwatch.schema import Finding, Session
from registerwatch.simulator.generate import generate_school
from registerwatch.simulator.model import GeneratedSchool
from registerwatch.validators import Rule, get_rule, run_rules
from registerwatch.validators.delta import ScanDelta
from registerwatch.validators.fold_runs import FORMAT, run_fold
from registerwatch.validators.folding import PupilFold, findings_of, fold_school, pupils_for
from registerwatch.validators.lean_marks import SessionMark, rows_from_marks
from registerwatch.validators.registry import _sort_key
from registerwatch.validators.settings import RuleSettings

FOLDED = [code for code in CODES if get_rule(code).fold is not None]


@cache
def recorded() -> dict[tuple[int, str, str], list[dict[str, Any]]]:
    rows = json.loads(gzip.decompress(RECORDED.read_bytes()))
    return {(r["seed"], r["settings"], r["as_of"]): r["findings"] for r in rows}


@cache
def school(seed: int) -> GeneratedSchool:
    params = next(p for p in SCHOOLS if p["seed"] == seed)
    return generate_school(**params)


@cache
def mark_rows(seed: int) -> dict[str, tuple[SessionMark, ...]]:
    return rows_from_marks(school(seed).marks)


def dumped(findings: list[Finding]) -> list[dict[str, Any]]:
    """Findings as recorded, without the store's lifecycle fields (a scan leaves them empty)."""
    return [f.model_dump(mode="json") for f in findings]


def by_rule(rows: list[dict[str, Any]], code: str) -> list[dict[str, Any]]:
    return [row for row in rows if row["rule"] == code]


def test_every_per_pupil_mark_rule_folds() -> None:
    # MRK005 judges each session across pupils (a closure is the whole school's), not a pupil
    assert set(FOLDED) == set(CODES) - {"MRK005"}


@pytest.mark.parametrize("key", sorted(recorded()), ids=lambda k: f"seed{k[0]}-{k[1]}-{k[2]}")
def test_check_gives_the_recorded_findings(key: tuple[int, str, str]) -> None:
    seed, settings, as_of = key
    ctx = context(
        school(seed),
        date.fromisoformat(as_of),
        RuleSettings(**SETTINGS[settings]),
        mark_rows=mark_rows(seed),
    )
    actual = dumped(run_rules(ctx, [get_rule(code) for code in CODES]))
    expected = recorded()[key]
    for code in CODES:
        assert by_rule(actual, code) == by_rule(expected, code), code


def _night(
    rule: Rule, ctx: Any, states: dict[str, Any], rows: dict[str, tuple[SessionMark, ...]]
) -> dict[str, Any]:
    """One nightly scan's fold: each pupil's marks after its state's through, as the pipeline
    reads them, into the state loaded back from its JSON."""
    fold: PupilFold[Any] = rule.fold  # type: ignore[assignment]
    out: dict[str, Any] = {}
    for pupil in pupils_for(ctx, fold, states):
        data = states.get(pupil.id)
        state = fold.initial(ctx, pupil) if data is None else fold.load(json.loads(data))
        through = fold.through(state)
        marks = rows.get(pupil.id, ())
        if through is not None:
            marks = marks[bisect.bisect_right(marks, (*through, "\uffff")) :]
        state = fold.fold(ctx, pupil, state, marks)
        out[pupil.id] = json.dumps(fold.dump(state), sort_keys=True)
    return out


# "variant" changes how findings are judged, not what a state keeps: the recorded-findings test
# covers it
@pytest.mark.parametrize("settings", ["default", "triggers"])
@pytest.mark.parametrize("code", FOLDED)
def test_folding_night_by_night_equals_one_fold(code: str, settings: str) -> None:
    """Nights from the first day of term to January (half-term, the turns of the months,
    Christmas), compared with one fold of the whole year and with the recorded findings on the
    recorded scan days."""
    seed = 1
    generated, rows = school(seed), mark_rows(seed)
    rule, rule_settings = get_rule(code), RuleSettings(**SETTINGS[settings])
    fold: PupilFold[Any] = rule.fold  # type: ignore[assignment]
    states: dict[str, Any] = {}
    as_of = date(2025, 9, 2)
    end = next(p["as_of"] for p in SCHOOLS if p["seed"] == seed)
    while as_of <= end:
        ctx = context(generated, as_of, rule_settings, mark_rows=rows)
        states = _night(rule, ctx, states, rows)
        key = (seed, settings, as_of.isoformat())
        if key in recorded():
            loaded = {pid: fold.load(json.loads(data)) for pid, data in states.items()}
            nightly = dumped(sorted_findings(list(findings_of(ctx, fold, loaded))))
            assert nightly == by_rule(recorded()[key], code), as_of
            whole = fold_school(ctx, fold)
            assert {
                pid: json.dumps(fold.dump(s), sort_keys=True) for pid, s in whole.items()
            } == states, as_of
        as_of += timedelta(days=1)


def sorted_findings(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=_sort_key)


@pytest.mark.parametrize("code", FOLDED)
def test_dump_load_round_trip(code: str) -> None:
    seed = 3
    ctx = context(school(seed), date(2026, 3, 16), RuleSettings(), mark_rows=mark_rows(seed))
    fold: PupilFold[Any] = get_rule(code).fold  # type: ignore[assignment]
    states = fold_school(ctx, fold)
    assert states
    for state in states.values():
        data = json.loads(json.dumps(fold.dump(state)))
        assert fold.load(data) == state
        assert fold.dump(fold.load(data)) == data


def test_marks_of_a_pupil_without_a_record_are_judged_every_night() -> None:
    """MRK001 and MRK002 judge marks without the pupil's record (a record the sync
    quarantined): their states are kept for such pupil ids, and a nightly context that holds
    only the night's marks still finds them from the stored states."""
    seed = 1
    ghost = "oakfield:ghost"
    extra = {
        ghost: (
            SessionMark(date(2025, 10, 6), Session.AM, "N"),
            SessionMark(date(2025, 10, 7), Session.AM, "H"),  # retired in August 2024
        )
    }
    rows = {**mark_rows(seed), **extra}
    ctx = context(school(seed), date(2025, 12, 1), RuleSettings(), mark_rows=rows)
    night_ctx = context(school(seed), date(2025, 12, 1), RuleSettings(), mark_rows={})
    for code in ("MRK001", "MRK002"):
        rule = get_rule(code)
        fold: PupilFold[Any] = rule.fold  # type: ignore[assignment]
        full = [f for f in rule.check(ctx) if f.pupil_id == ghost]
        assert len(full) == 1, code
        stored = {
            pid: fold.load(json.loads(json.dumps(fold.dump(state))))
            for pid, state in fold_school(ctx, fold).items()
        }
        nightly = [f for f in findings_of(night_ctx, fold, stored) if f.pupil_id == ghost]
        assert dumped(nightly) == dumped(full), code


def _findings(findings: list[Finding]) -> list[dict[str, Any]]:
    return dumped(sorted_findings(findings))


@pytest.mark.parametrize("code", FOLDED)
def test_nightly_runs_of_sparse_states_equal_full_runs(code: str) -> None:
    """``run_fold`` night after night, its kept state through JSON as the store keeps it (a
    rule-level through, entries only for pupils whose state is not blank), gives on every
    Monday and at the end the findings and the kept state of a full run."""
    seed = 1
    generated, rows = school(seed), mark_rows(seed)
    fold: PupilFold[Any] = get_rule(code).fold  # type: ignore[assignment]
    settings = RuleSettings(**SETTINGS["triggers"])
    stored: Any = None
    previous: date | None = None
    as_of = date(2025, 9, 2)
    end = next(p["as_of"] for p in SCHOOLS if p["seed"] == seed)
    compared = 0
    while as_of <= end:
        ctx = context(generated, as_of, settings, mark_rows=rows)
        delta = None if previous is None else ScanDelta(previous, frozenset())
        run = run_fold(fold, ctx, delta, stored)
        stored = json.loads(json.dumps(run.state))
        assert stored["v"] == FORMAT
        if as_of.weekday() == 0 or as_of == end:
            full = run_fold(fold, ctx, None, None)
            assert _findings(run.findings) == _findings(full.findings), as_of
            assert stored == json.loads(json.dumps(full.state)), as_of
            compared += 1
        previous, as_of = as_of, as_of + timedelta(days=1)
    assert compared > 10


@pytest.mark.parametrize("code", ["MRK001", "ATT002", "LAR002"])
def test_a_changed_mark_refolds_and_an_older_format_runs_in_full(code: str) -> None:
    seed = 1
    generated, rows = school(seed), mark_rows(seed)
    fold: PupilFold[Any] = get_rule(code).fold  # type: ignore[assignment]
    before_ctx = context(generated, date(2025, 11, 3), RuleSettings(), mark_rows=rows)
    stored = json.loads(json.dumps(run_fold(fold, before_ctx, None, None).state))
    # one pupil's early mark becomes N (MRK001), O (an absence for the others)
    pid = sorted(rows)[0]
    first = rows[pid][0]
    changed = {**rows, pid: (SessionMark(first.date, first.session, "N"), *rows[pid][1:])}
    ctx = context(generated, date(2025, 11, 4), RuleSettings(), mark_rows=changed)
    delta = ScanDelta(
        date(2025, 11, 3), frozenset(), changed_marks={pid: (first.date, first.session)}
    )
    full = run_fold(fold, ctx, None, None)
    nightly = run_fold(fold, ctx, delta, stored)
    assert _findings(nightly.findings) == _findings(full.findings)
    assert nightly.state == full.state
    assert nightly.state["pupils"][pid] != stored["pupils"].get(pid), "refolded"
    # a per-pupil state of the format before the sparse one: a full run, not a misread
    older = {p: ([None, *d[1:]] if d[0] is None else d) for p, d in stored["pupils"].items()}
    again = run_fold(fold, ctx, delta, older)
    assert _findings(again.findings) == _findings(full.findings)
    assert again.state == full.state
