"""Every rule fixture case, run by one parametrised test (sqlfluff's yaml_test_cases_test).

A case passes when the rule's findings are exactly the expected ones (rule, pupil, first and last
session, due date, severity: no more, no fewer), a second scan of a fresh context gives the same
fingerprints, and no message or evidence carries a pupil's name, UPN or date of birth.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.scenario import Scenario, load_scenarios, rows_of

from registerwatch.validators import get_rule, run_rules, session_text

FIXTURES = Path(__file__).parent / "fixtures"
SCENARIOS = [case for path in sorted(FIXTURES.glob("*.yaml")) for case in load_scenarios(path)]


def _diff(expected: list, actual: list) -> str:
    missing = [str(r) for r in expected if r not in actual]
    extra = [str(r) for r in actual if r not in expected]
    return (
        "\n  missing: "
        + "\n           ".join(missing or ["-"])
        + "\n  unexpected: "
        + "\n              ".join(extra or ["-"])
    )


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.id)
def test_rule_fixture(scenario: Scenario) -> None:
    rule = get_rule(scenario.rule)
    findings = run_rules(scenario.context(), [rule])

    actual, expected = rows_of(findings), scenario.expected_rows()
    assert actual == expected, f"{scenario.id}: {scenario.description}{_diff(expected, actual)}"

    again = run_rules(scenario.context(), [rule])
    assert [f.fingerprint for f in again] == [f.fingerprint for f in findings]
    assert len({f.fingerprint for f in findings}) == len(findings)

    pupils = scenario.context().pupils
    secrets = {
        v
        for p in pupils
        for v in (p.legal_forename, p.legal_surname, p.upn, p.former_upn, p.preferred_forename)
        if v and len(v) > 2
    }
    secrets |= {p.dob.isoformat() for p in pupils if p.dob}
    for finding in findings:
        assert finding.school_id == scenario.context().school_id
        assert finding.message and "{" not in finding.message, finding.message
        text = finding.message + json.dumps(finding.evidence, default=str)
        assert not [s for s in secrets if s in text], f"pupil data in {text!r}"

    for check in scenario.extra_checks:
        matching = [
            f
            for f in findings
            if f.pupil_id == check.get("pupil", f.pupil_id)
            and ("first" not in check or session_text(f.first_session) == check["first"])
        ]
        assert matching, f"check {check} matched no finding"
        for finding in matching:
            if "message_contains" in check:
                assert check["message_contains"] in finding.message, finding.message
            for key, value in (check.get("evidence") or {}).items():
                assert finding.evidence.get(key) == value, (key, finding.evidence)
