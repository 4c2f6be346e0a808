"""What `registerwatch scan` and its companions print: the JSON document's exact shape, CSV
columns, exit status per --fail-on, --as-of, --output files, and the rules catalogue.

Most tests use the tiny school elm (conftest): one pupil, one N on 2025-11-03 AM due
2025-11-10, and no capability records, so every scan also has two info notices (REG001:
register events not exposed; AMD002: amendment records not exposed).
"""

from __future__ import annotations

import csv
import io
import json
import re
import stat
from pathlib import Path

import pytest
from scan_support import ELM, Elm, scan_json

from registerwatch.reports import FINDINGS_COLUMNS
from registerwatch.validators import all_rules, get_rule

FINDING_KEYS = {
    "rule",
    "name",
    "severity",
    "school",
    "pupil",
    "upn",
    "first_session",
    "last_session",
    "due",
    "message",
    "citation",
    "status",
    "first_seen",
    "fingerprint",
    "fix_hint",
    "acknowledged",
    "resolved_at",
    "resolution",
    "return",
}
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00$")


def test_the_json_document_has_exactly_the_documented_shape(elm: Elm, cli) -> None:
    code, doc = scan_json(cli, "--as-of", "2025-11-11")

    assert code == 1
    assert set(doc) == {"as_of", "read_only", "schools", "findings"}
    assert doc["read_only"] is False
    assert doc["as_of"] == "2025-11-11"
    assert doc["schools"] == [
        {
            "school": ELM,
            "status": "scanned",
            "error": None,
            "exposes_registers": False,
            "exposes_amendments": False,
            "failed_rules": {},
            "new": 3,
            "open": 0,
            "resolved": 0,
            "resolved_late": 0,
            # elm is written by hand, as a store synced before sync recorded its status
            "registers_complete_to": None,
            "judged_to": "2025-11-11",
            "never_synced": False,
            "stale": False,
            "last_sync": None,
        }
    ]
    assert [f["rule"] for f in doc["findings"]] == ["AMD002", "MRK001", "REG001"]
    for finding in doc["findings"]:
        assert set(finding) == FINDING_KEYS
        assert re.fullmatch(r"[0-9a-f]{64}", finding["fingerprint"])
        assert ISO_UTC.match(finding["first_seen"])
    n_code = doc["findings"][1]
    rule = get_rule("MRK001")
    assert {k: v for k, v in n_code.items() if k not in ("first_seen", "fingerprint")} == {
        "rule": "MRK001",
        "name": "unresolved-n-code",
        "severity": "error",
        "school": ELM,
        "pupil": "E1",
        "upn": "B801200005001",
        "first_session": {"date": "2025-11-03", "session": "AM"},
        "last_session": {"date": "2025-11-03", "session": "AM"},
        "due": "2025-11-10",
        "message": "N not replaced within 5 school days on 1 session(s) from 2025-11-03 AM to "
        "2025-11-03 AM (due 2025-11-10)",
        "citation": rule.citation,
        "status": "new",
        "fix_hint": rule.fix_hint,
        "acknowledged": None,
        "resolved_at": None,
        "resolution": None,
        "return": None,
    }
    notice = doc["findings"][2]
    assert (notice["severity"], notice["pupil"], notice["upn"], notice["first_session"]) == (
        "info",
        None,
        None,
        None,
    )


def test_pupil_names_appear_only_with_include_names(elm: Elm, cli) -> None:
    code, out, _ = cli("scan", "--as-of", "2025-11-11", "--format", "json")
    assert "Ada" not in out and "Lovelace" not in out and "pupil_name" not in out
    code, out, _ = cli("scan", "--as-of", "2025-11-11", "--format", "csv")
    assert "Lovelace" not in out and "pupil_name" not in out
    code, out, _ = cli("scan", "--as-of", "2025-11-11")
    assert "Lovelace" not in out

    code, doc = scan_json(cli, "--as-of", "2025-11-11", "--include-names")
    names = {f["rule"]: f["pupil_name"] for f in doc["findings"]}
    assert names == {"AMD002": None, "MRK001": "Ada Lovelace", "REG001": None}
    code, out, _ = cli("scan", "--as-of", "2025-11-11", "--format", "csv", "--include-names")
    assert code == 1
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["pupil_name"] for r in rows] == ["", "Ada Lovelace", ""]


def test_csv_has_a_header_and_one_row_per_finding(elm: Elm, cli) -> None:
    code, out, _ = cli("scan", "--as-of", "2025-11-11", "--format", "csv")
    assert code == 1
    reader = csv.reader(io.StringIO(out))
    header = next(reader)
    # The same columns as the report's findings.csv (one writer makes both).
    assert header == [
        "school_id",
        "school_name",
        "rule",
        "rule_name",
        "severity",
        "pupil",
        "upn",
        "first_date",
        "first_session",
        "last_date",
        "last_session",
        "due",
        "overdue",
        "status",
        "message",
        "citation",
        "fix_hint",
        "first_seen",
        "resolved_at",
        "acknowledged_at",
        "ack_note",
        "fingerprint",
    ]
    assert tuple(header) == FINDINGS_COLUMNS
    rows = [dict(zip(header, row, strict=True)) for row in reader]
    assert [r["rule"] for r in rows] == ["AMD002", "MRK001", "REG001"]
    n_code = rows[1]
    assert {
        k: n_code[k]
        for k in (
            "school_id",
            "rule_name",
            "severity",
            "status",
            "pupil",
            "upn",
            "first_date",
            "first_session",
            "last_date",
            "last_session",
            "due",
            "overdue",
            "resolved_at",
            "acknowledged_at",
            "ack_note",
        )
    } == {
        "school_id": ELM,
        "rule_name": "unresolved-n-code",
        "severity": "error",
        "status": "new",
        "pupil": "E1",
        "upn": "B801200005001",
        "first_date": "2025-11-03",
        "first_session": "AM",
        "last_date": "2025-11-03",
        "last_session": "AM",
        "due": "2025-11-10",
        "overdue": "yes",
        "resolved_at": "",
        "acknowledged_at": "",
        "ack_note": "",
    }
    assert ISO_UTC.match(n_code["first_seen"])


def test_csv_cells_cannot_become_spreadsheet_formulas(elm: Elm, cli) -> None:
    cli("scan", "--as-of", "2025-11-11")
    code, out, _ = cli("findings", "list", "--format", "json")
    fingerprint = next(
        f["fingerprint"] for f in json.loads(out)["findings"] if f["rule"] == "MRK001"
    )
    cli("findings", "ack", fingerprint, "--note", '=HYPERLINK("http://x")')
    code, out, _ = cli("findings", "list", "--format", "csv")
    assert code == 0
    (row,) = [r for r in csv.DictReader(io.StringIO(out)) if r["rule"] == "MRK001"]
    assert row["ack_note"] == '\'=HYPERLINK("http://x")'


# elm on 2025-11-07: two info notices (N not due yet); 11-10: N is a warning (due today);
# 11-11: N is an error.
@pytest.mark.parametrize(
    ("as_of", "fail_on", "status"),
    [
        ("2025-11-07", "error", 0),
        ("2025-11-07", "warning", 0),
        ("2025-11-07", "info", 1),
        ("2025-11-07", "never", 0),
        ("2025-11-10", "error", 0),
        ("2025-11-10", "warning", 1),
        ("2025-11-10", "info", 1),
        ("2025-11-10", "never", 0),
        ("2025-11-11", "error", 1),
        ("2025-11-11", "warning", 1),
        ("2025-11-11", "info", 1),
        ("2025-11-11", "never", 0),
    ],
)
def test_fail_on_sets_the_exit_status(elm: Elm, cli, as_of: str, fail_on: str, status: int) -> None:
    code, out, err = cli("scan", "--as-of", as_of, "--fail-on", fail_on)
    assert code == status, (out, err)


def test_the_default_fail_on_is_error(elm: Elm, cli) -> None:
    assert cli("scan", "--as-of", "2025-11-10")[0] == 0
    assert cli("scan", "--as-of", "2025-11-11")[0] == 1


def test_as_of_moves_mrk001_from_warning_to_error_across_its_due_date(elm: Elm, cli) -> None:
    def n_code(as_of: str) -> list[dict[str, object]]:
        _, doc = scan_json(cli, "--as-of", as_of)
        return [f for f in doc["findings"] if f["rule"] == "MRK001"]

    assert n_code("2025-11-07") == []  # not due yet: N is lawful
    (due_today,) = n_code("2025-11-10")
    (overdue,) = n_code("2025-11-11")
    assert (due_today["severity"], due_today["due"], due_today["status"]) == (
        "warning",
        "2025-11-10",
        "new",
    )
    assert "must be replaced today" in str(due_today["message"])
    assert (overdue["severity"], overdue["due"], overdue["status"]) == (
        "error",
        "2025-11-10",
        "open",
    )
    assert overdue["fingerprint"] == due_today["fingerprint"]
    assert overdue["first_seen"] == due_today["first_seen"]


@pytest.mark.parametrize("fmt", ["json", "csv", "table"])
def test_output_files_are_private_and_hold_what_stdout_would(
    elm: Elm, cli, tmp_path: Path, fmt: str
) -> None:
    target = tmp_path / "reports" / f"scan.{fmt}"
    code, out, err = cli("scan", "--as-of", "2025-11-11", "--format", fmt, "--output", target)
    assert code == 1
    assert out == ""  # all of it went to the file
    assert f"wrote {target}" in err
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    text = target.read_text(encoding="utf-8")
    if fmt == "json":
        assert [f["rule"] for f in json.loads(text)["findings"]] == ["AMD002", "MRK001", "REG001"]
    elif fmt == "csv":
        assert text.startswith("\ufeffschool_id,school_name,rule,")  # a BOM, for Excel
        assert len(text.strip().splitlines()) == 4
    else:
        assert "MRK001" in text and "\x1b[" not in text  # plain text, no colour codes
    assert not [p for p in target.parent.iterdir() if p.name != target.name]  # no temp file


def test_findings_list_filters_by_status(elm: Elm, cli) -> None:
    cli("scan", "--as-of", "2025-11-11")
    marks = elm.store.marks(ELM)
    fixed = [m.model_copy(update={"code": "I"}) if m.code == "N" else m for m in marks]
    elm.store.upsert_marks(fixed, ELM)
    cli("scan", "--as-of", "2025-11-11")

    def listed(*args: str) -> list[tuple[str, str]]:
        code, out, _ = cli("findings", "list", "--format", "json", *args)
        assert code == 0
        return [(f["rule"], f["status"]) for f in json.loads(out)["findings"]]

    assert listed() == [("AMD002", "open"), ("REG001", "open")]
    assert listed("--status", "resolved") == [("MRK001", "resolved")]
    assert listed("--status", "all") == [
        ("AMD002", "open"),
        ("MRK001", "resolved"),
        ("REG001", "open"),
    ]
    code, out, _ = cli("findings", "list", "--status", "all")
    assert code == 0 and "resolved" in out and "MRK001" in out
    # issue 11: an unknown school is a usage error (exit 2), not an empty list.
    code, _, err = cli("findings", "list", "--school", "nowhere")
    assert code == 2 and "no school 'nowhere'" in err


def test_rules_lists_and_explains_the_catalogue(cli) -> None:
    code, out, _ = cli("rules", "--format", "json")
    assert code == 0
    listed = json.loads(out)["rules"]
    assert [r["code"] for r in listed] == [r.code for r in all_rules()]
    assert set(listed[0]) == {
        "code",
        "name",
        "family",
        "severity",
        "status",
        "title",
        "summary",
        "citation",
    }
    code, out, _ = cli("rules")
    assert code == 0 and all(r.code in out for r in all_rules())

    code, out, _ = cli("rules", "MRK001")
    assert code == 0
    assert out.startswith("# MRK001 unresolved-n-code")
    for section in (
        "What it checks",
        "Why it matters",
        "Example",
        "How to fix",
        "References",
        "Settings",
    ):
        assert f"## {section}" in out
    code, out, _ = cli("rules", "unresolved-n-code", "--format", "json")
    explained = json.loads(out)
    assert (explained["code"], explained["fix_hint"]) == ("MRK001", get_rule("MRK001").fix_hint)
    assert explained["settings"] == [
        {
            "name": "n_code_deadline_school_days",
            "default": 5,
            "description": explained["settings"][0]["description"],
        }
    ]
    assert list(explained["sections"]) == [
        "What it checks",
        "Why it matters",
        "Example",
        "How to fix",
        "References",
    ]
    assert cli("rules", "explain", "mrk001")[0] == 0

    code, _, err = cli("rules", "XYZ999")
    assert code == 2 and "no rule 'XYZ999'" in err


def test_rules_docs_writes_and_checks_the_generated_pages(cli, tmp_path: Path) -> None:
    repo_docs = Path(__file__).resolve().parents[2] / "docs" / "rules"
    code, out, _ = cli("rules", "docs", "--check", "--output", repo_docs)
    assert code == 0 and "current" in out

    folder = tmp_path / "rules"
    code, out, _ = cli("rules", "docs", "--output", folder)
    assert code == 0 and f"wrote {len(all_rules()) + 1} pages" in out
    (folder / "MRK001.md").write_text("edited by hand\n", encoding="utf-8")
    code, out, _ = cli("rules", "docs", "--check", "--output", folder)
    assert code == 1 and "MRK001.md" in out
