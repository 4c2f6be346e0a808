"""`registerwatch export`: files (0600), JSON and table output, per-school failures, exit codes."""

from __future__ import annotations

import hashlib
import json
import stat
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import time_machine
from test_export_cli_fixtures import (
    GENERATED_AT,
    GOLDEN,
    marks,
    open_store,
    pupils,
    school_table,
    write_config,
)

from registerwatch.cli import main
from registerwatch.cli.exporting import redact_values
from registerwatch.exports import registry
from registerwatch.schema import Session

KEYS = {"kind", "school", "xml", "csv", "schema", "records", "sha256"}


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    captured = capsys.readouterr()
    return exc.value.code or 0, captured.out, captured.err


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """Wenlock (complete registers) and Oakham (one unmarked session on 9 September)."""
    store_path = tmp_path / "store.db"
    open_store(store_path).close()
    oakham = pupils("oakham")
    skip = [("oakham:1002", date(2025, 9, 9), Session.PM)]
    open_store(store_path, oakham, marks(oakham, skip=skip), school_id="oakham").close()
    return write_config(
        tmp_path / "registerwatch.toml",
        store_path,
        [school_table(), school_table("oakham", urn="654321", laestab="8934002")],
    )


def export(capsys, config: Path, out: Path, *args: str) -> tuple[int, Any, str]:
    code, stdout, stderr = run(
        capsys, "export", *args, "--config", str(config), "--output", str(out), "--format", "json"
    )
    # the written returns (the document is {kind, as_of, returns, failed}: docs/json.md)
    return code, json.loads(stdout)["returns"] if stdout.strip() else None, stderr


def test_writes_files_0600_and_prints_json(capsys, config: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with time_machine.travel(GENERATED_AT, tick=False):
        code, result, _ = export(
            capsys, config, out, "dfe-daily", "--school", "wenlock", "--as-of", "2025-09-10"
        )
    assert code == 0
    [entry] = result
    assert set(entry) == KEYS
    assert (entry["kind"], entry["school"], entry["schema"], entry["records"]) == (
        "dfe-daily",
        "wenlock",
        "dfe-daily-1.xsd",
        8,
    )
    xml, csv = Path(entry["xml"]), Path(entry["csv"])
    assert xml == out / "dfe-daily_wenlock_2025-09-09.xml"
    assert csv == out / "dfe-daily_wenlock_2025-09-09.csv"
    for path in (xml, csv):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert entry["sha256"] == hashlib.sha256(xml.read_bytes()).hexdigest()
    # The clock is the only input the CLI adds: frozen, the files are the golden ones.
    assert xml.read_bytes() == (GOLDEN / "dfe-daily-1.xml").read_bytes()
    assert csv.read_bytes() == (GOLDEN / "dfe-daily-1.csv").read_bytes()
    assert sorted(p.name for p in out.iterdir()) == [csv.name, xml.name]  # no temp files left


def test_a_failing_school_is_reported_and_the_others_go_on(
    capsys, config: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    code, result, stderr = export(
        capsys, config, out, "dfe-daily", "--date", "2025-09-09", "--as-of", "2025-09-10"
    )
    assert code == 1
    assert [(e["school"], e["records"]) for e in result] == [("wenlock", 8)]
    assert "oakham failed" in stderr and "pupil 1002: 2025-09-09 PM has no mark" in stderr
    assert "Brook" not in stderr
    assert not list(out.glob("dfe-daily_oakham_*"))


def test_allow_incomplete_lets_the_failing_school_through(
    capsys, config: Path, tmp_path: Path
) -> None:
    code, result, _ = export(
        capsys,
        config,
        tmp_path / "out",
        "dfe-daily",
        "--date",
        "2025-09-09",
        "--as-of",
        "2025-09-10",
        "--allow-incomplete",
    )
    assert code == 0
    assert [e["school"] for e in result] == ["wenlock", "oakham"]
    oakham_xml = Path(result[1]["xml"]).read_text(encoding="utf-8")
    assert "<UnmarkedSessions>1</UnmarkedSessions>" in oakham_xml


def test_census_and_ctf_through_the_cli(capsys, config: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, census, _ = export(
        capsys,
        config,
        out,
        "census-attendance",
        "--school",
        "wenlock",
        "--term",
        "autumn-2025",
        "--as-of",
        "2026-01-05",
    )
    assert code == 0
    assert census[0]["xml"].endswith("census-attendance_wenlock_autumn-2025.xml")
    assert census[0]["records"] == 4
    code, ctf, _ = export(
        capsys,
        config,
        out,
        "ctf",
        "--school",
        "wenlock",
        "--as-of",
        "2026-01-05",
        "--option",
        "ctf_pupils=all",
        "--option",
        "ctf-destination=XXXXXXX",
    )
    assert code == 0
    assert ctf[0]["records"] == 5
    assert "<LEA>XXX</LEA>" in Path(ctf[0]["xml"]).read_text(encoding="utf-8")


def test_table_output(capsys, config: Path, tmp_path: Path) -> None:
    code, stdout, _ = run(
        capsys,
        "export",
        "ctf",
        "--school",
        "wenlock",
        "--as-of",
        "2026-01-05",
        "--config",
        str(config),
        "--output",
        str(tmp_path / "out"),
    )
    assert code == 0
    assert "ctf returns written" in stdout and "wenlock" in stdout and "4" in stdout


def test_default_output_folder_is_beside_the_config(capsys, config: Path) -> None:
    code, stdout, _ = run(
        capsys,
        "export",
        "ctf",
        "--school",
        "wenlock",
        "--as-of",
        "2026-01-05",
        "--config",
        str(config),
        "--format",
        "json",
    )
    assert code == 0
    [entry] = json.loads(stdout)["returns"]
    assert Path(entry["xml"]).parent == config.parent / "exports"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no-such-return"], "no return called 'no-such-return'"),
        (["dfe-daily", "--school", "nowhere"], "no school 'nowhere'"),
        (["dfe-daily", "--term", "autumn-2025"], "--term applies to census-attendance only"),
        (["census-attendance", "--date", "2025-09-09"], "--date applies to dfe-daily only"),
        (["census-attendance", "--term", "winter-2025"], "not a census term"),
        (["dfe-daily", "--date", "9 Sept"], "is not a date"),
        (["ctf", "--option", "ctf_pupils"], "is not KEY=VALUE"),
    ],
)
def test_usage_errors_exit_2(
    capsys, config: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    code, _, stderr = run(
        capsys, "export", *args, "--config", str(config), "--output", str(tmp_path / "out")
    )
    assert code == 2
    assert message in " ".join(stderr.split())
    assert not (tmp_path / "out").exists()


def test_a_bad_return_option_fails_the_school_not_the_usage(
    capsys, config: Path, tmp_path: Path
) -> None:
    code, result, stderr = export(
        capsys,
        config,
        tmp_path / "out",
        "census-attendance",
        "--term",
        "autumn-2025",
        "--as-of",
        "2026-01-05",
        "--option",
        "census_age_window=old",
    )
    assert code == 1 and result == []
    assert "census_age_window" in stderr


def test_a_return_package_not_installed_exits_1(
    capsys, config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(
        registry.RETURN_MODULES, "la-future", "registerwatch.exports.no_such_return"
    )
    code, _, stderr = run(
        capsys, "export", "la-future", "--config", str(config), "--output", str(tmp_path / "out")
    )
    assert code == 1
    assert "the la-future return is not installed" in stderr


def test_every_registered_kind_is_dispatched(capsys, config: Path, tmp_path: Path) -> None:
    """Each kind in the registry reaches its builder (0 written, or 1 failed), never a usage
    error: the LA returns work here as soon as their packages land."""
    for kind in registry.RETURN_MODULES:
        extra = ["--as-of", "2026-01-05"]
        if kind == "census-attendance":
            extra += ["--term", "autumn-2025"]
        code, _, _ = run(
            capsys,
            "export",
            kind,
            "--school",
            "wenlock",
            *extra,
            "--config",
            str(config),
            "--output",
            str(tmp_path / "out"),
            "--format",
            "json",
        )
        assert code in (0, 1), kind


def test_a_crash_in_one_school_does_not_stop_the_others(
    capsys, config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = registry.builder

    def flaky(kind: str):
        build = real(kind)

        def wrapped(request):
            if request.school.id == "oakham":
                raise RuntimeError("boom with pupil data that must not show")
            return build(request)

        return wrapped

    monkeypatch.setattr(registry, "builder", flaky)
    code, result, stderr = export(capsys, config, tmp_path / "out", "ctf", "--as-of", "2026-01-05")
    assert code == 1
    assert [e["school"] for e in result] == ["wenlock"]
    assert "oakham failed: internal error: RuntimeError" in stderr
    assert "pupil data" not in stderr


def test_xsd_messages_lose_quoted_values() -> None:
    message = (
        "line 20: Element 'UPN': [facet 'pattern'] The value 'D89340012500' is not "
        "accepted by the pattern '[A-Z]'.\n"
        "line 40: Element 'Record': Duplicate key-sequence ['T893400125002', 'AM'] in "
        "unique identity-constraint 'one-record-per-pupil-session'."
    )
    redacted = redact_values(message)
    assert "D89340012500" not in redacted and "T893400125002" not in redacted
    assert "Element 'UPN'" in redacted and "one-record-per-pupil-session" in redacted
