"""`registerwatch demo`: the README's first command, end to end in a real process."""

import json
import subprocess
import sys
from pathlib import Path


def test_demo_runs_with_no_config_and_writes_private_files(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "registerwatch.cli",
            "demo",
            "--dir",
            str(tmp_path / "demo"),
            "--pupils",
            "80",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["sync"]["ok"] is True
    [school] = summary["sync"]["schools"]
    assert school["fetched"]["pupils"] == 80
    assert summary["ledger"] == {"ok": True, "entries": school["ledger_entries"]}
    assert 80 < summary["statistics"]["attendance_rate"] < 100
    # the whole night ran: scan, report, the due LA returns and the day's DfE return, sent
    steps = {step["step"]: step for step in summary["night"]["steps"]}
    assert [s for s in steps if steps[s]["outcome"] != "ok"] == []
    files = {name: Path(path) for name, path in summary["files"].items()}
    # Each LA return sent closed the finding it answered at once (issue 10 item 3): the
    # findings still open after the night are the scan's less those.
    la_sent = list(files["outbox"].rglob("la-*.xml"))
    assert steps["scan"]["counts"]["new"] == sum(summary["findings"].values()) + len(la_sent)
    assert sum(summary["findings"].values()) > 0
    assert "<svg" in files["report_html"].read_text(encoding="utf-8")
    returns = sorted(p.name for p in files["returns"].glob("*.xml"))
    assert any(name.startswith("dfe-daily_") for name in returns)
    assert any(name.startswith("la-") for name in returns)
    sent = list(files["outbox"].rglob("*.xml"))
    assert steps["submit"]["counts"]["sent"] == len(sent) > 0
    for path in [*files.values(), *sent, *files["returns"].iterdir()]:
        if path.is_file():
            assert path.stat().st_mode & 0o777 == 0o600, path
