"""Issue 14 item 3: the log files the README's recipes write are created 0600. The cron line is
run as cron would run it (sh, cron's usual umask 022) with registerwatch replaced by a script
that fails, so the log is both written and printed; the systemd units log to the journal and
set UMask=0077 for anything they create."""

from __future__ import annotations

import re
import stat
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DATA = "/var/lib/registerwatch"


def _cron_line() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```cron\n(.*?)```", text, re.S)
    assert block, "the README's cron recipe"
    [line] = [ln for ln in block.group(1).splitlines() if re.match(r"^[0-9*]", ln)]
    return line.split(None, 5)[5]  # the command after the five time fields


def test_the_cron_recipe_creates_its_log_file_0600(tmp_path):
    command = _cron_line()
    assert command.startswith("umask 077;")
    data = tmp_path / "data"
    data.mkdir()
    (data / "credentials.env").write_text("OAK_ARBOR_PASSWORD=not-printed\n", encoding="utf-8")
    fake = tmp_path / "registerwatch"
    fake.write_text("#!/bin/sh\necho 'school oak failed: MIS too slow'\nexit 1\n", encoding="utf-8")
    fake.chmod(0o700)
    command = command.replace(DATA, str(data)).replace("/usr/local/bin/registerwatch", str(fake))
    result = subprocess.run(
        ["sh", "-c", f"umask 022; {command}"], capture_output=True, text=True, timeout=60
    )
    log = data / "last-night.log"
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert log.read_text(encoding="utf-8") == "school oak failed: MIS too slow\n"
    assert result.stdout == "school oak failed: MIS too slow\n"  # printed: cron mails it


def test_the_systemd_units_create_files_owner_only():
    units = sorted((REPO / "deploy" / "systemd").glob("*.service"))
    assert units
    for unit in units:
        text = unit.read_text(encoding="utf-8")
        assert re.search(r"^UMask=0077$", text, re.M), unit.name
        # no log file of their own: output goes to the journal
        assert not re.search(r"^Standard(Output|Error)=(file|append):", text, re.M), unit.name
