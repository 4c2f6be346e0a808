"""Compliance rules: one module per rule, grouped by family, run over a ScanContext.

Public API::

    from registerwatch.validators import ScanContext, RuleSettings, run_rules, all_rules

    ctx = ScanContext.build(calendar=calendar, as_of=date(2025, 12, 1), pupils=..., marks=...)
    findings = run_rules(ctx)
"""

from registerwatch.validators.base import (
    DOC_SECTIONS,
    Rule,
    RuleDocs,
    RuleStatus,
    fingerprint,
    session_ref,
    session_text,
)
from registerwatch.validators.context import (
    DayMarks,
    ObservedChange,
    ScanContext,
    observed_changes_from_ledger,
)
from registerwatch.validators.registry import (
    FAMILIES,
    RuleFailedError,
    ScanOutcome,
    all_rules,
    get_rule,
    rule_classes,
    run_rules,
    scan_rules,
)
from registerwatch.validators.settings import DEFAULT_SETTINGS, RuleSettings

__all__ = [
    "DEFAULT_SETTINGS",
    "DOC_SECTIONS",
    "FAMILIES",
    "DayMarks",
    "ObservedChange",
    "Rule",
    "RuleDocs",
    "RuleFailedError",
    "RuleSettings",
    "RuleStatus",
    "ScanContext",
    "ScanOutcome",
    "all_rules",
    "fingerprint",
    "get_rule",
    "observed_changes_from_ledger",
    "rule_classes",
    "run_rules",
    "scan_rules",
    "session_ref",
    "session_text",
]
