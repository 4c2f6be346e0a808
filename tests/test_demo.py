"""`registerwatch demo`: the README's first command, end to end in a real process."""

import json
import subprocess
import sys
from pathlib import Path


def test_demo_runs_with_no_config_and_writes_private_files(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "registerwatch.cli", "demo", "--dir", str(tmp_path / "demo"),
         "--pupils", "80", "--format", "json"],
        capture_output=True, text=True, timeout=300, env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["sync"]["ok"] is True
    [school] = summary["sync"]["schools"]
    assert school["fetched"]["pupils"] == 80
    assert summary["ledger"] == {"ok": True, "entries": school["ledger_entries"]}
    assert 80 < summary["statistics"]["attendance_rate"] < 100
    for path in summary["files"].values():
        assert Path(path).stat().st_mode & 0o777 == 0o600, path
