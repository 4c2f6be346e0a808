"""`registerwatch export KIND --queue` (issue 10 item 3): a return made by hand outside the night
goes into the outbox, once, and the findings it answers read as queued."""

from __future__ import annotations

import json
from pathlib import Path

from scan_support import AS_OF, Oak, scan_json


def test_export_queue_puts_the_return_in_the_outbox_once(
    oak_bare: Oak, cli, tmp_path: Path
) -> None:
    config = str(oak_bare.config)
    _, before = scan_json(cli, "--config", config, "--as-of", AS_OF.isoformat())
    sickness = {f["fingerprint"] for f in before["findings"] if f["rule"] == "LAR001"}
    assert sickness and all(
        f["return"] is None for f in before["findings"] if f["fingerprint"] in sickness
    )

    args = ("export", "la-sickness", "--queue", "--config", config, "--as-of", AS_OF.isoformat())
    code, out, err = cli(*args, "--output", str(tmp_path / "by-hand"), "--format", "json")
    assert code == 0, err
    (written,) = json.loads(out)["returns"]
    queued = written["queued"]
    assert len(queued) == written["records"] >= 1
    assert all(q["created"] and q["state"] == "queued" for q in queued)
    assert {q["return_kind"] for q in queued} == {"la-sickness"}
    items = oak_bare.store.outbox_items()
    assert sorted(i.idempotency_key for i in items) == sorted(q["idempotency_key"] for q in queued)

    # The findings the return answers now say it will be sent.
    _, after = scan_json(cli, "--config", config, "--as-of", AS_OF.isoformat())
    states = {f["fingerprint"]: f["return"] for f in after["findings"] if f["rule"] == "LAR001"}
    assert states.keys() == sickness
    assert {s["state"] for s in states.values() if s is not None} == {"queued"}
    assert all(s is not None and s["kind"] == "la-sickness" for s in states.values())

    # Made and queued again: the outbox keeps the one item per pupil episode.
    code, out, err = cli(*args, "--output", str(tmp_path / "again"))
    assert code == 0, err
    assert f"0 outbox item(s) queued, {len(queued)} already queued" in " ".join(out.split())
    assert len(oak_bare.store.outbox_items()) == len(queued)


def test_export_queue_refuses_a_return_the_outbox_does_not_submit(oak_bare: Oak, cli) -> None:
    code, _, err = cli("export", "census-attendance", "--queue", "--config", str(oak_bare.config))
    assert code == 2
    assert "--queue applies to the returns the outbox submits" in " ".join(err.split())
