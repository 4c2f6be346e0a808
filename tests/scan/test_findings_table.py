"""The findings table for people: one line per finding at 80 and 100 columns (a pipe takes its
width from $COLUMNS), short ids that `findings ack` accepts, and resolved findings only on ask."""

from __future__ import annotations

import json
import re

import pytest
from scan_support import AS_OF, ELM, Elm, Oak

from registerwatch.cli.findings_table import short_fingerprints

RESOLVED_ROW = re.compile(r"^\s*[0-9a-f]{8,}\s+resolved\s", re.M)


def test_short_fingerprints_are_the_shortest_unique_prefixes_of_at_least_8() -> None:
    fps = ["abcdef0123", "abcdef0199", "12345678ff"]
    assert short_fingerprints(fps) == {
        "abcdef0123": "abcdef012",
        "abcdef0199": "abcdef019",
        "12345678ff": "12345678",
    }


@pytest.mark.parametrize("columns", [80, 100])
def test_findings_list_fits_the_width_and_its_ids_ack(
    oak: Oak, cli, monkeypatch: pytest.MonkeyPatch, columns: int
) -> None:
    code, _, err = cli("scan", "--as-of", AS_OF.isoformat(), "--format", "json")
    assert code in (0, 1), err
    monkeypatch.setenv("COLUMNS", str(columns))
    code, out, err = cli("findings", "list")
    assert code == 0, err
    lines = out.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= columns
    code, doc, _ = cli("findings", "list", "--format", "json")
    findings = json.loads(doc)["findings"]
    rows = [line for line in lines if re.match(r"^\s*[0-9a-f]{8,}\s", line)]
    assert len(rows) == len(findings)  # one line per finding, none folded
    for f in findings:
        if f["due"]:
            assert any(f["due"] in row for row in rows)
    short = rows[0].split()[0]
    assert len(short) >= 8 and any(f["fingerprint"].startswith(short) for f in findings)
    code, out, err = cli("findings", "ack", short, "--note", "checked with the LA")
    assert code == 0, err and out


def test_scan_table_shows_new_and_open_and_all_adds_resolved(
    elm: Elm, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    marks = elm.store.marks(ELM)
    fixed = [m.model_copy(update={"code": "I"}) if m.code == "N" else m for m in marks]
    for show_all in (False, True):
        elm.store.upsert_marks(marks, ELM)
        cli("scan", "--as-of", "2025-11-11")  # MRK001 on the N
        elm.store.upsert_marks(fixed, ELM)
        args = ["scan", "--as-of", "2025-11-11", *(["--all"] if show_all else [])]
        code, out, _ = cli(*args)  # the N replaced: MRK001 resolved
        assert code in (0, 1) and "1 resolved" in out
        assert bool(RESOLVED_ROW.search(out)) is show_all
        assert ("resolved finding(s) not shown (--all shows them)" in out) is not show_all


def test_notify_record_takes_the_export_spelling_and_says_it_in_json(oak: Oak, cli) -> None:
    import jsonschema

    from registerwatch.cli.schemas import schema_path

    pupil = next(p for p in oak.school.pupils if p.id in oak.school.clean_pupil_ids)
    for kind in ("la-new-pupil", "new_pupil"):  # the old spelling still works
        code, out, err = cli(
            "notify", "record", "--school", oak.school_id, "--kind", kind,
            "--pupil", pupil.mis_id, "--format", "json",
        )  # fmt: skip
        assert code == 0, err
        doc = json.loads(out)
        jsonschema.validate(doc, json.loads(schema_path("notify-record").read_text("utf-8")))
        assert doc["kind"] == "la-new-pupil"
    code, _, err = cli(
        "notify", "record", "--school", oak.school_id, "--kind", "holiday", "--pupil", "1"
    )
    assert code == 2 and "la-sickness" in err
