"""The rule framework: fingerprints, the runner's failure policy, the context and the settings."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from structlog.testing import capture_logs

from registerwatch.codes import CODES_2006, CODES_2024
from registerwatch.schema import (
    Calendar,
    Closure,
    Finding,
    Mark,
    Notification,
    Pupil,
    Register,
    Session,
    Severity,
    Term,
)
from registerwatch.store.ledger import LedgerEntry
from registerwatch.validators import (
    Rule,
    RuleFailedError,
    RuleSettings,
    ScanContext,
    all_rules,
    fingerprint,
    get_rule,
    observed_changes_from_ledger,
    run_rules,
    scan_rules,
    session_ref,
)

CALENDAR = Calendar(
    school_id="s1",
    terms=[
        Term(start=date(2025, 9, 3), end=date(2025, 10, 24)),
        Term(start=date(2025, 11, 3), end=date(2025, 12, 19)),
    ],
    closures=[Closure(date=date(2025, 11, 14)), Closure(date=date(2025, 12, 3), kind="unexpected")],
)


def context(**records: object) -> ScanContext:
    records.setdefault("as_of", date(2025, 11, 20))
    return ScanContext.build(calendar=CALENDAR, **records)  # type: ignore[arg-type]


class Exploding(Rule):
    """Raises: a bug in a rule.

    What it checks
    --------------
    x
    """

    code = "TST001"
    name = "exploding"
    title = "never"
    citation = "none"
    fix_hint = "none"

    def check(self, ctx: ScanContext) -> Iterator[Finding]:
        raise KeyError("boom")


class Twice(Rule):
    code = "TST002"
    name = "twice"
    title = "same"
    citation = "none"
    fix_hint = "none"

    def check(self, ctx: ScanContext) -> Iterator[Finding]:
        yield self.finding(ctx, pupil_id="p1")
        yield self.finding(ctx, pupil_id="p1")


# -- fingerprints -----------------------------------------------------------------------------


def test_fingerprint_ignores_severity_last_session_due_and_message() -> None:
    rule, ctx = get_rule("MRK001"), context()
    first = session_ref(date(2025, 11, 3), Session.AM)
    a = rule.finding(
        ctx,
        pupil_id="p1",
        first=first,
        severity=Severity.WARNING,
        due=date(2025, 11, 10),
        days=5,
        count=1,
    )
    b = rule.finding(
        ctx,
        pupil_id="p1",
        first=first,
        last=session_ref(date(2025, 11, 4), "PM"),
        severity=Severity.ERROR,
        due=date(2025, 11, 11),
        days=5,
        count=3,
    )
    assert a.fingerprint == b.fingerprint
    assert a.fingerprint == fingerprint("MRK001", "s1", "p1", first)
    assert len(a.fingerprint or "") == 64


def test_fingerprint_separates_rule_school_pupil_episode_and_discriminator() -> None:
    first = session_ref(date(2025, 11, 3), Session.AM)
    base = fingerprint("MRK001", "s1", "p1", first, "")
    others = {
        fingerprint("MRK002", "s1", "p1", first, ""),
        fingerprint("MRK001", "s2", "p1", first, ""),
        fingerprint("MRK001", "s1", "p2", first, ""),
        fingerprint("MRK001", "s1", None, first, ""),
        fingerprint("MRK001", "s1", "p1", session_ref(date(2025, 11, 3), Session.PM), ""),
        fingerprint("MRK001", "s1", "p1", None, ""),
        fingerprint("MRK001", "s1", "p1", first, "x"),
    }
    assert base not in others and len(others) == 7


# -- the runner -------------------------------------------------------------------------------


def test_run_rules_reraises_a_failing_rule_and_logs_it() -> None:
    with capture_logs() as logs, pytest.raises(RuleFailedError) as caught:
        run_rules(context(), [get_rule("UPN002"), Exploding()])
    assert caught.value.rule == "TST001" and caught.value.school_id == "s1"
    assert "a bug in the rule" in str(caught.value)
    failed = [e for e in logs if e["event"] == "scan.rule_failed"]
    assert failed == [
        {
            "event": "scan.rule_failed",
            "rule": "TST001",
            "school_id": "s1",
            "error_type": "KeyError",
            "error": "'boom'",
            "log_level": "error",
        }
    ]


def test_scan_rules_runs_the_others_and_reports_the_failure() -> None:
    pupils = [
        Pupil(
            id="p1", school_id="s1", mis_id="1", upn="A881200119005", starting_day=date(2024, 9, 4)
        )
    ]
    with capture_logs():
        outcome = scan_rules(context(pupils=pupils), [Exploding(), get_rule("UPN001"), Twice()])
    assert [f.rule for f in outcome.findings] == ["UPN001"]
    assert set(outcome.failed) == {"TST001", "TST002"}
    assert "duplicate fingerprints" in outcome.failed["TST002"]


def test_run_rules_sorts_findings_deterministically() -> None:
    pupils = [
        Pupil(id=f"p{i}", school_id="s1", mis_id=str(i), upn=None, starting_day=date(2024, 9, 4))
        for i in (3, 1, 2)
    ]
    findings = run_rules(
        context(pupils=pupils, exposes_amendments=False), [get_rule("UPN001"), get_rule("AMD002")]
    )
    assert [(f.rule, f.pupil_id) for f in findings] == [
        ("AMD002", None),
        ("UPN001", "p1"),
        ("UPN001", "p2"),
        ("UPN001", "p3"),
    ]


def test_all_rules_is_the_default_and_excludes_removed() -> None:
    assert len(all_rules()) == 30
    assert all(r.status.value != "removed" for r in all_rules())


# -- the context ------------------------------------------------------------------------------


def test_context_is_read_only_and_groups_marks_once() -> None:
    marks = [
        Mark(pupil_id="p1", date=date(2025, 11, 4), session=Session.PM, code="\\"),
        Mark(pupil_id="p1", date=date(2025, 11, 4), session=Session.AM, code="/"),
        Mark(pupil_id="p1", date=date(2025, 11, 3), session=Session.PM, code="N"),
    ]
    ctx = context(marks=marks)
    assert isinstance(ctx.marks, tuple)
    with pytest.raises(AttributeError):
        ctx.as_of = date(2026, 1, 1)  # type: ignore[misc]
    assert [(m.date.day, m.session.value) for m in ctx.pupil_marks("p1")] == [
        (3, "PM"),
        (4, "AM"),
        (4, "PM"),
    ]
    assert ctx.marks_by_pupil is ctx.marks_by_pupil
    assert ctx.mark_index[("p1", date(2025, 11, 3), Session.PM)].code == "N"
    assert ctx.data_end == date(2025, 11, 19)
    assert ctx.school_year == (date(2025, 8, 1), date(2026, 7, 31))
    assert [d.date.day for d in ctx.pupil_days("p1")] == [3, 4]
    assert ctx.code_count("p1", "N/") == 2


def test_context_calendar_answers() -> None:
    ctx = context()
    # INSET Friday 14 Nov has no sessions; Mon 17 Nov AM follows Thu 13 Nov PM
    assert (
        ctx.session_index[(date(2025, 11, 17), Session.AM)]
        == ctx.session_index[(date(2025, 11, 13), Session.PM)] + 1
    )
    assert ctx.is_school_session(date(2025, 12, 3), Session.AM)  # unexpected closure: Y4 day
    assert not ctx.is_school_session(date(2025, 11, 14), Session.AM)
    # ten school weeks back from 24 Nov skip the half-term week (27-31 Oct)
    assert ctx.rolling_weeks_start(date(2025, 11, 24), 10) == date(2025, 9, 15)
    assert ctx.rolling_weeks_start(
        date(2025, 11, 24), 10
    ) == ctx.calendar.rolling_school_weeks_start(date(2025, 11, 24), 10)


def test_observed_changes_from_ledger() -> None:
    at = datetime(2025, 11, 6, 7, tzinfo=UTC)
    entries = [
        LedgerEntry("s1", "p1", date(2025, 11, 3), Session.AM, "observed_change", "N", "O", at),
        LedgerEntry("s1", "p1", date(2025, 11, 4), Session.PM, "observed_deleted", "I", None, at),
        LedgerEntry("s1", "p1", date(2025, 11, 5), Session.AM, "observed_new", None, "/", at),
        LedgerEntry("s1", "p1", date(2025, 11, 5), Session.PM, "mis_amendment", "N", "I", at),
    ]
    changes = observed_changes_from_ledger(entries)
    assert [(c.kind, c.original_code, c.new_code) for c in changes] == [
        ("change", "N", "O"),
        ("deleted", "I", None),
    ]


# -- settings ---------------------------------------------------------------------------------


def test_settings_defaults_follow_the_reference() -> None:
    s = RuleSettings()
    # rule-corrections.md §1: WTISA's "G, O and/or U" (N is provisional); N for CME; monthly
    assert s.penalty_threshold_codes == {"G", "O", "U"}
    assert s.cme_codes == {"N"}
    assert (s.la_return_schedule, s.sickness_return_per, s.register_retention_years) == (
        "monthly",
        "per_episode",
        6,
    )
    assert (
        s.n_code_deadline_school_days,
        s.sickness_days,
        s.continuous_absence_days,
        s.cme_days,
        s.penalty_sessions,
        s.penalty_school_weeks,
        s.new_pupil_days,
    ) == (5, 15, 10, 10, 10, 10, 5)
    assert (s.persistent_absence, s.severe_absence) == (0.10, 0.50)


@pytest.mark.parametrize(
    "bad",
    [
        {"penalty_threshold_codes": ["G", "Q9"]},
        {"persistent_absence": 0.6, "severe_absence": 0.5},
        {"persistent_absence": 0},
        {"not_a_setting": 1},
    ],
)
def test_settings_reject_nonsense(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        RuleSettings(**bad)


# -- robustness: rules never raise for bad data -------------------------------------------

ALL_CODES = sorted({c.code for c in CODES_2024} | {c.code for c in CODES_2006})
DAYS = st.dates(min_value=date(2024, 8, 10), max_value=date(2025, 12, 31))


@st.composite
def schools(draw: st.DrawFn) -> ScanContext:
    n = draw(st.integers(1, 4))
    pupils = []
    for i in range(n):
        start = draw(st.none() | DAYS)
        leave = draw(st.none() | DAYS)
        if start and leave and leave < start:
            start, leave = leave, start
        pupils.append(
            Pupil(
                id=f"p{i}",
                school_id="s1",
                mis_id=str(i),
                upn=draw(st.none() | st.text(max_size=14)),
                dob=draw(
                    st.none() | st.dates(min_value=date(2005, 1, 1), max_value=date(2021, 8, 31))
                ),
                nc_year=draw(st.sampled_from([None, "R", "3", "8", "12", "N1", "x"])),
                reg_group=draw(st.sampled_from([None, "A", "B"])),
                starting_day=start,
                leaving_date=leave,
                ehcp=draw(st.booleans()),
                has_social_worker=draw(st.booleans()),
            )
        )
    marks = {}
    for _ in range(draw(st.integers(0, 60))):
        key = (f"p{draw(st.integers(0, n))}", draw(DAYS), draw(st.sampled_from(list(Session))))
        marks[key] = Mark(
            pupil_id=key[0], date=key[1], session=key[2], code=draw(st.sampled_from(ALL_CODES))
        )
    registers = [
        Register(
            school_id="s1",
            group=draw(st.sampled_from(["A", "B", "C"])),
            date=draw(DAYS),
            session=draw(st.sampled_from(list(Session))),
            completed_at=draw(st.none() | st.just(datetime(2025, 11, 3, 12, tzinfo=UTC))),
        )
        for _ in range(draw(st.integers(0, 5)))
    ]
    notifications = [
        Notification(
            kind=draw(
                st.sampled_from(["sickness", "continuous_absence", "cme", "new_pupil", "deletion"])
            ),
            school_id="s1",
            pupil_id=f"p{draw(st.integers(0, n))}",
            episode_start=draw(st.none() | DAYS),
            made_at=datetime(2025, 1, 1, tzinfo=UTC),
            channel="t",
        )
        for _ in range(draw(st.integers(0, 3)))
    ]
    as_of = draw(st.dates(min_value=date(2024, 9, 1), max_value=date(2026, 1, 10)))
    return context(
        as_of=as_of,
        pupils=pupils,
        marks=list(marks.values()),
        registers=registers,
        notifications=notifications,
        exposes_registers=draw(st.booleans()),
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schools())
def test_rules_never_raise_on_odd_data(ctx: ScanContext) -> None:
    findings = run_rules(ctx)
    assert len({f.fingerprint for f in findings}) == len(findings)
    assert all(f.school_id == "s1" and f.message for f in findings)
    assert all(f.first_session is None or f.last_session is not None for f in findings)
    assert run_rules(ctx) == findings  # deterministic: a rerun gives the same findings
