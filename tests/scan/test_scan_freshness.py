"""Issue 10: registers complete to, SYN001, backdated scans that record nothing, the
acknowledgement that stays with its fingerprint, and `registerwatch status` (the school synced
from a loopback Arbor simulator, as in the lifecycle tests)."""

from __future__ import annotations

import json
from datetime import date, timedelta

from scan_support import AS_OF, Oak, at_london, scan_json

from registerwatch.scan import run_scan

COMPLETE_TO = date(2025, 11, 28)  # the school day before AS_OF (Monday 1 December)
FIVE_DAYS_LATER = date(2025, 12, 8)  # 1-5 December are school days


def test_sync_records_registers_complete_to_the_school_day_before_as_of(oak: Oak) -> None:
    status = oak.store.sync_status(oak.school_id)
    assert status is not None and status.last_outcome == "ok"
    assert status.registers_complete_to == COMPLETE_TO


def test_a_scan_five_school_days_after_the_sync_opens_one_syn001_and_judges_no_unseen_day(
    oak: Oak, cli
) -> None:
    code, doc = scan_json(cli, "--config", str(oak.config), "--as-of", FIVE_DAYS_LATER.isoformat())

    assert code == 1
    (school,) = [s for s in doc["schools"] if s["school"] == oak.school_id]
    assert school["registers_complete_to"] == COMPLETE_TO.isoformat()
    assert school["stale"] is True and school["judged_to"] == AS_OF.isoformat()
    syn = [f for f in doc["findings"] if f["rule"] == "SYN001"]
    assert len(syn) == 1
    assert syn[0]["severity"] == "error" and syn[0]["pupil"] is None
    assert "registers complete to 2025-11-28" in syn[0]["message"]
    for finding in doc["findings"]:
        for key in ("first_session", "last_session"):
            if finding[key] is not None:
                assert date.fromisoformat(finding[key]["date"]) <= COMPLETE_TO, finding

    # The same findings as a scan on the day after the sync, apart from SYN001.
    fresh_rules = sorted(
        f.finding.fingerprint or ""
        for f in run_scan(oak.store, oak.settings, as_of=AS_OF, record=True).findings
        if f.status != "resolved"
    )
    stale_rules = sorted(f["fingerprint"] for f in doc["findings"] if f["rule"] != "SYN001")
    assert stale_rules == fresh_rules

    # `status` names the stale school and exits 1, for a monitoring check.
    code, out, _ = cli("status", "--config", str(oak.config), "--format", "json")
    assert code == 1
    (row,) = [r for r in json.loads(out)["schools"] if r["school"] == oak.school_id]
    assert row["stale"] is True
    assert row["registers_complete_to"] == COMPLETE_TO.isoformat()
    assert row["problem"].startswith("stale: registers complete to 2025-11-28")


def test_syn001_resolves_on_the_next_good_sync(oak: Oak) -> None:
    late = FIVE_DAYS_LATER
    first = run_scan(oak.store, oak.settings, as_of=late, clock=lambda: at_london(late))
    assert [f.finding.rule for f in first.findings if f.finding.rule == "SYN001"] == ["SYN001"]

    oak.sync(at=at_london(late, 1), as_of=AS_OF + timedelta(days=0))  # the simulator's last day
    # Registers complete to the day before the next scan: fresh again.
    oak.store.record_sync_success(oak.school_id, date(2025, 12, 5), at=at_london(late, 1))
    again = run_scan(
        oak.store, oak.settings, as_of=late, clock=lambda: at_london(late) + timedelta(hours=3)
    )
    (syn,) = [f for f in again.findings if f.finding.rule == "SYN001"]
    assert syn.status == "resolved"


def test_a_failed_sync_is_recorded_and_named_by_syn001(oak: Oak) -> None:
    oak.store.record_sync_failure(oak.school_id, "MIS answered 503", at=at_london(AS_OF, 3))
    result = run_scan(oak.store, oak.settings, as_of=date(2025, 12, 3))
    (syn,) = [f for f in result.findings if f.finding.rule == "SYN001"]
    assert "failed: MIS answered 503" in syn.finding.message
    (school,) = [s for s in result.schools if s.school_id == oak.school_id]
    assert (school.last_sync_outcome, school.last_sync_error) == ("failed", "MIS answered 503")


def test_ack_then_a_backdated_scan_then_today_keeps_the_finding_and_its_note(oak: Oak, cli) -> None:
    today = run_scan(oak.store, oak.settings, as_of=AS_OF, clock=lambda: at_london(AS_OF))
    target = next(f for f in today.findings if f.finding.rule == "LAR001")
    code, _, err = cli(
        "findings", "ack", target.fingerprint, "--note", "LA phoned", "--config", str(oak.config)
    )
    assert code == 0, err

    earlier = run_scan(
        oak.store, oak.settings, as_of=date(2025, 11, 3), clock=lambda: at_london(AS_OF, 3)
    )
    assert earlier.read_only
    stored = oak.store.load_findings(oak.school_id)
    assert stored[target.fingerprint].status == "open"

    again = run_scan(oak.store, oak.settings, as_of=AS_OF, clock=lambda: at_london(AS_OF, 4))
    item = next(f for f in again.findings if f.fingerprint == target.fingerprint)
    assert item.status == "open" and item.ack_note == "LA phoned"

    code, out, _ = cli(
        "findings",
        "history",
        target.fingerprint[:12],
        "--format",
        "json",
        "--config",
        str(oak.config),
    )
    assert code == 0
    events = [(e["event"], e["cause"]) for e in json.loads(out)["events"]]
    assert ("opened", "scan") in events and ("acknowledged", "acknowledgement") in events
    assert ("resolved", "scan") not in events  # the backdated scan recorded nothing
