"""A finding's life across scans: new, open on a rerun, resolved once the MIS is fixed and
synced, new again when the breach comes back; acknowledgements; returns recorded by hand;
failed rules; --school scoping; the runs table and the log events."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime, timedelta

import pytest
from scan_support import AS_OF, ELM, SYNCED_AT, Elm, Oak, add_elm, at_london, scan_json
from structlog.testing import capture_logs

from registerwatch.scan import ScanFinding, ScanResult, run_scan
from registerwatch.schema import Finding, Severity
from registerwatch.simulator.generate_breaches_absence import CME_RUN_NOTE
from registerwatch.simulator.model import ExpectedFinding
from registerwatch.validators import Rule, ScanContext, all_rules

T1 = at_london(AS_OF)  # the nightly scans
T2 = T1 + timedelta(days=1)
T3 = T2 + timedelta(days=1)
T4 = T3 + timedelta(days=1)


def expected(oak: Oak, rule: str) -> ExpectedFinding:
    # the LAR003 breach's N run also gives MRK001 findings: the rule's own breach is the other
    (found,) = [
        e for e in oak.school.expected_findings if e.rule == rule and CME_RUN_NOTE not in e.note
    ]
    return found


def scan(
    oak: Oak | Elm,
    at: datetime,
    *,
    as_of: date = AS_OF,
    school_id: str | None = None,
    rules: list[Rule] | None = None,
) -> ScanResult:
    return run_scan(
        oak.store, oak.settings, as_of=as_of, school_id=school_id, rules=rules, clock=lambda: at
    )


def only(result: ScanResult, rule: str, pupil_id: str | None = None) -> ScanFinding:
    (item,) = [
        f
        for f in result.findings
        if f.finding.rule == rule and (pupil_id is None or f.finding.pupil_id == pupil_id)
    ]
    return item


def fix_mrk001(oak: Oak, code: str = "I") -> ExpectedFinding:
    """The data manager replaces the overdue N (with an amendment record) and sync runs."""
    e = expected(oak, "MRK001")
    assert e.pupil_id is not None and e.first_session is not None
    oak.edit(e.pupil_id, *e.first_session, code)
    return e


def test_a_rerun_with_nothing_changed_opens_nothing(oak: Oak) -> None:
    first = scan(oak, T1)
    assert first.findings and {f.status for f in first.findings} == {"new"}
    assert all(f.finding.first_seen == T1 and f.finding.last_seen == T1 for f in first.findings)

    again = scan(oak, T2)

    assert {f.status for f in again.findings} == {"open"}
    assert [f.fingerprint for f in again.findings] == [f.fingerprint for f in first.findings]
    assert all(f.finding.first_seen == T1 and f.finding.last_seen == T2 for f in again.findings)
    assert again.counts()["new"] == 0 and again.counts()["open"] == len(first.findings)
    stored = oak.store.load_findings(oak.school_id)
    assert {s.status for s in stored.values()} == {"open"}
    assert {s.finding.first_seen for s in stored.values()} == {T1}


def test_a_breach_fixed_in_the_mis_is_resolved_then_new_again_if_it_comes_back(
    oak: Oak, cli
) -> None:
    scan(oak, T1)
    e = fix_mrk001(oak)
    oak.sync(at=SYNCED_AT + timedelta(hours=1))  # after the template's sync, before T2

    fixed = scan(oak, T2)

    resolved = [f for f in fixed.findings if f.status == "resolved"]
    assert [(f.finding.rule, f.finding.pupil_id) for f in resolved] == [("MRK001", e.pupil_id)]
    assert resolved[0].finding.resolved_at == T2
    assert resolved[0].finding.first_seen == T1
    # The fix was recorded as an amendment: nothing new opened, everything else still open.
    assert {f.status for f in fixed.findings if f not in resolved} == {"open"}
    (stored,) = list(oak.store.load_findings(oak.school_id, status="resolved").values())
    assert stored.finding.resolved_at == T2 and stored.finding.rule == "MRK001"

    # Resolved findings are reported once, by the scan that resolved them.
    assert ("MRK001", e.pupil_id) not in {
        (f.finding.rule, f.finding.pupil_id) for f in scan(oak, T3).findings
    }
    code, out, _ = cli("findings", "list", "--status", "resolved", "--format", "json")
    assert code == 0
    (listed,) = json.loads(out)["findings"]
    assert (listed["rule"], listed["status"]) == ("MRK001", "resolved")
    assert listed["resolved_at"] == T2.isoformat()

    # The fix is undone: the breach is back, as a new finding with the same fingerprint.
    code, _, err = cli("findings", "ack", stored.finding.fingerprint, "--note", "fixed in MIS")
    assert code == 0, err
    oak.edit(e.pupil_id, *e.first_session, "N")
    oak.sync(at=T3 + timedelta(hours=12))

    back = scan(oak, T4)

    again = only(back, "MRK001", e.pupil_id)
    assert again.fingerprint == stored.finding.fingerprint
    assert again.status == "new"
    assert again.finding.first_seen == T4 and again.finding.resolved_at is None
    # The acknowledgement belongs to the fingerprint: the data manager's note survives the
    # finding resolving and coming back (issue 10 item 4).
    assert again.ack_note == "fixed in MIS" and again.acknowledged_at is not None
    now_stored = oak.store.load_findings(oak.school_id)[again.fingerprint]
    assert (now_stored.status, now_stored.finding.first_seen) == ("open", T4)
    assert now_stored.ack_note == "fixed in MIS"
    # (the CLI acknowledges at the real time, the scans at the test clock's: compare as a set)
    events = {(e.event, e.cause) for e in oak.store.finding_history(again.fingerprint)}
    assert events == {
        ("opened", "scan"),
        ("resolved", "scan"),
        ("acknowledged", "acknowledgement"),
        ("reopened", "scan"),
    }


def test_acknowledge_by_prefix_shows_the_note_and_refuses_unknown_fingerprints(
    oak: Oak, cli
) -> None:
    result = scan(oak, T1)
    target = only(result, "LAR001")

    code, out, err = cli(
        "findings", "ack", target.fingerprint[:8], "--note", "LA phoned 2/12, return to follow"
    )
    assert code == 0, err
    assert "acknowledged LAR001" in out and "LA phoned 2/12" in out
    code, out, _ = cli("findings", "list", "--format", "json")
    (listed,) = [f for f in json.loads(out)["findings"] if f["fingerprint"] == target.fingerprint]
    assert listed["acknowledged"]["note"] == "LA phoned 2/12, return to follow"
    report = oak.config.parent / "table.txt"
    cli("scan", "--as-of", AS_OF.isoformat(), "--output", str(report))
    assert "LA phoned 2/12" in report.read_text(encoding="utf-8")

    # The acknowledgement is kept by later scans.
    assert only(scan(oak, T2), "LAR001").ack_note == "LA phoned 2/12, return to follow"

    code, _, err = cli("findings", "ack", "0" * 64, "--note", "x")
    assert code == 2 and "no finding with fingerprint" in err
    code, _, err = cli("findings", "ack", target.fingerprint[:7], "--note", "x")
    assert code == 2 and "at least 8" in err


def test_an_ambiguous_prefix_is_refused(elm: Elm, cli) -> None:
    findings = [
        Finding(
            rule="UPN001",
            severity=Severity.ERROR,
            school_id=ELM,
            pupil_id="elm:E1",
            message="m",
            fingerprint=f"deadbeef{n}" + "0" * 55,
        )
        for n in range(2)
    ]
    elm.store.save_findings(findings, at=SYNCED_AT)
    code, _, err = cli("findings", "ack", "deadbeef", "--note", "x")
    assert code == 2 and "matches 2 findings" in err
    code, _, err = cli("findings", "ack", "deadbeef1", "--note", "x")
    assert code == 0, err


def test_acknowledged_findings_stop_failing_the_scan_until_their_severity_rises(
    elm: Elm, cli
) -> None:
    # 10 November is MRK001's due day: a warning ("replace today").
    code, doc = scan_json(cli, "--as-of", "2025-11-10", "--fail-on", "warning")
    assert code == 1
    (n_code,) = [f for f in doc["findings"] if f["rule"] == "MRK001"]
    assert n_code["severity"] == "warning"
    code, _, _ = cli("findings", "ack", n_code["fingerprint"], "--note", "will fix today")
    assert code == 0

    code, doc = scan_json(cli, "--as-of", "2025-11-10", "--fail-on", "warning")
    assert code == 0  # acknowledged; the two info notices are below warning
    (n_code,) = [f for f in doc["findings"] if f["rule"] == "MRK001"]
    assert n_code["acknowledged"]["note"] == "will fix today"

    # The next day it is an error: the acknowledgement of a warning does not cover that.
    code, doc = scan_json(cli, "--as-of", "2025-11-11", "--fail-on", "error")
    assert code == 1
    (n_code,) = [f for f in doc["findings"] if f["rule"] == "MRK001"]
    assert (n_code["severity"], n_code["status"], n_code["acknowledged"]) == ("error", "open", None)


def test_returns_recorded_by_hand_close_the_lar_findings(oak: Oak, cli) -> None:
    before = scan(oak, T1)
    pupils = {p.id: p for p in oak.school.pupils}
    lar001, lar002, lar004 = (expected(oak, r) for r in ("LAR001", "LAR002", "LAR004"))
    for e in (lar001, lar002, lar004):
        assert only(before, e.rule, e.pupil_id).status == "new"
    assert lar002.first_session is not None and lar002.pupil_id and lar004.pupil_id
    assert lar001.pupil_id is not None

    # An episode return without its start cannot be matched to the episode: refused.
    code, _, err = cli(
        "notify",
        "record",
        "--school",
        oak.school_id,
        "--kind",
        "continuous_absence",
        "--pupil",
        pupils[lar002.pupil_id].mis_id,
    )
    assert code == 2 and "--episode-start" in err
    code, _, err = cli(
        "notify",
        "record",
        "--school",
        oak.school_id,
        "--kind",
        "new_pupil",
        "--pupil",
        "no-such-pupil",
    )
    assert code == 2 and "no pupil with MIS id 'no-such-pupil'" in err
    code, _, err = cli(
        "notify", "record", "--school", "nowhere", "--kind", "new_pupil", "--pupil", "1"
    )
    assert code == 2 and "no school 'nowhere'" in err

    records = [
        (
            "continuous_absence",
            lar002.pupil_id,
            ["--episode-start", lar002.first_session[0].isoformat()],
        ),
        ("new_pupil", lar004.pupil_id, []),
        ("sickness", lar001.pupil_id, ["--made-at", "2025-11-28T15:30"]),
    ]
    for kind, pupil_id, extra in records:
        args = [
            "notify",
            "record",
            "--school",
            oak.school_id,
            "--kind",
            kind,
            "--pupil",
            pupils[pupil_id].mis_id,
            "--channel",
            "LA portal",
            "--reference",
            "R-1",
            *extra,
        ]
        code, out, err = cli(*args)
        assert code == 0 and out.startswith("recorded "), err
    code, out, _ = cli(*args)  # the same return again
    assert code == 0 and out.startswith("already recorded")
    (sickness,) = oak.store.notifications(oak.school_id, kind="sickness", pupil_id=lar001.pupil_id)
    assert sickness.made_at == datetime.fromisoformat("2025-11-28T15:30+00:00")  # GMT in Nov

    after = scan(oak, T2)

    for e in (lar001, lar002, lar004):
        item = only(after, e.rule, e.pupil_id)
        assert (item.status, item.finding.resolved_at) == ("resolved", T2)
    assert {
        f.status for f in after.findings if f.finding.rule not in ("LAR001", "LAR002", "LAR004")
    } == {"open"}


class _Broken(Rule):
    code = "MRK001"
    name = "unresolved-n-code"

    def check(self, ctx: ScanContext) -> Iterator[Finding]:
        raise RuntimeError("boom")


def test_a_rule_that_fails_keeps_its_findings_open(
    oak: Oak, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = scan(oak, T1)
    pupil = expected(oak, "MRK001").pupil_id
    n_code = only(first, "MRK001", pupil)
    fix_mrk001(oak)  # a working rule would now resolve it
    oak.sync(at=SYNCED_AT + timedelta(hours=1))  # after the template's sync, before T2
    rules = [r if r.code != "MRK001" else _Broken() for r in all_rules()]

    result = scan(oak, T2, rules=rules)

    assert not result.ok
    (school,) = [s for s in result.schools if s.school_id == oak.school_id]
    assert school.failed_rules == {"MRK001": "RuntimeError: boom"}
    kept = only(result, "MRK001", pupil)
    assert (kept.status, kept.fingerprint, kept.finding.resolved_at) == (
        "open",
        n_code.fingerprint,
        None,
    )
    assert oak.store.load_findings(oak.school_id)[n_code.fingerprint].status == "open"
    assert {f.status for f in result.findings} == {"open"}

    # Through the CLI: exit 1 even with --fail-on never, naming the rule.
    monkeypatch.setattr("registerwatch.scan.pipeline.all_rules", lambda: rules)
    code, out, _ = cli("scan", "--as-of", AS_OF.isoformat(), "--fail-on", "never")
    assert code == 1 and "rule MRK001 failed" in out


def test_a_school_scan_leaves_other_schools_findings_alone(oak: Oak, cli) -> None:
    add_elm(oak.store)
    code, doc = scan_json(cli, "--as-of", AS_OF.isoformat())
    assert {s["school"]: s["status"] for s in doc["schools"]} == {
        oak.school_id: "scanned",
        ELM: "scanned",
    }
    elm_before = oak.store.load_findings(ELM)
    assert elm_before
    e = fix_mrk001(oak)
    oak.sync(at=SYNCED_AT + timedelta(hours=1))

    code, doc = scan_json(cli, "--as-of", AS_OF.isoformat(), "--school", ELM)

    assert code == 1  # elm's N is overdue
    assert [s["school"] for s in doc["schools"]] == [ELM]
    assert {f["school"] for f in doc["findings"]} == {ELM}
    stored = oak.store.load_findings(oak.school_id)
    assert {s.status for s in stored.values()} == {"open"}  # oak's MRK001 not resolved
    elm_after_elm_scan = oak.store.load_findings(ELM)
    assert elm_after_elm_scan.keys() == elm_before.keys()

    code, doc = scan_json(cli, "--as-of", AS_OF.isoformat(), "--school", oak.school_id)

    assert [s["school"] for s in doc["schools"]] == [oak.school_id]
    resolved = [f for f in doc["findings"] if f["status"] == "resolved"]
    assert [(f["rule"], f"{oak.school_id}:{f['pupil']}") for f in resolved] == [
        ("MRK001", e.pupil_id)
    ]
    assert oak.store.load_findings(ELM) == elm_after_elm_scan  # not even last_seen moved


def test_each_scan_is_recorded_in_the_runs_table(elm: Elm) -> None:
    result = scan(elm, T1, as_of=date(2025, 11, 11))
    scan(elm, T2, as_of=date(2025, 11, 11))
    runs = elm.store.runs(command="scan")
    assert [r.id for r in runs] == [result.run_id + 1, result.run_id]
    first = runs[-1]
    assert (first.started_at, first.finished_at, first.outcome) == (T1, T1, "ok")
    assert first.counts == {
        "as_of": "2025-11-11",
        "schools_scanned": 1,
        "schools_not_synced": 0,
        "schools_failed": 0,
        "rules_failed": 0,
        "new": 3,
        "open": 0,
        "resolved": 0,
        "error": 1,
        "warning": 0,
        "info": 2,
        "acknowledged": 0,
        "read_only": False,
        "resolved_late": 0,
        "schools_stale": 0,
    }
    assert runs[0].counts["open"] == 3 and runs[0].counts["new"] == 0


def test_log_events_name_findings_without_pupil_data(oak: Oak) -> None:
    with capture_logs() as logs:
        first = scan(oak, T1)
    opened = [e for e in logs if e["event"] == "scan.finding_opened"]
    assert sorted(e["fingerprint"] for e in opened) == sorted(f.fingerprint for f in first.findings)
    assert {e["school_id"] for e in opened} == {oak.school_id}
    (scanned,) = [e for e in logs if e["event"] == "scan.school_scanned"]
    assert (scanned["school_id"], scanned["new"], scanned["open"]) == (
        oak.school_id,
        len(first.findings),
        0,
    )

    fix_mrk001(oak)
    oak.sync(at=SYNCED_AT + timedelta(hours=1))  # after the template's sync, before T2
    with capture_logs() as more:
        scan(oak, T2)
    (resolved,) = [e for e in more if e["event"] == "scan.finding_resolved"]
    assert (resolved["rule"], resolved["school_id"]) == ("MRK001", oak.school_id)

    pupil_data = set()
    for p in oak.school.pupils:
        pupil_data |= {p.id, p.mis_id, p.upn or p.id, p.legal_surname or p.id}
    for event in logs + more:
        text = json.dumps(event, default=str)
        assert not [value for value in pupil_data if f'"{value}"' in text or f"{value} " in text], (
            event
        )


def test_the_table_reads_new_first_then_severity(elm: Elm, cli) -> None:
    cli("scan", "--as-of", "2025-11-07")  # only the two info notices: N is not due yet
    path = elm.config.parent / "report.txt"
    code, _, err = cli("scan", "--as-of", "2025-11-11", "--output", str(path))
    assert code == 1, err
    lines = path.read_text(encoding="utf-8").splitlines()
    rows = [line for line in lines if any(f" {r} " in line for r in ("MRK001", "REG001", "AMD002"))]
    assert [("NEW" in row, "MRK001" in row) for row in rows] == [
        (True, True),
        (False, False),
        (False, False),
    ]
    assert "2025-11-10" in rows[0]  # its due date
    assert "3 school(s)" not in lines[0]


def test_an_unknown_school_is_a_usage_error(elm: Elm, cli) -> None:
    code, _, err = cli("scan", "--school", "nowhere")
    assert code == 2 and "no school 'nowhere'" in err
    assert elm.store.runs(command="scan") == []  # refused before anything ran
