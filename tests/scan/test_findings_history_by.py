"""`findings history` says who acknowledged (issue 13's note: the web history did, the command
line did not): `findings ack` records its author in the audit trail, `cli:<login>` or `--by`,
in the acknowledgement's transaction, and the history shows it beside the scan's own changes,
which have no author."""

from __future__ import annotations

import getpass
import json

from scan_support import AS_OF, Oak, scan_json


def test_history_names_who_acknowledged(oak_bare: Oak, cli) -> None:
    config = str(oak_bare.config)
    _, opened = scan_json(cli, "--config", config, "--as-of", AS_OF.isoformat())
    first, second = sorted(f["fingerprint"] for f in opened["findings"])[:2]

    code, _, err = cli("findings", "ack", first[:12], "--note", "phoned home", "--config", config)
    assert code == 0, err
    code, _, err = cli(
        "findings", "ack", second, "--note", "agreed with the LA",
        "--by", "dm@oak.example", "--config", config,
    )  # fmt: skip
    assert code == 0, err

    code, out, err = cli("findings", "history", first, "--format", "json", "--config", config)
    assert code == 0, err
    events = json.loads(out)["events"]
    opened_event = next(e for e in events if e["event"] == "opened")
    assert opened_event["by"] is None  # the scan's own change
    (ack,) = [e for e in events if e["event"] == "acknowledged"]
    assert ack["by"] == f"cli:{getpass.getuser()}"
    assert ack["detail"] == "phoned home"
    assert (
        len(events) == 2
    )  # the audit entry is the acknowledgement's author, not a line of its own

    code, out, err = cli("findings", "history", second, "--format", "json", "--config", config)
    assert code == 0, err
    (ack,) = [e for e in json.loads(out)["events"] if e["event"] == "acknowledged"]
    assert (ack["by"], ack["detail"]) == ("dm@oak.example", "agreed with the LA")
    code, out, err = cli("findings", "history", second, "--config", config)
    assert code == 0, err
    assert "┃ by" in out  # the table has the column
