"""Late returns (issue 9 item 2): a return made after its finding's due date resolves the
finding as *late*, kept and counted in the scan JSON, `findings list` and the report, for
LAR001, LAR002, LAR004 and LAR005; one made on time resolves it as usual.

The synced school's LAR findings (without the returns the school had made) are opened by a
scan on Monday 1 December 2025; the returns are then recorded as `notify record` does, each
with the day it was made, and the next scan resolves them.
"""

from __future__ import annotations

import json
from pathlib import Path

from scan_support import AS_OF, Oak, scan_json

# (rule, pupil's MIS id, NotifyKind, made on) with each finding's due date in the comment.
LATE = [
    ("LAR001", "4318", "sickness", "2025-11-05"),  # due 2025-10-24
    ("LAR002", "4206", "continuous_absence", "2025-11-26"),  # due 2025-10-24
    ("LAR004", "4005", "new_pupil", "2025-10-20"),  # due 2025-10-15
    ("LAR005", "4091", "deletion", "2025-11-28"),  # due 2025-10-08
]
ON_TIME = [
    ("LAR001", "4151", "sickness", "2025-10-24"),  # due 2025-10-24: made on the day is on time
    ("LAR004", "4152", "new_pupil", "2025-11-03"),  # due 2025-11-12
]


def test_returns_made_after_their_due_date_resolve_late_and_on_time_ones_resolve(
    oak_bare: Oak, cli, tmp_path: Path
) -> None:
    config = str(oak_bare.config)
    _, opened = scan_json(cli, "--config", config, "--as-of", AS_OF.isoformat())
    by_key = {(f["rule"], f["pupil"]): f for f in opened["findings"]}
    for rule, pupil, kind, made in LATE + ON_TIME:
        finding = by_key[(rule, pupil)]
        assert finding["status"] == "new" and finding["due"] is not None
        episode = (finding["first_session"] or {}).get("date")
        code, _, err = cli(
            "notify", "record", "--school", oak_bare.school_id, "--kind", kind, "--pupil", pupil,
            *(("--episode-start", episode) if episode else ()),
            "--made-at", f"{made}T12:00", "--config", config,
        )  # fmt: skip
        assert code == 0, err

    code, out, err = cli(
        "scan", "--format", "json", "--config", config, "--as-of", AS_OF.isoformat()
    )
    assert code in (0, 1), err
    doc = json.loads(out)
    resolved = {(f["rule"], f["pupil"]): f for f in doc["findings"] if f["status"] == "resolved"}
    for rule, pupil, _, _ in LATE:
        assert resolved[(rule, pupil)]["resolution"] == "late", (rule, pupil)
    for rule, pupil, _, _ in ON_TIME:
        assert resolved[(rule, pupil)]["resolution"] is None, (rule, pupil)
    (school,) = [s for s in doc["schools"] if s["school"] == oak_bare.school_id]
    assert school["resolved_late"] == len(LATE)

    code, out, err = cli("findings", "list", "--status", "resolved", "--format", "json")
    assert code == 0, err
    listed = json.loads(out)
    assert listed["resolved_late"] == len(LATE)
    late = {(f["rule"], f["pupil"]) for f in listed["findings"] if f["resolution"] == "late"}
    assert late == {(rule, pupil) for rule, pupil, _, _ in LATE}
    code, out, _ = cli("findings", "list", "--status", "resolved", "--config", config)
    assert "made late" in out

    code, _, err = cli(
        "report", "--as-of", AS_OF.isoformat(), "--output", str(tmp_path / "r"), "--config", config
    )
    assert code in (0, 1), err
    html = (tmp_path / "r" / "report.html").read_text(encoding="utf-8")
    assert f"{len(LATE)} return(s) made late" in html

    # Each late one's history says so.
    fp = resolved[LATE[0][:2]]["fingerprint"]
    code, out, _ = cli("findings", "history", fp, "--format", "json", "--config", config)
    assert ("resolved_late", "scan") in {
        (e["event"], e["cause"]) for e in json.loads(out)["events"]
    }
