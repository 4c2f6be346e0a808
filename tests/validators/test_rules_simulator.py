"""The rules against the simulator's synthetic schools: 100% precision and recall.

``generate_school`` injects one breach per pupil (or group) and lists the findings the scan must
report (``expected_findings``: rule, pupil, first and last session); every other pupil
(``clean_pupil_ids``) must produce nothing. The second sync's edits (AMD002, AMD003) are seen by
sync as observed changes, which is what the context is given here.
"""

from __future__ import annotations

from datetime import date, datetime, time

import pytest
from support.generated_context import context

from registerwatch.calendar import LONDON
from registerwatch.schema import Finding
from registerwatch.simulator.generate import (
    apply_second_sync_changes,
    first_sync_expected_findings,
    generate_school,
)
from registerwatch.simulator.model import ExpectedFinding
from registerwatch.validators import ObservedChange, run_rules

Key = tuple[str, str | None, object, object]


def found(f: Finding) -> Key:
    first = (f.first_session.date, f.first_session.session) if f.first_session else None
    last = (f.last_session.date, f.last_session.session) if f.last_session else None
    return (f.rule, f.pupil_id, first, last)


def wanted(e: ExpectedFinding) -> Key:
    return (e.rule, e.pupil_id, e.first_session, e.last_session)


def assert_exact(findings: list[Finding], expected: list[ExpectedFinding], clean: set[str]) -> None:
    got = sorted((found(f) for f in findings), key=repr)
    want = sorted((wanted(e) for e in expected), key=repr)
    missing = [k for k in want if k not in got]
    extra = [k for k in got if k not in want]
    assert not missing and not extra, f"missing (recall): {missing}\nextra (precision): {extra}"
    assert not [f for f in findings if f.pupil_id in clean], "a finding on a clean pupil"
    # Deadlines too, where the generator recorded one ("due=YYYY-MM-DD" in the note: MRK001's
    # fifth school day, LAR004's fifth day after entry).
    due_by_key = {found(f): f.due for f in findings}
    deadlines = [
        (wanted(e), date.fromisoformat(e.note.split("due=", 1)[1][:10]))
        for e in expected
        if "due=" in e.note
    ]
    assert deadlines, "the generator records at least the MRK001 and LAR004 deadlines"
    wrong = [(key, due, due_by_key[key]) for key, due in deadlines if due_by_key[key] != due]
    assert not wrong, f"deadlines differ (expected, found): {wrong}"


SCHOOLS = [
    pytest.param(dict(seed=1, pupils=150), id="primary-december"),
    pytest.param(dict(seed=7, pupils=700), id="secondary-december"),
    pytest.param(dict(seed=3, pupils=220, as_of=date(2026, 3, 16)), id="primary-march"),
    pytest.param(
        dict(seed=4, pupils=160, as_of=date(2026, 7, 23), vendor="isams"), id="primary-full-year"
    ),
]


@pytest.mark.parametrize("params", SCHOOLS)
def test_scan_matches_the_generated_ground_truth(params: dict[str, object]) -> None:
    school = generate_school(**params)  # type: ignore[arg-type]
    assert school.as_of is not None

    assert_exact(
        run_rules(context(school)), first_sync_expected_findings(school), school.clean_pupil_ids
    )

    edits = apply_second_sync_changes(school)
    seen_at = datetime.combine(school.as_of, time(12, 0), tzinfo=LONDON)
    changes = [
        ObservedChange(
            e.pupil_id,
            e.date,
            e.session,
            "change" if e.kind == "amend" else "deleted",
            e.before,
            e.after,
            seen_at,
        )
        for e in edits
    ]
    assert_exact(
        run_rules(context(school, changes=changes)),
        school.expected_findings,
        school.clean_pupil_ids,
    )
