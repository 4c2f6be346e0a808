"""write_report and `registerwatch report`: the files, their modes, the CSV columns."""

from __future__ import annotations

import csv
import io
import json
import stat
from pathlib import Path

import pytest
from report_world import (
    ACK_NOTE,
    AS_OF,
    BROOK_ORDER,
    GENERATED_AT,
    SCRIPT_MESSAGE,
    Scanned,
    World,
)

from registerwatch.cli import main
from registerwatch.errors import ConfigError
from registerwatch.reports import FINDINGS_COLUMNS, SUMMARY_COLUMNS, write_report
from registerwatch.validators import all_rules

FILES = ("report.html", "findings.csv", "summary.csv")


def read_csv(path: Path) -> list[dict[str, str]]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: Excel reads UTF-8 correctly
    assert b"\r\n" in raw
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline="")))


def test_files_are_written_private_and_atomically(small: World, tmp_path: Path) -> None:
    out = tmp_path / "reports" / "nightly"
    files = write_report(small.store, small.settings, out, as_of=AS_OF, generated_at=GENERATED_AT)

    assert (files.html, files.findings_csv, files.summary_csv) == tuple(out / f for f in FILES)
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)  # no temporary files left
    for name in FILES:
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o600, name
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert files.to_dict()["counts"] == {
        "open": 6,
        "error": 3,
        "warning": 2,
        "info": 1,
        "overdue": 1,
        "new": 3,
    }


def test_findings_csv_has_one_row_per_open_finding(small: World, tmp_path: Path) -> None:
    files = write_report(
        small.store, small.settings, tmp_path, as_of=AS_OF, generated_at=GENERATED_AT
    )
    rows = read_csv(files.findings_csv)

    assert list(rows[0]) == list(FINDINGS_COLUMNS)
    assert [r["fingerprint"] for r in rows] == BROOK_ORDER
    first = rows[0]
    rule = {r.code: r for r in all_rules()}["MRK001"]
    assert {
        k: first[k]
        for k in (
            "school_id",
            "school_name",
            "rule",
            "rule_name",
            "severity",
            "pupil",
            "first_date",
            "first_session",
            "last_date",
            "last_session",
            "due",
            "overdue",
            "status",
            "citation",
            "fix_hint",
        )
    } == {
        "school_id": "brook",
        "school_name": "Brook Academy",
        "rule": "MRK001",
        "rule_name": "unresolved-n-code",
        "severity": "error",
        "pupil": "1002",
        "first_date": "2025-11-11",
        "first_session": "AM",
        "last_date": "2025-11-11",
        "last_session": "PM",
        "due": "2025-11-18",
        "overdue": "yes",
        "status": "open",
        "citation": rule.citation,
        "fix_hint": rule.fix_hint,
    }
    by_fp = {r["fingerprint"]: r for r in rows}
    assert by_fp["fp-register"]["message"] == SCRIPT_MESSAGE  # CSV is data: not escaped
    assert by_fp["fp-register"]["pupil"] == ""
    assert by_fp["fp-new-pupil"]["ack_note"] == ACK_NOTE
    assert by_fp["fp-new-pupil"]["acknowledged_at"] == "2025-11-18T19:00:00+00:00"
    assert "Lovelace" not in files.findings_csv.read_text(encoding="utf-8-sig")


def test_findings_csv_with_names(small: World, tmp_path: Path) -> None:
    files = write_report(
        small.store,
        small.settings,
        tmp_path,
        as_of=AS_OF,
        generated_at=GENERATED_AT,
        include_names=True,
    )
    rows = read_csv(files.findings_csv)
    assert list(rows[0])[5:7] == ["pupil", "pupil_name"]
    assert rows[0]["pupil_name"] == "Alan Turing"


def test_csv_cells_cannot_run_as_spreadsheet_formulas(small: World, tmp_path: Path) -> None:
    small.store.acknowledge_finding("fp-n-overdue", '=HYPERLINK("x","y")')
    files = write_report(
        small.store, small.settings, tmp_path, as_of=AS_OF, generated_at=GENERATED_AT
    )
    row = next(r for r in read_csv(files.findings_csv) if r["fingerprint"] == "fp-n-overdue")
    assert row["ack_note"] == '\'=HYPERLINK("x","y")'


def test_summary_csv_has_a_row_per_school_and_rule(small: World, tmp_path: Path) -> None:
    files = write_report(
        small.store, small.settings, tmp_path, as_of=AS_OF, generated_at=GENERATED_AT
    )
    rows = read_csv(files.summary_csv)
    codes = [r.code for r in all_rules()]

    assert list(rows[0]) == list(SUMMARY_COLUMNS)
    assert [(r["school_id"], r["rule"]) for r in rows] == [
        (s, c) for s in ("brook", "fern") for c in codes
    ]
    mrk001 = next(r for r in rows if (r["school_id"], r["rule"]) == ("brook", "MRK001"))
    assert {k: mrk001[k] for k in ("errors", "warnings", "info", "total", "new", "overdue")} == {
        "errors": "1",
        "warnings": "1",
        "info": "0",
        "total": "2",
        "new": "1",
        "overdue": "1",
    }
    assert sum(int(r["total"]) for r in rows) == 6


def test_one_school_and_an_unknown_school(small: World, tmp_path: Path) -> None:
    files = write_report(
        small.store,
        small.settings,
        tmp_path,
        as_of=AS_OF,
        generated_at=GENERATED_AT,
        school_id="fern",
    )
    assert [s.school_id for s in files.data.schools] == ["fern"]
    assert len(read_csv(files.summary_csv)) == len(all_rules())
    with pytest.raises(ConfigError, match="no school 'nowhere'"):
        write_report(
            small.store,
            small.settings,
            tmp_path,
            as_of=AS_OF,
            generated_at=GENERATED_AT,
            school_id="nowhere",
        )


def test_rewriting_the_same_report_gives_the_same_bytes(small: World, tmp_path: Path) -> None:
    a = write_report(
        small.store, small.settings, tmp_path / "a", as_of=AS_OF, generated_at=GENERATED_AT
    )
    b = write_report(
        small.store, small.settings, tmp_path / "b", as_of=AS_OF, generated_at=GENERATED_AT
    )
    for one, other in (
        (a.html, b.html),
        (a.findings_csv, b.findings_csv),
        (a.summary_csv, b.summary_csv),
    ):
        assert one.read_bytes() == other.read_bytes() != b""


# -- the command line -------------------------------------------------------------------------


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    captured = capsys.readouterr()
    return int(exc.value.code or 0), captured.out, captured.err


def test_cli_json_names_the_files_and_counts(
    scanned: Scanned, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code, stdout, stderr = run(
        capsys,
        "report",
        "--output",
        str(out),
        "--config",
        str(scanned.world.config_path),
        "--as-of",
        scanned.as_of.isoformat(),
        "--format",
        "json",
    )
    assert code == 0, stderr
    result = json.loads(stdout)
    assert result["as_of"] == scanned.as_of.isoformat()
    assert result["files"] == {
        "html": str(out / "report.html"),
        "findings_csv": str(out / "findings.csv"),
        "summary_csv": str(out / "summary.csv"),
    }
    counts = result["counts"]
    assert counts["open"] == len(scanned.findings)
    assert counts["error"] == sum(1 for f in scanned.findings if f.severity == "error")
    assert counts["warning"] == sum(1 for f in scanned.findings if f.severity == "warning")
    (school,) = result["schools"]
    assert school["school_id"] == scanned.school.school.id
    assert {r["rule"]: r["total"] for r in school["rules"]} == {
        code: sum(1 for f in scanned.findings if f.rule == code)
        for code in {f.rule for f in scanned.findings}
    }
    for name in FILES:
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o600
    assert len(read_csv(out / "findings.csv")) == len(scanned.findings)


def test_cli_table_says_where_the_files_are(
    small: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code, stdout, stderr = run(
        capsys,
        "report",
        "--output",
        str(out),
        "--config",
        str(small.config_path),
        "--as-of",
        AS_OF.isoformat(),
        "--school",
        "brook",
    )
    assert code == 0, stderr
    assert str(out / "report.html") in stdout and str(out / "findings.csv") in stdout
    assert "brook" in stdout and "fern" not in stdout


def test_cli_unknown_school_is_a_configuration_error(
    small: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, stderr = run(
        capsys,
        "report",
        "--output",
        str(tmp_path / "out"),
        "--config",
        str(small.config_path),
        "--school",
        "nowhere",
    )
    assert code == 2
    assert "no school 'nowhere'" in stderr
    assert not (tmp_path / "out").exists()
