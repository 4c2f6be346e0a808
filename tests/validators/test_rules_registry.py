"""The rule registry: the catalogue of DESIGN §6, naming, files, fixtures and docs of every rule."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

import registerwatch.validators as validators
from registerwatch.schema import Severity
from registerwatch.validators import DOC_SECTIONS, FAMILIES, Rule, RuleStatus, all_rules
from registerwatch.validators.settings import RuleSettings

FIXTURES = Path(__file__).parent / "fixtures"
PACKAGE = Path(validators.__file__).parent

# DESIGN §6: codes are stable and never reused.
CATALOGUE = {
    "REG001": "register-not-taken",
    "REG002": "register-not-saved",
    "REG003": "register-closed-late",
    "MRK001": "unresolved-n-code",
    "MRK002": "invalid-code-for-date",
    "MRK003": "x-code-for-compulsory-age",
    "MRK004": "mark-outside-roll",
    "MRK005": "closure-code-mismatch",
    "AMD001": "incomplete-amendment-record",
    "AMD002": "unrecorded-register-change",
    "AMD003": "register-entry-deleted",
    "LAR001": "sickness-return-due",
    "LAR002": "continuous-absence-return-due",
    "LAR003": "children-missing-education-referral-due",
    "LAR004": "new-pupil-return-overdue",
    "LAR005": "deletion-return-missing",
    "ATT001": "penalty-notice-threshold",
    "ATT002": "persistent-absence",
    "ATT003": "severe-absence",
    "ATT004": "ehcp-attendance-falling",
    "ATT005": "social-worker-unexplained-absence",
    "UPN001": "invalid-upn",
    "UPN002": "duplicate-upn",
    # issue 9 additions
    "MRK006": "late-after-register-close",
    "MRK007": "present-code-wrong-session",
    "MRK008": "reduced-timetable-code",
    "ATT006": "suspension-without-provision",
    "ATT007": "attendance-below-local-trigger",
    "LAR006": "deletion-ground-unsupported",
    "REG004": "no-show-on-starting-day",
}
FAMILY_PREFIX = {
    "registers": "REG",
    "marks": "MRK",
    "amendments": "AMD",
    "returns": "LAR",
    "attendance": "ATT",
    "upn": "UPN",
}
RULES = all_rules(include_removed=True)


def test_catalogue_is_complete_and_exact() -> None:
    assert {r.code: r.name for r in RULES} == CATALOGUE


def test_codes_and_names_are_unique() -> None:
    codes = [r.code for r in RULES]
    names = [r.name for r in RULES]
    assert len(set(codes)) == len(codes)
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.code)
def test_rule_metadata(rule: Rule) -> None:
    assert re.fullmatch(r"[A-Z]{3}\d{3}", rule.code)
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", rule.name), "names are kebab-case"
    assert rule.code.startswith(FAMILY_PREFIX[rule.family()])
    module = type(rule).__module__.split(".")
    assert module[-1] == rule.code, "one module per rule, named for its code"
    assert module[-2] == rule.family()
    assert re.fullmatch(r"(?:[A-Z][a-z0-9]*)+", type(rule).__name__) and type(rule) is not Rule
    assert rule.title.strip() and rule.citation.strip() and rule.fix_hint.strip()
    assert isinstance(rule.severity, Severity) and isinstance(rule.status, RuleStatus)
    assert set(rule.settings_used) <= set(RuleSettings.model_fields), rule.settings_used


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.code)
def test_rule_docs_have_every_section(rule: Rule) -> None:
    docs = rule.docs()
    assert docs.summary
    assert list(docs.sections) == list(DOC_SECTIONS), "the five sections, in order"
    assert docs.missing == ()
    assert (
        "SI 20" in docs.sections["References"]
        or "DfE" in docs.sections["References"]
        or "WTISA" in docs.sections["References"]
    ), "References cite a source"


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.code)
def test_rule_has_a_fixture_with_passing_and_failing_cases(rule: Rule) -> None:
    path = FIXTURES / f"{rule.code}.yaml"
    assert path.is_file(), f"{rule.code} has no fixture {path.name}"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert doc["rule"] == rule.code
    expectations = [case["expect"] for case in doc["cases"]]
    assert any(not e for e in expectations), "at least one passing case (expect: [])"
    assert any(e for e in expectations), "at least one failing case"


@pytest.mark.parametrize("family", FAMILIES)
def test_every_rule_module_is_registered(family: str) -> None:
    """A rule file that get_rules() does not list would silently never run."""
    on_disk = {
        p.stem for p in (PACKAGE / family).glob("*.py") if re.fullmatch(r"[A-Z]{3}\d{3}", p.stem)
    }
    registered = {r.code for r in RULES if r.family() == family}
    assert on_disk == registered


def test_no_fixture_without_a_rule() -> None:
    assert {p.stem for p in FIXTURES.glob("*.yaml")} == set(CATALOGUE)
