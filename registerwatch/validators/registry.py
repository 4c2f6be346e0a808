"""The rule registry and the runner.

``all_rules()`` collects each family's explicit ``get_rules()`` list (sqlfluff's way: no import
magic, a rule that is not listed does not run). ``run_rules`` runs them over one context.

A rule that raises is a bug, never a finding about the school. Reporting it as a finding would be
wrong twice over: it would read as a compliance breach, and the rule's real findings would be
missing from the scan, so the findings store would mark every open finding of that rule resolved.
So a failure is logged (``scan.rule_failed``) and then:

- ``run_rules`` re-raises it as :class:`RuleFailedError` (the default for tests, the CLI's
  ``rules`` commands and anything that wants all-or-nothing);
- ``scan_rules`` carries on with the other rules and returns the failed codes in
  :class:`ScanOutcome`, so the scan command can record the other rules' findings while keeping the
  failed rules' open findings open (and exit non-zero).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from importlib import import_module
from typing import Any

from registerwatch.errors import RegisterwatchError
from registerwatch.gcpause import collector_paused
from registerwatch.logging import get_logger
from registerwatch.schema import SESSION_ORDER, Finding
from registerwatch.validators.base import Rule, RuleStatus
from registerwatch.validators.context import ScanContext
from registerwatch.validators.delta import RuleRun, ScanDelta
from registerwatch.validators.fold_runs import run_fold

log = get_logger(__name__)

FAMILIES = ("registers", "marks", "amendments", "returns", "attendance", "upn")


class RuleFailedError(RegisterwatchError):
    """A rule raised while checking a school: a bug in the rule, not a problem with the data.
    Report it with the rule code; the other rules' findings are unaffected."""

    def __init__(self, rule: str, school_id: str, cause: BaseException) -> None:
        self.rule = rule
        self.school_id = school_id
        self.cause = cause
        super().__init__(
            f"rule {rule} failed on school {school_id!r}: "
            f"{type(cause).__name__}: {cause} (a bug in the rule; please report it)"
        )


def rule_classes(include_removed: bool = False) -> list[type[Rule]]:
    classes: list[type[Rule]] = []
    for family in FAMILIES:
        module = import_module(f"registerwatch.validators.{family}")
        classes.extend(module.get_rules())
    if not include_removed:
        classes = [c for c in classes if c.status is not RuleStatus.REMOVED]
    return classes


def all_rules(include_removed: bool = False) -> list[Rule]:
    """One instance of every registered rule, in family order (removed rules left out)."""
    return [cls() for cls in rule_classes(include_removed)]


def get_rule(code_or_name: str) -> Rule:
    """The rule with this code (MRK001) or name (unresolved-n-code)."""
    for rule in all_rules(include_removed=True):
        if code_or_name in (rule.code, rule.name):
            return rule
    raise KeyError(code_or_name)


def _sort_key(finding: Finding) -> tuple[str, str, str, int, str]:
    first = finding.first_session
    return (
        finding.rule,
        finding.pupil_id or "",
        first.date.isoformat() if first else "",
        SESSION_ORDER[first.session] if first else -1,
        finding.fingerprint or "",
    )


@dataclass
class ScanOutcome:
    """Findings of the rules that ran, the rules that failed (code -> error), and each rule's
    run (what it keeps for the next scan, which findings it covers: ``validators.delta``)."""

    findings: list[Finding] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    runs: dict[str, RuleRun] = field(default_factory=dict)


def _run_one(rule: Rule, ctx: ScanContext) -> list[Finding]:
    return _checked_run(rule, ctx, lambda: RuleRun(list(rule.check(ctx)))).findings


def _delta_run(rule: Rule, ctx: ScanContext, delta: ScanDelta | None, state: Any) -> RuleRun:
    """The rule's run from the delta and its stored state when it can, else a full one."""
    fold = rule.fold  # validators.folding: a per-pupil state
    if fold is not None:
        return run_fold(fold, ctx, delta, state)
    if delta is not None and state is not None:
        run = rule.run_delta(ctx, delta, state)
        if run is not None:
            return run
    return rule.run(ctx)


def _checked_run(rule: Rule, ctx: ScanContext, make: Callable[[], RuleRun]) -> RuleRun:
    started = time.perf_counter()
    run = make()
    findings = run.findings
    fingerprints = [f.fingerprint for f in findings]
    if len(set(fingerprints)) != len(fingerprints):
        # two findings with one fingerprint would merge in the findings store
        raise ValueError(f"rule {rule.code} produced duplicate fingerprints")
    log.debug(
        "scan.rule_checked",
        rule=rule.code,
        school_id=ctx.school_id,
        findings=len(findings),
        ms=round((time.perf_counter() - started) * 1000, 1),
        partial=run.covers is not None,
    )
    return run


def scan_rules(
    ctx: ScanContext,
    rules: Iterable[Rule] | None = None,
    *,
    delta: ScanDelta | None = None,
    states: Mapping[str, Any] | None = None,
) -> ScanOutcome:
    """Run every rule (default: all registered) and collect failures instead of raising.

    With a ``delta`` (a nightly scan), a rule whose stored state is in ``states`` (by code)
    re-judges only what changed (``Rule.run_delta``); every other rule runs in full."""
    outcome = ScanOutcome()
    with collector_paused():
        for rule in all_rules() if rules is None else rules:
            state = (states or {}).get(rule.code)
            try:
                run = _checked_run(rule, ctx, partial(_delta_run, rule, ctx, delta, state))
                outcome.runs[rule.code] = run
                outcome.findings.extend(run.findings)
            except Exception as exc:
                log.error(
                    "scan.rule_failed",
                    rule=rule.code,
                    school_id=ctx.school_id,
                    error_type=type(exc).__name__,
                    error=str(exc),
                )
                outcome.failed[rule.code] = f"{type(exc).__name__}: {exc}"
    outcome.findings.sort(key=_sort_key)
    return outcome


def run_rules(ctx: ScanContext, rules: Sequence[Rule] | None = None) -> list[Finding]:
    """Every finding of ``rules`` (default: all registered), sorted by rule, pupil and session.

    Raises RuleFailedError (after logging ``scan.rule_failed``) if a rule raises.
    """
    findings: list[Finding] = []
    with collector_paused():
        for rule in all_rules() if rules is None else rules:
            try:
                findings.extend(_run_one(rule, ctx))
            except Exception as exc:
                log.error(
                    "scan.rule_failed",
                    rule=rule.code,
                    school_id=ctx.school_id,
                    error_type=type(exc).__name__,
                    error=str(exc),
                )
                raise RuleFailedError(rule.code, ctx.school_id, exc) from exc
    findings.sort(key=_sort_key)
    return findings
